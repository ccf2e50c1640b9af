"""The run's own noise: window spread of the p50, the chance of a rise in failures, stalls."""
import time

import pytest

from local_emulator.clock import Clock
from local_emulator.experiment.noise import StallMonitor, median_lower_bound, rise_probability, window_p50_spread


def test_the_spread_is_how_far_a_windows_p50_strays_from_the_phases():
    steady = [(t, 100.0) for t in range(0, 60)] + [(t, 140.0) for t in range(60, 80)]
    assert window_p50_spread(steady, 0, 80, windows=4) == 40.0  # the last window reads 140


def test_a_flat_steady_state_has_no_spread_and_too_few_requests_have_no_measure():
    assert window_p50_spread([(t, 100.0) for t in range(40)], 0, 40) == 0.0
    assert window_p50_spread([(1.0, 100.0)], 0, 40) is None


def test_the_rise_probability_is_the_fisher_exact_tail():
    # scipy.stats.fisher_exact([[7, 351], [0, 60]], alternative="greater").pvalue == 0.33515743
    assert rise_probability(0, 60, 7, 358) == pytest.approx(0.33515743, rel=1e-6)
    assert rise_probability(1, 60, 60, 358) < 0.001


def test_fewer_failures_later_is_no_rise():
    assert rise_probability(3, 60, 1, 358) == 1.0
    assert rise_probability(0, 60, 0, 358) == 1.0


def test_the_stall_monitor_sees_this_process_stop_and_reports_it_in_template_time():
    clock = Clock(scale=30)
    monitor = StallMonitor(clock, tick_real_s=0.005, threshold_real_s=0.05).start()
    time.sleep(0.05)
    sum(range(30_000_000))  # one C call holds the GIL for ~0.3 s: the monitor cannot wake
    time.sleep(0.05)
    monitor.stop()
    summary = monitor.summary()
    assert summary["ticks"] > 5
    assert summary["max_ms"] >= 50 * 30  # ≥ 50 real ms late, times the scale


def test_the_medians_lower_bound_is_the_order_statistic_the_binomial_allows():
    # n = 150: P(Binomial(150, ½) ≤ 60) = 0.0088 ≤ 1 %, ≤ 61 is 0.013: the 61st smallest value
    assert median_lower_bound(list(range(150))) == 60
    assert median_lower_bound([5.0] * 100) == 5.0
    assert median_lower_bound([3.0, 1.0, 2.0]) == 1.0  # too few to say more than the smallest
    assert median_lower_bound([]) is None


def test_the_medians_lower_bound_covers_the_true_median_as_often_as_it_says():
    import random
    draw = random.Random(7)
    misses = sum(median_lower_bound([draw.expovariate(1.0) for _ in range(150)]) > 0.693147
                 for _ in range(2000))
    assert misses / 2000 < 0.02  # nominal 1 %; the true median of Exp(1) is ln 2
