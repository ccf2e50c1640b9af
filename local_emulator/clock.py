"""Template time: the one clock every part of the local experiment reads.

A template says "wait 10 minutes"; nobody wants to sit through that locally. The clock divides
every duration by a time scale (30 → a 10-minute wait takes 20 s) and converts measurements back,
so runners, health checks, alarms and the report all speak in the template's own time. Sharing
one clock is what keeps them consistent with each other: a health check interval and the FIS wait
it races against are compressed by the same factor.
"""
from __future__ import annotations

import datetime as _dt
import re
import threading
import time
from typing import Optional

from local_emulator.errors import DurationError

__all__ = ["Clock", "parse_duration", "format_duration"]

_DURATION = re.compile(
    r"^P(?:(?P<days>\d+(?:\.\d+)?)D)?"
    r"(?:T(?:(?P<hours>\d+(?:\.\d+)?)H)?(?:(?P<minutes>\d+(?:\.\d+)?)M)?"
    r"(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$"
)


def parse_duration(text: str) -> float:
    """Seconds in an ISO-8601 duration such as `PT10M`, `PT1H30M`, `P1D`, `PT0.5S`.

    Raises DurationError naming the value; years, months and weeks are refused because FIS and
    SSM refuse them too (their length is not fixed).
    """
    raw = (text or "").strip()
    match = _DURATION.match(raw.upper())
    if not raw or match is None or raw.upper() in ("P", "PT") or raw.upper().endswith("T"):
        raise DurationError(
            f"duration {text!r} is not an ISO-8601 duration; write e.g. PT10M, PT1H30M or PT45S")
    parts = {k: float(v) for k, v in match.groupdict().items() if v is not None}
    return (parts.get("days", 0.0) * 86400 + parts.get("hours", 0.0) * 3600
            + parts.get("minutes", 0.0) * 60 + parts.get("seconds", 0.0))


def format_duration(seconds: float) -> str:
    """`125.0` → `PT2M5S`: the inverse of parse_duration for whole and fractional seconds."""
    if seconds < 0:
        raise DurationError(f"duration {seconds!r} s is negative; durations are ≥ 0")
    whole_minutes, rest = divmod(seconds, 60)
    hours, minutes = divmod(int(whole_minutes), 60)
    text = "PT"
    if hours:
        text += f"{hours}H"
    if minutes:
        text += f"{minutes}M"
    if rest or text == "PT":
        text += f"{rest:g}S"
    return text


class Clock:
    """Template seconds since the run began; `scale` template seconds pass per real second."""

    def __init__(self, scale: float = 1.0, wall_start: Optional[_dt.datetime] = None) -> None:
        if not scale > 0:
            raise ValueError(f"time scale {scale!r} must be > 0; use 1 for real time, 30 to compress")
        self.scale = float(scale)
        self._real_start = time.monotonic()
        self.wall_start = wall_start or _dt.datetime.now(_dt.timezone.utc)

    def rebase(self) -> None:
        """Make now template time 0 (the wall time moves along, so it stays continuous): the
        experiment calls it once set-up is over, so reports count from the steady state."""
        elapsed = self.now()
        self._real_start = time.monotonic()
        self.wall_start = self.wall_start + _dt.timedelta(seconds=elapsed)

    def now(self) -> float:
        """Template seconds elapsed since the clock was made."""
        return (time.monotonic() - self._real_start) * self.scale

    def to_real(self, template_seconds: float) -> float:
        """How long `template_seconds` take on this machine."""
        return template_seconds / self.scale

    def to_template(self, real_seconds: float) -> float:
        """What a real measurement (a request's latency, say) is in template time."""
        return real_seconds * self.scale

    def wall(self, template_seconds: Optional[float] = None) -> _dt.datetime:
        """The emulated UTC time at a template instant (now by default): metric timestamps use it."""
        at = self.now() if template_seconds is None else template_seconds
        return self.wall_start + _dt.timedelta(seconds=at)

    def sleep(self, template_seconds: float, cancel: Optional[threading.Event] = None) -> bool:
        """Sleep for template seconds; return True if `cancel` was set first (the sleep is cut short)."""
        real = max(0.0, self.to_real(template_seconds))
        if cancel is None:
            time.sleep(real)
            return False
        return cancel.wait(real)

    def sleep_until(self, template_instant: float, cancel: Optional[threading.Event] = None) -> bool:
        """Sleep until a template instant (no-op if it has passed); True if cancelled."""
        return self.sleep(template_instant - self.now(), cancel)
