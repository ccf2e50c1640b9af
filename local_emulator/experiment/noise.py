"""The run's own noise: what a verdict must not mistake for the system's behaviour.

A local run is one sample, on a shared machine, with time compressed, so every verdict compares
two phases of the same run and holds the difference against the noise measured in that run:

- **Latency**: the steady state is cut into windows; the spread of their medians (how far the
  p50 of one window strays from the phase's p50) is how much a p50 moves with nothing changed.
  A later phase's p50 is judged against the steady state's p50 plus that spread. The later
  p50 is itself a sample of n requests: it counts as above a bound only when its distribution-
  free lower confidence bound (`median_lower_bound`, an order statistic) is.
- **Error rates**: a rate measured over n requests is only known to within its sampling noise.
  A rise is real when it is unlikely by chance: the one-sided Fisher exact test of "as many
  failures or more among the later requests, if both phases had the same failure rate". The
  verdict prints the counts and that probability.
- **Stalls**: `StallMonitor` measures how late this process wakes from a short sleep. A
  stall of the emulator's own (the machine busy elsewhere, a burst of cold starts competing
  for the cores) is multiplied by the time scale like every real duration; the report prints
  the worst stalls in template time, so a reader can see when the emulator, not the system,
  was slow.
"""
from __future__ import annotations

import math
import threading
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

from local_emulator.clock import Clock

__all__ = ["window_p50_spread", "median_lower_bound", "rise_probability", "SIGNIFICANCE", "StallMonitor"]

# A rise in failures is a verdict against the system when chance explains it less than 1 time
# in 100 (one-sided).
SIGNIFICANCE = 0.01


def _median(values: Sequence[float]) -> Optional[float]:
    if not values:
        return None
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def window_p50_spread(samples: Sequence[Tuple[float, float]], start: float, end: float,
                      windows: int = 4) -> Optional[float]:
    """How far the p50 of one of `windows` equal slices of [start, end) strays from the p50
    of the whole span (the largest distance), for (time, latency) samples. None when a slice
    has no sample: too few requests to measure the noise."""
    if end <= start or windows < 2:
        return None
    whole = _median([v for t, v in samples if start <= t < end])
    width = (end - start) / windows
    medians = [_median([v for t, v in samples if start + i * width <= t < start + (i + 1) * width])
               for i in range(windows)]
    if whole is None or any(m is None for m in medians):
        return None
    return max(abs(m - whole) for m in medians)


def median_lower_bound(values: Sequence[float], confidence: float = 1 - 0.01) -> Optional[float]:
    """The largest order statistic that the true median of what `values` sample lies above
    with at least `confidence`, whatever their distribution: X(k) with P(Binomial(n, ½) ≤ k−1)
    ≤ 1 − confidence (fewer than k samples below the median). The smallest value when n is too
    small to say more; None for no values."""
    ordered = sorted(values)
    n = len(ordered)
    if not n:
        return None
    alpha, k, below = 1 - confidence, 1, math.exp(-n * math.log(2))  # below = P(Binom ≤ k−1)
    while k < n:
        nxt = below + math.exp(_log_choose(n, k) - n * math.log(2))
        if nxt > alpha:
            break
        below, k = nxt, k + 1
    return ordered[k - 1]


def _log_choose(n: int, k: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def rise_probability(before_failed: int, before_total: int, after_failed: int, after_total: int) -> float:
    """One-sided Fisher exact test: the probability of `after_failed` or more failures among the
    `after_total` later requests if both phases shared one failure rate (hypergeometric tail).
    1.0 when the later phase failed no more often than the earlier one."""
    total, failed = before_total + after_total, before_failed + after_failed
    if after_total == 0 or after_failed * before_total <= before_failed * after_total:
        return 1.0
    denominator = _log_choose(total, after_total)
    tail = 0.0
    for k in range(after_failed, min(failed, after_total) + 1):
        tail += math.exp(_log_choose(failed, k) + _log_choose(total - failed, after_total - k) - denominator)
    return min(1.0, tail)


class StallMonitor:
    """Wakes every `tick_real_s` and records how late it woke: the emulator's own stalls.

    A stall is a wake-up later than `threshold_real_s`; each is kept with its template time
    and its length in template ms (what it adds to any request in flight).
    """

    def __init__(self, clock: Clock, tick_real_s: float = 0.01, threshold_real_s: float = 0.05) -> None:
        self.clock = clock
        self.tick_real_s = tick_real_s
        self.threshold_real_s = threshold_real_s
        self.lags: List[float] = []  # real seconds late, every tick
        self.stalls: List[Tuple[float, float]] = []  # (template s, template ms)
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def start(self) -> "StallMonitor":
        self._thread = threading.Thread(target=self._loop, name="stall-monitor", daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        while True:
            before = time.monotonic()
            if self._stop.wait(self.tick_real_s):
                return
            late = time.monotonic() - before - self.tick_real_s
            self.lags.append(late)
            if late > self.threshold_real_s:
                self.stalls.append((self.clock.now(), self.clock.to_template(late) * 1000.0))

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)

    def summary(self) -> Dict[str, Any]:
        """What the report prints: ticks, typical and worst lateness (template ms), the stalls."""
        lags = sorted(self.lags)
        def template_ms(real_s: float) -> float:
            return round(self.clock.to_template(real_s) * 1000.0, 1)
        worst = sorted(self.stalls, key=lambda s: -s[1])[:5]
        return {"ticks": len(lags), "threshold_ms": template_ms(self.threshold_real_s),
                "p50_ms": template_ms(lags[len(lags) // 2]) if lags else None,
                "p99_ms": template_ms(lags[int(len(lags) * 0.99)]) if lags else None,
                "max_ms": template_ms(lags[-1]) if lags else None,
                "stalls": len(self.stalls),
                "worst": [[round(at, 1), round(ms, 1)] for at, ms in sorted(worst)]}
