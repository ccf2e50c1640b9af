"""The progress line says how long a phase has left, or by how much it has overrun its estimate."""
from local_emulator.experiment.orchestration import _Progress


class _StoppedClock:
    """A template clock that moves only when told."""

    def __init__(self):
        self.t = 0.0

    def now(self):
        return self.t

    def to_real(self, seconds):
        return seconds / 30


def _progress(phase, estimate_s, elapsed_s):
    clock = _StoppedClock()
    progress = _Progress(clock, None, enabled=False, write=lambda text: None)
    progress.enter(phase, estimate_s)
    clock.t += elapsed_s
    return progress.line()


def test_the_progress_line_counts_down_to_the_estimate():
    assert _progress("experiment", 600, 560) == \
        "   experiment 09:20 elapsed, ~00:40 remaining | 0 requests, 0 failed"


def test_an_experiment_past_its_estimate_says_so_instead_of_zero_remaining():
    line = _progress("experiment", 600, 640)
    assert line == ("   experiment 10:40 elapsed, 00:40 past the estimate of 10:00, waiting for the "
                    "experiment to end | 0 requests, 0 failed")
    assert "~00:00" not in line
