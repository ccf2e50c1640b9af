"""Template time: ISO-8601 durations and the time scale."""
import pytest

from local_emulator.clock import Clock, format_duration, parse_duration
from local_emulator.errors import DurationError


@pytest.mark.parametrize("text, seconds", [
    ("PT10M", 600), ("PT1H30M", 5400), ("PT45S", 45), ("P1D", 86400), ("PT0.5S", 0.5),
    ("pt2m", 120), ("P1DT1S", 86401),
])
def test_parse_duration_reads_iso_8601(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "10m", "PT", "P", "PT10", "P1Y", "P2W", "PT-5M", "P1DT"])
def test_parse_duration_refuses_what_fis_refuses_naming_the_value(text):
    with pytest.raises(DurationError, match="is not an ISO-8601 duration; write e.g. PT10M"):
        parse_duration(text)


@pytest.mark.parametrize("seconds", [0, 45, 600, 5400, 86401, 0.5])
def test_format_duration_is_the_inverse_of_parse(seconds):
    assert parse_duration(format_duration(seconds)) == seconds


def test_clock_converts_between_template_and_real_time():
    clock = Clock(scale=30)
    assert clock.to_real(600) == 20
    assert clock.to_template(0.1) == pytest.approx(3)


def test_clock_sleep_returns_true_when_cancelled():
    import threading
    cancel = threading.Event()
    cancel.set()
    assert Clock(scale=1).sleep(3600, cancel) is True


def test_clock_refuses_a_non_positive_scale():
    with pytest.raises(ValueError, match="time scale 0 must be > 0"):
        Clock(scale=0)


def test_rebase_restarts_template_time_and_keeps_wall_time_continuous(monkeypatch):
    import datetime as dt
    import types
    import local_emulator.clock as clock_module
    real = {"now": 100.0}  # the real clock is the test's, so a busy machine changes nothing
    monkeypatch.setattr(clock_module, "time", types.SimpleNamespace(monotonic=lambda: real["now"]))
    clock = Clock(scale=1000, wall_start=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc))
    real["now"] += 0.05  # 50 template s
    before = clock.wall()
    clock.rebase()
    assert clock.now() == 0
    assert clock.wall() == before == dt.datetime(2026, 1, 1, 0, 0, 50, tzinfo=dt.timezone.utc)
    real["now"] += 0.002
    assert (clock.now(), clock.wall()) == (pytest.approx(2), before + dt.timedelta(seconds=2))
