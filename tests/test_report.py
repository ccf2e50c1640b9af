"""The report states what happened per phase, per function and region, and judges hypotheses."""
import json
import re

import pytest

from local_emulator.experiment.report import (Phases, build_report, failover_times, percentile, phase_stats,
                                   render_html, render_table, write_report)

PHASES = Phases(start=0, fault_start=100, fault_end=200, end=300)


def _record(at, client, served, status=200, latency=50.0):
    return {"at": at, "client_region": client, "path": "/hello", "routed_region": served or client,
            "status": status, "latency_ms": latency, "served_region": served if status == 200 else None,
            "error": ""}


def _outage_records():
    """us-east-1 fails at 100 s, fails over at 130 s, is back at 210 s; eu-west-1 untouched."""
    records = []
    for t in range(0, 300, 5):
        records.append(_record(t, "eu-west-1", "eu-west-1", latency=40))
        if t < 100 or t >= 210:
            records.append(_record(t, "us-east-1", "us-east-1", latency=50))
        elif t < 130:
            records.append(_record(t, "us-east-1", "us-east-1", status=504, latency=29000))
        else:
            records.append(_record(t, "us-east-1", "eu-west-1", latency=120))
    return records


# One automation (lambda-fault-experiment.yaml): the attach returns at 104.1 s, the detach at 199.6 s.
OUTAGE_EXPERIMENT = {"state": "completed", "reason": "Experiment completed.", "description": "outage",
                     "actions": {"Outage": {
                         "actionId": "aws:ssm:start-automation-execution",
                         "state": "completed", "reason": "", "start": 100.2, "end": 199.7,
                         "automation": {"steps": [
                             {"name": "Attach", "status": "Success", "start": 100.3, "end": 104.1},
                             {"name": "Wait", "status": "Success", "start": 104.1, "end": 190},
                             {"name": "Detach", "status": "Success", "start": 190, "end": 199.6}]}}}}


def _report(records, **overrides):
    options = dict(health={"us-east-1": {"checks": [{"at": 110, "status": None, "ok": False,
                                                      "latency_ms": None}],
                                         "transitions": [[125, False], [205, True]]}},
                   experiment=OUTAGE_EXPERIMENT,
                   alarm={"name": "hello-5xx", "threshold": 0.5, "operator": "GreaterThanOrEqualToThreshold",
                          "period_s": 60, "evaluation_periods": 5, "statistic": "Average",
                          "metric": "5XXError", "worst": 0.4, "fired": False, "fired_at": None},
                   configurations={"restored": True, "differences": []}, sandbox={},
                   settings={"time_scale": 30}, faulted_regions=["us-east-1"])
    options.update(overrides)
    return build_report(records, PHASES, **options)


def _chart(page, title):
    """The SVG chart of the page whose title contains `title`."""
    return next(svg for svg in (part.split("</svg>")[0] for part in page.split("<svg")[1:]) if title in svg)


def test_percentile_interpolates_and_handles_empty():
    assert percentile([10, 20, 30, 40], 50) == 25
    assert percentile([5], 99) == 5
    assert percentile([], 50) is None


def test_phase_stats_counts_errors_and_share_per_serving_region():
    stats = phase_stats([_record(0, "us-east-1", "us-east-1"), _record(1, "us-east-1", "eu-west-1"),
                         _record(2, "us-east-1", None, status=504)])
    assert stats["requests"] == 3
    assert stats["error_rate"] == pytest.approx(1 / 3, abs=1e-3)
    assert stats["share"] == {"eu-west-1": 0.3333, "failed": 0.3333, "us-east-1": 0.3333}


def test_the_share_column_lists_failures_apart_from_the_regions():
    table = render_table(_report(_outage_records()))
    rows = table.split("Per client region")[1].splitlines()
    us_during = next(r for r in rows if r.startswith("us-east-1     experiment"))
    assert us_during.endswith("30.0%  eu-west-1 70%; failed 30%")


def test_failover_and_recovery_times_are_measured_from_the_fault_edges():
    times = failover_times(_outage_records(), "us-east-1", PHASES)
    assert times == {"time_to_failover_s": 30, "time_to_recovery_s": 10}


def test_a_failed_request_after_coming_home_does_not_undo_the_recovery():
    records = _outage_records() + [_record(290, "us-east-1", None, status=502)]
    assert failover_times(records, "us-east-1", PHASES)["time_to_recovery_s"] == 10


def test_no_failover_is_none_not_zero():
    records = [_record(t, "us-east-1", "us-east-1") for t in range(0, 300, 10)]
    assert failover_times(records, "us-east-1", PHASES) == {"time_to_failover_s": None,
                                                            "time_to_recovery_s": None}


def test_report_splits_phases_per_function_region_and_client():
    report = _report(_outage_records())
    us = report["clients"]["us-east-1"]
    assert us["pre"]["error_rate"] == 0 and us["post"]["error_rate"] == 0
    assert us["experiment"]["error_rate"] == pytest.approx(6 / 20)
    assert us["experiment"]["share"]["eu-west-1"] == pytest.approx(14 / 20)
    assert report["regions"]["us-east-1"]["experiment"]["requests"] == 6
    assert report["functions"]["/health"]["experiment"]["error_rate"] == 1.0


def test_hypotheses_pass_for_a_clean_failover():
    verdicts = {h["hypothesis"]: h["verdict"] for h in _report(_outage_records())["hypotheses"]}
    assert verdicts == {
        "post-experiment back within 10% of steady state": "pass",
        "errors stayed under the alarm threshold": "pass",
        "us-east-1 clients failed over to a healthy region": "pass",
        "eu-west-1 clients were unaffected by the fault in us-east-1": "pass",
        "every function's configuration restored exactly": "pass"}


def test_hypotheses_fail_when_recovery_is_slow_errors_breach_and_config_differs():
    records = [dict(r, latency_ms=500.0) if r["at"] >= 200 else r for r in _outage_records()]
    report = _report(records, alarm={"name": "hello-5xx", "threshold": 0.5, "period_s": 60,
                                     "operator": "GreaterThanOrEqualToThreshold",
                                     "evaluation_periods": 5, "statistic": "Average",
                                     "metric": "5XXError", "worst": 1.0, "fired": True,
                                     "fired_at": 412.3},
                     configurations={"restored": False,
                                     "differences": ["us-east-1/hello: Layers differ"]})
    verdicts = {h["hypothesis"]: h for h in report["hypotheses"]}
    assert verdicts["post-experiment back within 10% of steady state"]["verdict"] == "fail"
    assert verdicts["errors stayed under the alarm threshold"]["verdict"] == "fail"
    assert verdicts["errors stayed under the alarm threshold"]["detail"] == (
        "hello-5xx: Average of 5XXError per 60 s peaked at 1 (GreaterThanOrEqualToThreshold 0.5 "
        "for 5 periods to fire); fired at 412 s")
    assert verdicts["every function's configuration restored exactly"]["detail"] == \
        "us-east-1/hello: Layers differ"


def test_table_html_and_json_are_written(tmp_path):
    records = _outage_records()
    report = _report(records)
    table = render_table(report)
    assert "[PASS] errors stayed under the alarm threshold" in table
    assert "All functions restored exactly." in table
    assert "  Outage (aws:ssm:start-automation-execution): completed 100–200 s" in table
    assert "    Attach                  Success    100–104 s" in table
    page = render_html(report, records)
    assert page.count("<svg") == 4 and "fault attached" in page and "<polyline" in page
    assert "answered by each region" in page and "health check status" in page
    paths = write_report(report, records, tmp_path)
    saved = json.loads(paths["json"].read_text())
    assert len(saved["requests"]) == len(records)
    assert saved["hypotheses"] == report["hypotheses"]


def test_latency_hypothesis_compares_the_p50_rise_with_the_injected_latency():
    records = [_record(t, "us-east-1", "us-east-1", latency=50 + (2000 if 100 <= t < 200 else 0))
               for t in range(0, 300, 5)]
    fault = {"region": "us-east-1", "function": "hello", "latency_ms": 2000, "jitter_ms": 0}
    passed = _report(records, latency_fault=fault, faulted_regions=[])
    verdict = passed["hypotheses"][-1]
    assert verdict == {"hypothesis": "/hello latency in us-east-1 rose by the injected 2000 ms (±15%)",
                       "verdict": "pass", "detail": "p50 rose 2000 ms"}
    failed = _report(records, latency_fault=dict(fault, latency_ms=3000), faulted_regions=[])
    assert failed["hypotheses"][-1]["verdict"] == "fail"


def test_a_latency_beyond_the_gateway_timeout_is_not_judged_by_latency():
    fault = {"region": "us-east-1", "function": "hello", "latency_ms": 35000, "jitter_ms": 0}
    report = _report(_outage_records(), latency_fault=fault)
    assert not any("rose by the injected" in h["hypothesis"] for h in report["hypotheses"])


# --- wording (issue 9 §5) ----------------------------------------------------------------------

def test_the_headline_leaves_out_a_reason_that_only_repeats_the_state():
    table = render_table(_report(_outage_records()))
    assert table.splitlines()[0] == "Experiment completed"


def test_the_headline_keeps_a_reason_that_adds_something():
    stopped = dict(OUTAGE_EXPERIMENT, state="stopped",
                   reason="Stop condition arn:aws:cloudwatch:us-east-1:123456789012:alarm:hello-5xx "
                          "entered ALARM state")
    assert render_table(_report(_outage_records(), experiment=stopped)).splitlines()[0] == (
        "Experiment stopped — Stop condition arn:aws:cloudwatch:us-east-1:123456789012:alarm:hello-5xx "
        "entered ALARM state")
    skipped = dict(OUTAGE_EXPERIMENT, reason="Experiment completed (actions skipped).")
    assert render_table(_report(_outage_records(), experiment=skipped)).splitlines()[0] == (
        "Experiment completed — Experiment completed (actions skipped).")


def test_a_client_region_that_never_failed_over_says_so_in_words():
    table = render_table(_report(_outage_records()))
    assert "eu-west-1 clients: no failover (always answered by eu-west-1), so no need to come back home" \
        in table


def test_a_faulted_region_that_did_not_fail_over_fails_its_hypothesis_in_words():
    # us-east-1's health check never turned: its clients kept being sent home and failed.
    records = [dict(r, routed_region="us-east-1", served_region=None, status=504)
               if r["client_region"] == "us-east-1" and 100 <= r["at"] < 200 else r
               for r in _outage_records()]
    records = [dict(r, routed_region="us-east-1", served_region="us-east-1")
               if r["client_region"] == "us-east-1" and r["at"] >= 200 else r for r in records]
    report = _report(records)
    verdict = next(h for h in report["hypotheses"] if h["hypothesis"].startswith("us-east-1 clients failed over"))
    assert verdict["verdict"] == "fail"
    assert verdict["detail"] == ("no failover (answered only by us-east-1; 100% of its requests during "
                                 "the experiment failed), so no need to come back home")
    table = render_table(report)
    assert "None" not in table and "failover after -" not in table


def test_failover_and_recovery_say_what_they_count_from():
    expected = ("failed over 30 s after the experiment started (25.9 s after the attach returned at "
                "104.1 s); back home 10 s after the experiment ended (10.4 s after the detach returned "
                "at 199.6 s)")
    report = _report(_outage_records())
    assert f"us-east-1 clients: {expected}" in render_table(report)
    verdict = next(h for h in report["hypotheses"] if h["hypothesis"].startswith("us-east-1 clients failed over"))
    assert verdict["detail"] == expected


def test_clients_that_never_came_back_home_are_told_so():
    records = [dict(r, served_region="eu-west-1")
               if r["client_region"] == "us-east-1" and r["at"] >= 200 else r for r in _outage_records()]
    assert ("us-east-1 clients: failed over 30 s after the experiment started (25.9 s after the attach "
            "returned at 104.1 s); never came back home before the run ended") in render_table(_report(records))


def test_failed_requests_are_not_drawn_as_a_region():
    records = _outage_records()
    chart = _chart(render_html(_report(records), records), "answered by each region")
    labels = set(re.findall(r'font-size="12" fill="#[0-9a-f]{6}">([^<]*)</text>', chart))
    assert "failed" not in labels and {"eu-west-1", "us-east-1"} <= labels
    assert chart.count("<polyline") == 2


# --- the fault's real span (issue 9 §6) ---------------------------------------------------------

def _x(t):
    """Where template second t is drawn on a chart of PHASES (900 px wide, 50 px padding)."""
    return 50 + t / 300 * 800


def test_the_report_stores_when_the_fault_was_really_attached():
    assert _report(_outage_records())["fault_window"] == [104.1, 199.6]


def test_the_charts_shade_the_span_the_fault_was_attached_not_the_experiment_phase():
    records = _outage_records()
    page = render_html(_report(records), records)
    for title in ("p50 latency", "status codes by class", "answered by each region", "health check status"):
        chart = _chart(page, title)
        assert (f'<rect x="{_x(104.1):.1f}" y="25.0" width="{_x(199.6) - _x(104.1):.1f}"'
                in chart), title
        assert ">fault attached 104–200 s (attach step returned → detach step returned)</text>" in chart
    assert "experiment window" not in page


def test_the_attach_and_detach_steps_are_shaded_lighter_as_the_function_changes_during_them():
    records = _outage_records()
    report = _report(records)
    assert report["fault_steps"] == {"attach": [100.3, 104.1], "detach": [190, 199.6]}
    chart = _chart(render_html(report, records), "p50 latency")
    assert (f'<rect x="{_x(100.3):.1f}" y="25.0" width="{_x(104.1) - _x(100.3):.1f}" height="145.0" '
            'fill="#fae3e3"><title>attach step running 100–104 s') in chart
    assert f'<rect x="{_x(190):.1f}" y="25.0" width="{_x(199.6) - _x(190):.1f}"' in chart
    assert ("Fault attached (attach returned → detach returned): 104.1 s → 199.6 s "
            "(the attach step ran 100–104 s, the detach step ran 190–200 s)") in render_table(report)


def test_a_fault_never_detached_is_shaded_to_the_end_of_the_run():
    never_detached = {"state": "stopped", "reason": "Stop condition hello-5xx entered ALARM state",
                      "actions": {"Outage": dict(OUTAGE_EXPERIMENT["actions"]["Outage"], automation={"steps": [
                          {"name": "Attach", "status": "Success", "start": 100.3, "end": 104.1},
                          {"name": "Wait", "status": "Cancelled", "start": 104.1, "end": 150},
                          {"name": "Detach", "status": "Failed", "start": 150, "end": 160}]})}}
    records = _outage_records()
    report = _report(records, experiment=never_detached)
    assert report["fault_window"] == [104.1, None]
    chart = _chart(render_html(report, records), "p50 latency")
    assert f'<rect x="{_x(104.1):.1f}" y="25.0" width="{_x(300) - _x(104.1):.1f}"' in chart
    assert "fault attached from 104 s, never detached (still at the run&#x27;s end)" in chart
    assert ("Fault attached (attach returned → detach returned): 104.1 s → never detached during the "
            "run (the attach step ran 100–104 s)") in render_table(report)


# --- verdicts against the run's own noise ---------------------------------------------------

def _noisy_steady_state(post_latency):
    """Steady-state p50s per quarter 40, 40, 40 and 100 ms (the noise); then the given post."""
    records = []
    for t in range(0, 100):
        records.append(_record(t, "eu-west-1", "eu-west-1", latency=100.0 if t >= 75 else 40.0))
    for t in range(200, 300):
        records.append(_record(t, "eu-west-1", "eu-west-1", latency=post_latency))
    return records


def _verdict(report, name):
    return next(h for h in report["hypotheses"] if h["hypothesis"] == name)


RECOVERY = "post-experiment back within 10% of steady state"


def test_recovery_is_allowed_the_steady_states_own_spread_and_says_how_much():
    # steady p50 40 ms; the last quarter's p50 strays 60 ms: allowed 40 × 1.1 + 60 = 104
    passed = _verdict(_report(_noisy_steady_state(100.0), faulted_regions=[]), RECOVERY)
    assert passed["verdict"] == "pass", passed
    assert "allowed ≤ 104: +10% ± 60 ms: its steady state's quarters' p50s strayed that far" in passed["detail"]
    failed = _verdict(_report(_noisy_steady_state(110.0), faulted_regions=[]), RECOVERY)
    assert failed["verdict"] == "fail", failed


def _settling(slow_until):
    """Steady 40 ms; the post phase (200–300 s) reads 200 ms until `slow_until`, then 40 ms."""
    records = [_record(t, "eu-west-1", "eu-west-1", latency=40.0) for t in range(0, 100)]
    records += [_record(t, "eu-west-1", "eu-west-1", latency=200.0 if t < slow_until else 40.0)
                for t in range(200, 300)]
    return records


def test_recovery_is_how_soon_after_the_experiment_the_steady_state_returns():
    passed = _verdict(_report(_settling(260), faulted_regions=[]), RECOVERY)  # slow for 60 %
    assert passed["verdict"] == "pass", passed
    assert passed["detail"].startswith("back 30 s after the experiment ended, then steady for the last 70 requests: "
                                       "served by eu-west-1: p50 40.0 → 40.0 ms")


def test_a_post_phase_slow_for_more_than_its_first_half_has_not_recovered():
    failed = _verdict(_report(_settling(290), faulted_regions=[]), RECOVERY)
    assert failed["verdict"] == "fail", failed
    assert failed["detail"].startswith("not back within the first 50 s of the post phase: its last 50 requests read "
                                       "served by eu-west-1: p50 40.0 → 200.0 ms")


def test_a_steady_state_without_noise_allows_only_the_tolerance():
    records = [_record(t, "eu-west-1", "eu-west-1", latency=40.0) for t in range(0, 100)] + \
              [_record(t, "eu-west-1", "eu-west-1", latency=45.0) for t in range(200, 300)]
    assert _verdict(_report(records, faulted_regions=[]), RECOVERY)["verdict"] == "fail"


def test_unaffected_clients_fail_on_a_rise_in_errors_beyond_chance_and_print_the_counts():
    records = _outage_records()
    # eu-west-1: 0 of 20 failed before; 7 of 20 fail during the experiment: chance 0.3 %
    broken = [dict(r, status=504, served_region=None)
              if r["client_region"] == "eu-west-1" and 100 <= r["at"] < 135 else r for r in records]
    verdict = _verdict(_report(broken), "eu-west-1 clients were unaffected by the fault in us-east-1")
    assert verdict["verdict"] == "fail", verdict
    assert verdict["detail"].startswith("errors 0.0% (0/20) → 35.0% (7/20): a rise this large comes by chance 0.")
    assert verdict["detail"].endswith("of the time with nothing changed (a rise fails below 1%)")


def test_one_error_in_an_unaffected_region_is_within_its_sampling_noise():
    records = _outage_records()
    one = [dict(r, status=504, served_region=None)
           if r["client_region"] == "eu-west-1" and r["at"] == 150 else r for r in records]
    verdict = _verdict(_report(one), "eu-west-1 clients were unaffected by the fault in us-east-1")
    assert verdict["verdict"] == "pass", verdict
    assert "(1/20)" in verdict["detail"] and "comes by chance" in verdict["detail"]


def test_failures_are_counted_by_cause_and_the_table_shows_them():
    records = [dict(r, error="integration timeout (29 s)") if r["status"] == 504 else r
               for r in _outage_records()]
    report = _report(records)
    assert report["failures"] == [{"client_region": "us-east-1", "phase": "experiment",
                                   "served_by": "us-east-1", "status": 504,
                                   "cause": "integration timeout (29 s)", "requests": 6}]
    table = render_table(report)
    assert "Failed /hello requests by cause" in table
    assert re.search(r"us-east-1\s+experiment\s+us-east-1\s+504\s+6  integration timeout \(29 s\)", table)


def test_the_table_prints_the_seed_the_emulators_stalls_and_the_throttles():
    report = _report(_outage_records(), emulator={
        "seed": 4242, "telemetry_errors": [],
        "stalls": {"ticks": 900, "threshold_ms": 1500.0, "p50_ms": 3.0, "p99_ms": 90.0, "max_ms": 2400.0,
                   "stalls": 1, "worst": [[140.0, 2400.0]]}},
        sandbox={"us-east-1/hello": {"throttles": 2, "capacity_refusals": 0}})
    table = render_table(report)
    assert "Seed 4242: the fault decisions (percentage, jitter) replay with --seed 4242" in table
    assert "max 2400; 1 stalls over 1500 ms (worst: 2400 ms at 140 s)" in table
    assert "Lambda throttles: 2 (Lambda's limits: reserved concurrency, else 1,000 per account and region)" in table


def test_a_stall_longer_than_half_the_gateway_timeout_is_flagged_as_the_emulator_not_keeping_up():
    stalls = {"ticks": 900, "threshold_ms": 1500.0, "p50_ms": 3.0, "p99_ms": 90.0, "max_ms": 20000.0,
              "stalls": 1, "worst": [[140.0, 20000.0]]}
    report = _report(_outage_records(), emulator={"stalls": stalls})
    assert report["faithful"]["ok"] is False
    assert "WARNING: The emulator did NOT keep up: it stalled for 20000 ms of template time" in render_table(report)
    calm = _report(_outage_records(), emulator={"stalls": dict(stalls, max_ms=9000.0)})
    assert calm["faithful"]["ok"] is True
    assert "The emulator kept up: its worst stall was 9000 ms" in render_table(calm)


def _drifting(control_post, faulted_pre=40.0, faulted_post=60.0, control_pre=40.0):
    """Both regions in the steady state, then the post phase: us-east-1 (whose functions
    changed) and eu-west-1 (the control, whose functions never did) as given."""
    records = []
    for t in range(0, 100, 2):
        records += [_record(t, "us-east-1", "us-east-1", latency=faulted_pre),
                    _record(t + 1, "eu-west-1", "eu-west-1", latency=control_pre)]
    for t in range(200, 300, 2):
        records += [_record(t, "us-east-1", "us-east-1", latency=faulted_post),
                    _record(t + 1, "eu-west-1", "eu-west-1", latency=control_post)]
    return records


SANDBOX = {"us-east-1/hello": {"configurations": 3}, "eu-west-1/hello": {"configurations": 1}}


def test_recovery_allows_the_emulators_drift_measured_on_the_region_whose_functions_never_changed():
    verdict = _verdict(_report(_drifting(60.0), faulted_regions=[], sandbox=SANDBOX), RECOVERY)
    assert verdict["verdict"] == "pass", verdict
    assert "served by us-east-1: p50 40.0 → 60.0 ms (allowed ≤ 66: +10% ± 0 ms: its steady state's quarters' " \
        "p50s strayed that far, × 1.50 the emulator's slowdown)" in verdict["detail"]
    assert "the emulator slowed × 1.50: eu-west-1, whose functions never changed, read p50 40 → 60 ms" \
        in verdict["detail"]
    # The same slowdown with the control region steady is the system's, not the emulator's:
    assert _verdict(_report(_drifting(40.0), faulted_regions=[], sandbox=SANDBOX), RECOVERY)["verdict"] == "fail"
    # ...and with no unchanged region there is nothing to measure the drift with:
    changed = {key: {"configurations": 2} for key in SANDBOX}
    blind = _verdict(_report(_drifting(60.0), faulted_regions=[], sandbox=changed), RECOVERY)
    assert blind["verdict"] == "fail" and "no region left unchanged" in blind["detail"]


def test_the_emulators_drift_is_a_factor_because_a_busy_machine_stretches_every_request_alike():
    # The control doubled (40 → 80 ms), and so did the changed region (100 → 200 ms). Allowed
    # 100 × 1.1 × 2 = 220; the control's difference (+40 ms) would allow only 150.
    records = _drifting(80.0, faulted_pre=100.0, faulted_post=200.0)
    verdict = _verdict(_report(records, faulted_regions=[], sandbox=SANDBOX), RECOVERY)
    assert verdict["verdict"] == "pass", verdict
    assert "served by us-east-1: p50 100.0 → 200.0 ms (allowed ≤ 220" in verdict["detail"]
    # Twice as slow again in the changed region is the system's, not the emulator's:
    slower = _drifting(80.0, faulted_pre=100.0, faulted_post=400.0)
    assert _verdict(_report(slower, faulted_regions=[], sandbox=SANDBOX), RECOVERY)["verdict"] == "fail"


def _steady_then(post):
    """A flat 40 ms steady state (no spread: allowed 44 ms), then the post latencies given, in order."""
    records = [_record(t, "eu-west-1", "eu-west-1", latency=40.0) for t in range(0, 100)]
    return records + [_record(200 + i, "eu-west-1", "eu-west-1", latency=v) for i, v in enumerate(post)]


def test_the_steady_half_of_the_post_phase_is_let_off_by_its_p50s_sampling_noise_and_says_so():
    # The last 50 requests: 26 at 45 ms, 24 at 30 ms, interleaved: p50 45, but over 50 requests
    # the median is only known to be ≥ 30 ms (99 %), within the 44 allowed.
    tail = [45.0 if i % 2 == 0 or i >= 48 else 30.0 for i in range(50)]
    verdict = _verdict(_report(_steady_then([200.0] * 50 + tail), faulted_regions=[]), RECOVERY)
    assert verdict["verdict"] == "pass", verdict
    assert "over its 50 requests the p50 is only known to be ≥ 30.0 ms, 99 % sure" in verdict["detail"]
    # Every one of them slow is beyond sampling noise:
    failed = _verdict(_report(_steady_then([200.0] * 50 + [45.0] * 50), faulted_regions=[]), RECOVERY)
    assert failed["verdict"] == "fail", failed


def test_sampling_noise_never_moves_the_settling_time_earlier():
    # 60 of the first 100 post requests slow: their median's lower bound (40 ms) is within bounds,
    # but the point p50 (200 ms) is not, so the post phase is not "steady throughout".
    verdict = _verdict(_report(_settling(260), faulted_regions=[]), RECOVERY)
    assert verdict["detail"].startswith("back 30 s after the experiment ended")


def test_each_changed_region_is_judged_on_its_own_not_on_the_mix_of_regions():
    # us-east-1 stays 50 % slower after the experiment; the mix with the steady control reads a
    # two-humped p50 of 50 ms whose sampling noise would hide it.
    verdict = _verdict(_report(_drifting(40.0), faulted_regions=[], sandbox=SANDBOX), RECOVERY)
    assert verdict["verdict"] == "fail", verdict
    assert "served by us-east-1: p50 40.0 → 60.0 ms (allowed ≤ 44" in verdict["detail"]
    assert "served by eu-west-1" not in verdict["detail"]  # the control is not judged, it measures


def test_a_health_check_failing_in_a_region_no_fault_reached_is_the_emulator_not_keeping_up():
    health = {"us-east-1": {"checks": [], "transitions": [[288.0, False], [1217.0, True]]},
              "eu-west-1": {"checks": [], "transitions": [[258.0, False], [1277.0, True]]}}
    stalls = {"ticks": 900, "threshold_ms": 1000.0, "p50_ms": 8.0, "p99_ms": 3000.0, "max_ms": 7000.0,
              "stalls": 177, "worst": [[453.0, 7000.0]]}
    report = _report(_outage_records(), health=health, sandbox=SANDBOX, emulator={"stalls": stalls})
    assert report["faithful"]["ok"] is False
    assert report["faithful"]["words"].startswith(
        "the emulator did NOT keep up: the health check of eu-west-1, none of whose functions changed, "
        "turned UNHEALTHY at 258 s")
    assert "WARNING: The emulator did NOT keep up" in render_table(report)
    # The faulted region's own check failing is the experiment working, not the emulator failing:
    faulted_only = dict(health, **{"eu-west-1": {"checks": [], "transitions": []}})
    assert _report(_outage_records(), health=faulted_only, sandbox=SANDBOX,
                   emulator={"stalls": stalls})["faithful"]["ok"] is True


# --- the dashboard, widget for widget (issue 11 §4) ---------------------------------------------

import datetime as dt  # noqa: E402

from tests.emulator_fixtures import moto_server, unique  # noqa: E402,F401 - fixture

from local_emulator.experiment.charts import (PLOT_BOTTOM, PLOT_TOP, Chart, Series,  # noqa: E402
                                              render_chart)
from local_emulator.experiment.dashboard_data import (parse_metrics, read_dashboards,  # noqa: E402
                                                      widget_queries, widgets_without_data)

WALL_ZERO = dt.datetime(2026, 12, 2, 6, 0, tzinfo=dt.timezone.utc)
ALARM_ARN = "arn:aws:cloudwatch:us-east-1:123456789012:alarm:hello-5xx"


def wall(t):
    """Clock.wall of a run whose template second 0 is WALL_ZERO."""
    return WALL_ZERO + dt.timedelta(seconds=t)


def dashboard_body(region="us-east-1", api="sample-api"):
    """A body like the sample app's: text, health checks, regions, status codes by class,
    latency percentiles, the functions' metrics on two axes, the layer's faults, the alarm."""
    load = ["LoadGen", "status_2xx", "Api", api, {"color": "#2ca02c", "label": "2xx"}]
    return {"widgets": [
        {"type": "text", "x": 0, "y": 0, "width": 24, "height": 2,
         "properties": {"markdown": "# Sample app under chaos\nSee [the blog](https://example.com/blog)"}},
        {"type": "metric", "x": 0, "y": 2, "width": 12, "height": 6, "properties": {
            "title": "Route 53 health check status", "region": "us-east-1", "stat": "Minimum", "period": 60,
            "view": "timeSeries", "yAxis": {"left": {"min": 0, "max": 1, "label": "healthy"}},
            "metrics": [["AWS/Route53", "HealthCheckStatus", "HealthCheckId", "hc-us", {"label": "us-east-1"}],
                        ["...", "hc-eu", {"label": "eu-west-1"}]]}},
        {"type": "metric", "x": 12, "y": 2, "width": 12, "height": 6, "properties": {
            "title": "Requests served per region", "region": region, "stat": "Sum", "period": 60,
            "metrics": [["LoadGen", "region_us-east-1", "Api", api],
                        [".", "region_eu-west-1", ".", "."]]}},
        {"type": "metric", "x": 0, "y": 8, "width": 12, "height": 6, "properties": {
            "title": "Status codes", "region": region, "stat": "Sum", "period": 60,
            "metrics": [load, [".", "status_4xx", ".", ".", {"color": "#ff7f0e", "label": "4xx"}],
                        [".", "status_5xx", ".", ".", {"color": "#d62728", "label": "5xx"}]]}},
        {"type": "metric", "x": 12, "y": 8, "width": 12, "height": 6, "properties": {
            "title": "Latency as the customers saw it", "region": region, "period": 60,
            "yAxis": {"left": {"label": "ms"}},
            "metrics": [["LoadGen", "latency", "Api", api, {"stat": "p50", "label": "p50"}],
                        ["...", {"stat": "p99", "label": "p99"}]]}},
        {"type": "metric", "x": 0, "y": 14, "width": 12, "height": 6, "properties": {
            "title": "Lambda Duration, Errors and Throttles", "region": region, "stat": "Sum", "period": 60,
            "metrics": [["AWS/Lambda", "Duration", "FunctionName", "hello", {"stat": "p99"}],
                        [".", "Errors", ".", ".", {"yAxis": "right"}],
                        [".", "Throttles", ".", ".", {"yAxis": "right"}]]}},
        {"type": "metric", "x": 12, "y": 14, "width": 12, "height": 6, "properties": {
            "title": "Faults the layer injected", "region": region, "stat": "Sum", "period": 60,
            "metrics": [["LambdaChaos", "faults_injected", "FunctionName", "hello"]]}},
        {"type": "metric", "x": 0, "y": 20, "width": 24, "height": 6, "properties": {
            "title": "API Gateway 5XXError, the stop condition", "region": region,
            "annotations": {"alarms": [ALARM_ARN]}}},
        {"type": "alarm", "x": 0, "y": 20, "width": 24, "height": 3,
         "properties": {"title": "Stop condition", "alarms": [ALARM_ARN]}, "y": 26},
    ]}


def _synthetic_value(metric, dims, stat, t):
    """What a realistic run would have read: an outage of us-east-1 from 104 s to 200 s."""
    outage = 104 <= t < 200
    if metric == "HealthCheckStatus":
        return 0.0 if dims.get("HealthCheckId") == "hc-us" and 120 <= t < 210 else 1.0
    if metric == "region_us-east-1":
        return 1.0 if outage else 6.0
    if metric == "region_eu-west-1":
        return 11.0 if outage else 6.0
    if metric == "status_2xx":
        return 9.0 if outage else 12.0
    if metric == "status_5xx":
        return 3.0 if outage else 0.0
    if metric.startswith("region_"):
        return 6.0
    if metric in ("latency", "Latency"):
        return (29000.0 if outage else 410.0) if stat == "p99" else (180.0 if outage else 120.0)
    if metric == "InjectedFaults":
        return 12.0 if outage and dims.get("FaultType") == "latency" else None
    if metric == "InjectedMilliseconds":
        return 35000.0 if outage else None
    if metric == "Duration":
        return 10000.0 if outage else 95.0
    if metric == "Errors":
        return 2.0 if outage else 0.0
    if metric == "Throttles":
        return 0.0
    if metric == "5XXError":
        return 0.4 if outage else 0.0
    return None  # status_4xx, faults_injected: nothing emitted them


class FakeCloudWatch:
    """A boto3 CloudWatch client answering as the emulator does, from _synthetic_value (or
    `values`); it records every GetMetricData call."""

    def __init__(self, region, dashboards=None, values=_synthetic_value, refuse_expressions=False):
        self.region, self.values, self.refuse = region, values, refuse_expressions
        self.dashboards = dashboards if dashboards is not None else {"sample-app": dashboard_body(region)}
        self.calls = []

    def list_dashboards(self, **_):
        return {"DashboardEntries": [{"DashboardName": name} for name in self.dashboards]}

    def get_dashboard(self, DashboardName):
        return {"DashboardBody": json.dumps(self.dashboards[DashboardName])}

    def describe_alarms(self, AlarmNames):
        if AlarmNames != ["hello-5xx"]:
            return {"MetricAlarms": []}
        return {"MetricAlarms": [{
            "AlarmName": "hello-5xx", "StateValue": "OK", "StateReason": "0 of 5 periods breached",
            "Namespace": "AWS/ApiGateway", "MetricName": "5XXError", "Statistic": "Average", "Period": 60,
            "EvaluationPeriods": 5, "Threshold": 0.5, "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            "Dimensions": [{"Name": "ApiName", "Value": "sample-api"}], "StateUpdatedTimestamp": wall(12)}]}

    def get_metric_data(self, MetricDataQueries, StartTime, EndTime, ScanBy="TimestampDescending", **_):
        self.calls.append({"queries": MetricDataQueries, "start": StartTime, "end": EndTime, "scan": ScanBy})
        if self.refuse and any("Expression" in q for q in MetricDataQueries):
            from botocore.exceptions import ClientError
            raise ClientError({"Error": {"Code": "ValidationError", "Message": "Unsupported expression"}},
                              "GetMetricData")
        results = []
        for q in MetricDataQueries:
            stat = q["MetricStat"]
            metric = stat["Metric"]
            dims = {d["Name"]: d["Value"] for d in metric.get("Dimensions", [])}
            stamps, values = [], []
            t = (StartTime - WALL_ZERO).total_seconds()
            while WALL_ZERO + dt.timedelta(seconds=t) < EndTime:
                value = self.values(metric["MetricName"], dims, stat["Stat"], t)
                if value is not None:
                    stamps.append(WALL_ZERO + dt.timedelta(seconds=t))
                    values.append(value)
                t += stat["Period"]
            results.append({"Id": q["Id"], "Label": q.get("Label", ""), "Timestamps": stamps[::-1],
                            "Values": values[::-1], "StatusCode": "Complete"})
        return {"MetricDataResults": results, "Messages": []}


def dashboard_report(clients=None, records=None, **overrides):
    """A whole report with the sample app's dashboard read from fake CloudWatch clients."""
    clients = clients or {"us-east-1": FakeCloudWatch("us-east-1")}
    records = records if records is not None else _outage_records()
    report = _report(records, cloudwatch=clients.__getitem__, wall=wall,
                     settings={"time_scale": 30, "regions": sorted(clients)}, **overrides)
    return report, records


def test_metrics_rows_repeat_the_row_above_with_dot_and_ellipsis():
    rows = parse_metrics([["AWS/Lambda", "Duration", "FunctionName", "hello", {"stat": "p99"}],
                          [".", "Errors", ".", "."],
                          ["...", "health"],
                          [{"expression": "m1 + m2", "label": "sum", "id": "e1"}]])
    assert [(r.get("namespace"), r.get("metric"), r.get("dimensions")) for r in rows[:3]] == [
        ("AWS/Lambda", "Duration", {"FunctionName": "hello"}),
        ("AWS/Lambda", "Errors", {"FunctionName": "hello"}),
        ("AWS/Lambda", "Errors", {"FunctionName": "health"})]
    assert rows[0]["options"] == {"stat": "p99"} and rows[3]["expression"] == "m1 + m2"


def test_each_metric_is_one_query_with_its_own_or_the_widgets_stat_period_and_region():
    queries = widget_queries({"stat": "Sum", "period": 60, "region": "eu-west-1", "metrics": [
        ["LoadGen", "latency", "Api", "a", {"stat": "p99", "id": "lat"}],
        [".", "status_5xx", ".", ".", {"period": 300, "region": "us-east-1"}]]}, "us-west-2")
    assert [q["query"] for q in queries] == [
        {"Id": "lat", "ReturnData": True, "Label": "latency", "MetricStat": {
            "Metric": {"Namespace": "LoadGen", "MetricName": "latency", "Dimensions": [{"Name": "Api", "Value": "a"}]},
            "Period": 60, "Stat": "p99"}},
        {"Id": "q1_0", "ReturnData": True, "Label": "status_5xx", "MetricStat": {
            "Metric": {"Namespace": "LoadGen", "MetricName": "status_5xx", "Dimensions": [{"Name": "Api", "Value": "a"}]},
            "Period": 300, "Stat": "Sum"}}]
    assert [q["region"] for q in queries] == ["eu-west-1", "us-east-1"]
    assert widget_queries({"metrics": [["N", "m"]]}, "us-west-2")[0]["query"]["MetricStat"]["Stat"] == "Average"


def test_the_dashboard_is_read_with_get_metric_data_over_the_runs_emulated_wall_time():
    client = FakeCloudWatch("us-east-1")
    [dashboard] = read_dashboards({"us-east-1": client}.__getitem__, ["us-east-1"], wall, 0, 300)
    assert (dashboard["name"], dashboard["region"]) == ("sample-app", "us-east-1")
    assert [w["type"] for w in dashboard["widgets"]] == ["text"] + ["metric"] * 7 + ["alarm"]
    assert {(c["start"], c["end"], c["scan"]) for c in client.calls} == {
        (wall(0), wall(301), "TimestampAscending")}
    latency = dashboard["widgets"][4]
    assert [(s["label"], s["stat"], s["period"]) for s in latency["series"]] == [("p50", "p50", 60), ("p99", "p99", 60)]
    assert latency["series"][1]["points"][:3] == [[0, 410.0], [60, 410.0], [120, 29000.0]]  # oldest first
    assert dashboard["window"] == {"template_s": [0, 300], "start": "2026-12-02T06:00:00+00:00",
                                   "end": "2026-12-02T06:05:01+00:00"}


def test_the_report_draws_every_widget_of_the_dashboard_metric_for_metric():
    report, records = dashboard_report()
    page = render_html(report, records)
    assert "<div class='dashboard'><h2>Dashboard sample-app (us-east-1)</h2>" in page
    for title in ("Route 53 health check status", "Requests served per region", "Status codes",
                  "Latency as the customers saw it", "Lambda Duration, Errors and Throttles",
                  "Faults the layer injected", "Stop condition"):
        assert f"<h3>{title}</h3>" in page, title
    status = _chart(page, "Status codes")
    assert set(re.findall(r'font-size="12" fill="#[0-9a-f]{6}">([^<]*)</text>', status)) >= {"2xx", "5xx"}
    assert "<h4>Sample app under chaos</h4>" in page and "the blog (https://example.com/blog)" in page
    assert "Minimum per 60 s bucket · us-east-1" in page
    assert "p50 per 60 s bucket; p99 per 60 s bucket" in page
    assert "Average of 5XXError per 60 s ≥ 0.5 for 5 periods" in page  # the alarm widget's row
    assert "periods with data; the stop condition: never fired during the run</td>" in page
    alarm_graph = _chart(page, "the stop condition")
    assert ">alarm hello-5xx: ≥ 0.5</text>" in alarm_graph and "<polyline" in alarm_graph
    assert page.count("<svg") == 7  # one chart per metric widget, none from the records


def test_a_widget_without_data_is_shown_as_such_and_listed_in_report_json(tmp_path):
    report, records = dashboard_report()
    gaps = [(g["dashboard"], g["region"], g["widget"], g["title"]) for g in report["widgets_without_data"]]
    assert gaps == [("sample-app", "us-east-1", 6, "Faults the layer injected")]
    assert report["widgets_without_data"][0]["reason"] == "no datapoint in the run for faults_injected"
    page = render_html(report, records)
    assert "<h3>Faults the layer injected</h3><p class='what'>Sum per 60 s bucket · us-east-1</p>" \
           "<p class='no-data'>No data in this run: no datapoint in the run for faults_injected</p>" in page
    assert ('NO DATA: sample-app (us-east-1) widget 6 "Faults the layer injected": no datapoint in the run '
            "for faults_injected") in render_table(report)
    saved = json.loads(write_report(report, records, tmp_path)["json"].read_text())
    assert saved["widgets_without_data"] == report["widgets_without_data"]
    assert saved["dashboards"][0]["widgets"][3]["series"][2]["points"][2] == [120, 3.0]



def test_the_layers_widgets_without_data_are_a_gap_only_where_a_fault_was_attached():
    # The layer writes its EMF only when it injects: in a region no fault reached, "nothing
    # injected" is the right answer, and a standard run must not fail on it; where the fault
    # was attached, the same empty widget means the faults were not counted.
    reached, _ = dashboard_report(faulted_regions=["us-east-1"])
    assert [g["title"] for g in reached["widgets_without_data"]] == ["Faults the layer injected"]
    assert reached["widgets_quiet_by_design"] == []
    elsewhere, records = dashboard_report(faulted_regions=["eu-west-1"])
    assert elsewhere["widgets_without_data"] == []
    [quiet] = elsewhere["widgets_quiet_by_design"]
    assert (quiet["title"], quiet["reason"]) == (
        "Faults the layer injected", "no fault was attached in us-east-1, so the layer injected none there")
    page = render_html(elsewhere, records)
    assert ("<p class='what'>No data, as expected: no fault was attached in us-east-1, so the layer "
            "injected none there</p>") in page and "class='no-data'" not in page

def test_a_metric_with_no_data_beside_others_with_data_leaves_its_widget_drawn():
    report, _ = dashboard_report()
    status = report["dashboards"][0]["widgets"][3]
    assert [bool(s["points"]) for s in status["series"]] == [True, False, True]
    assert all(g["title"] != "Status codes" for g in report["widgets_without_data"])


def test_widgets_the_report_cannot_draw_or_read_are_listed_with_why():
    body = {"widgets": [{"type": "log", "properties": {"title": "Logs", "query": "fields @message"}},
                        {"type": "alarm", "properties": {"title": "Gone", "alarms": [
                            "arn:aws:cloudwatch:us-east-1:123456789012:alarm:deleted"]}}]}
    report, _ = dashboard_report({"us-east-1": FakeCloudWatch("us-east-1", {"other": body})})
    assert [(g["title"], g["reason"]) for g in report["widgets_without_data"]] == [
        ("Logs", "a log widget is not drawn locally (the report draws metric, alarm and text widgets)"),
        ("Gone", "alarm not found: deleted")]


def test_an_expression_the_emulator_refuses_costs_only_its_own_line():
    body = {"widgets": [{"type": "metric", "properties": {"title": "Errors", "stat": "Sum", "period": 60,
                                                          "metrics": [["AWS/Lambda", "Errors", "FunctionName", "hello", {"id": "m1"}],
                                                                      [{"expression": "m1 * 2", "label": "twice", "id": "e1"}]]}}]}
    report, _ = dashboard_report({"us-east-1": FakeCloudWatch("us-east-1", {"d": body}, refuse_expressions=True)})
    series = report["dashboards"][0]["widgets"][0]["series"]
    assert series[0]["points"] and series[1]["error"] == "not computed: ValidationError: Unsupported expression"
    assert report["widgets_without_data"] == []


def test_no_dashboard_draws_the_same_views_from_the_records_and_says_so():
    report, records = dashboard_report({"us-east-1": FakeCloudWatch("us-east-1", {})})
    assert report["dashboards"] == [] and report["widgets_without_data"] == []
    page = render_html(report, records)
    assert "No CloudWatch dashboard was found in the emulator" in page
    assert "Dashboards: none found in the emulator" in render_table(report)


def test_the_dashboard_reads_what_put_metric_data_wrote_to_the_emulator(moto_server):
    """The real moto server, real PutMetricData at emulated wall times, a real body."""
    namespace, name = unique("LoadGen"), unique("dash")
    # CloudWatch (and moto) stamp a 60 s bucket at its whole minute: a run starting on one reads
    # each bucket at its own template second.
    zero = dt.datetime.now(dt.timezone.utc).replace(second=0, microsecond=0) - dt.timedelta(hours=2)
    client = moto_server.client("cloudwatch", "us-east-1")
    for minute, (ok, failed) in enumerate([(12, 0), (12, 0), (7, 5), (12, 0)]):
        stamp = zero + dt.timedelta(seconds=minute * 60 + 5)
        client.put_metric_data(Namespace=namespace, MetricData=[
            {"MetricName": "status_2xx", "Timestamp": stamp, "Value": ok, "Dimensions": [{"Name": "Api", "Value": name}]},
            {"MetricName": "status_5xx", "Timestamp": stamp, "Value": failed,
             "Dimensions": [{"Name": "Api", "Value": name}]}])
    body = {"widgets": [{"type": "metric", "properties": {
        "title": "Status codes", "region": "us-east-1", "stat": "Sum", "period": 60,
        "metrics": [[namespace, "status_2xx", "Api", name], [".", "status_5xx", ".", "."],
                    [".", "status_4xx", ".", "."]]}},
        {"type": "metric", "properties": {"title": "Nothing", "stat": "Sum", "period": 60,
                                          "metrics": [[namespace, "never_written", "Api", name]]}}]}
    client.put_dashboard(DashboardName=name, DashboardBody=json.dumps(body))
    dashboards = read_dashboards(lambda region: moto_server.client("cloudwatch", region), ["us-east-1"],
                                 lambda t: zero + dt.timedelta(seconds=t), 0, 240)
    [mine] = [d for d in dashboards if d["name"] == name]
    ok, failed, missing = mine["widgets"][0]["series"]
    assert ok["points"] == [[0, 12.0], [60, 12.0], [120, 7.0], [180, 12.0]]
    assert failed["points"][2] == [120, 5.0] and missing["points"] == []
    gaps = [g for g in widgets_without_data(dashboards) if g["dashboard"] == name]
    assert [(g["widget"], g["title"]) for g in gaps] == [(1, "Nothing")]


# --- the charts (issue 11: full width, a y axis from zero, the bucket, the legend) -------------

def _svg_texts(svg):
    return [(float(x), float(y), words) for x, y, words in
            re.findall(r'<text x="([-\d.]+)" y="([-\d.]+)"[^>]*>([^<]*)</text>', svg)]


def test_every_chart_fills_the_content_column_through_its_viewbox():
    report, records = dashboard_report()
    page = render_html(report, records)
    charts = re.findall(r"<svg [^>]*>", page)
    assert charts and all('viewBox="0 0 968 ' in c and 'width="100%"' in c for c in charts)
    assert "svg.chart{display:block;width:100%;height:auto" in page


def test_the_y_axis_is_labelled_at_every_tick_from_zero():
    svg = render_chart(Chart([Series("requests", [(0, 3.0), (60, 17.0), (120, 9.0)])], 0, 180))
    ticks = re.findall(r'class="y-tick">([^<]*)</text>', svg)
    assert ticks == ["0", "5", "10", "15", "20"]


def test_a_latency_spike_does_not_flatten_the_steady_state_it_is_drawn_on_a_log_scale():
    points = [(t, 120.0) for t in range(0, 600, 60)] + [(600, 29000.0)]
    svg = render_chart(Chart([Series("p99", points)], 0, 660, y_label="ms", latency=True))
    assert re.findall(r'class="y-tick">([^<]*)</text>', svg) == ["0", "100", "1,000", "10k", "50k"]
    assert "ms; log scale above 100" in svg
    # the steady state sits a decade above zero, not on it: 120 ms is over 1/5 of the way up
    y = float(re.search(r'<circle cx="[\d.]+" cy="([\d.]+)"', svg).group(1))
    assert PLOT_BOTTOM - y > (PLOT_BOTTOM - PLOT_TOP) / 5
    linear = render_chart(Chart([Series("requests", points)], 0, 660))
    assert "log scale" not in linear


def test_an_axis_the_dashboard_bounds_clips_and_says_so():
    svg = render_chart(Chart([Series("p99", [(0, 100.0), (60, 5000.0)])], 0, 120, y_max=1000))
    assert re.findall(r'class="y-tick">([^<]*)</text>', svg)[-1] == "1,000"
    assert "1 points above the axis&#x27;s top (1,000): clipped, as the dashboard bounds it" in svg


def test_legends_and_the_fault_label_sit_outside_the_plot_area():
    report, records = dashboard_report()
    page = render_html(report, records)
    for svg in (part.split("</svg>")[0] for part in page.split("<svg")[1:]):
        for x, y, words in _svg_texts(svg):
            inside = PLOT_TOP <= y <= PLOT_BOTTOM and 50 <= x <= 850
            assert not inside or words == "", (words, x, y)


def test_the_status_codes_are_a_chart_of_their_own_by_class():
    records = _outage_records()
    chart = _chart(render_html(_report(records), records), "status codes by class")
    labels = set(re.findall(r'font-size="12" fill="#[0-9a-f]{6}">([^<]*)</text>', chart))
    assert labels == {"2xx", "5xx"}
    assert "requests per 10 s bucket, all clients" in render_html(_report(records), records)


def test_long_hypothesis_lines_wrap_in_the_page():
    report, records = dashboard_report()
    page = render_html(report, records)
    assert "<ul class='verdicts'>" in page and "overflow-wrap:anywhere" in page
    assert "pre{font-size:12px;white-space:pre-wrap" in page


def test_a_line_breaks_where_a_bucket_has_no_datapoint():
    points = [(0, 5.0), (60, 6.0), (120, 4.0), (600, 7.0), (660, 8.0)]
    svg = render_chart(Chart([Series("region_us-east-1", points, period=60)], 0, 720))
    assert svg.count("<polyline") == 2  # 0–120 and 600–660, nothing drawn across 180–540
    assert svg.count("<circle") == 5


def test_status_classes_without_colours_of_their_own_are_green_orange_and_red():
    report, records = dashboard_report({"us-east-1": FakeCloudWatch("us-east-1", {"d": {"widgets": [
        {"type": "metric", "properties": {"title": "Codes", "stat": "Sum", "period": 60, "metrics": [
            ["LoadGen", "status_5xx", "Api", "/hello"], [".", "status_2xx", ".", "."],
            ["AWS/ApiGateway", "4XXError", "ApiName", "api"]]}}]}})})
    legend = re.findall(r'font-size="12" fill="(#[0-9a-f]{6})">([^<]*)</text>', _chart(render_html(report, records), "Codes"))
    assert legend == [("#d62728", "status_5xx"), ("#2ca02c", "status_2xx"), ("#ff7f0e", "4XXError")]


def test_export_charts_writes_a_widget_as_a_standalone_svg_with_its_title_and_bucket(tmp_path):
    from local_emulator.experiment.export_charts import main
    report, records = dashboard_report()
    source = tmp_path / "report.json"
    source.write_text(json.dumps(report, default=str))
    assert main([str(source), str(tmp_path), "latency=Latency as", "missing=No such widget"]) == 1
    svg = (tmp_path / "report-latency.svg").read_text()
    assert svg.startswith('<svg class="chart" viewBox="0 0 968 ')
    assert ">Latency as the customers saw it</text>" in svg
    assert ">p50 per 60 s bucket; p99 per 60 s bucket · us-east-1 · template time, the fault&#x27;s span shaded</text>" in svg
    assert not (tmp_path / "report-missing.svg").exists()


def test_the_png_command_says_what_to_install_when_there_is_no_chromium(tmp_path, monkeypatch, capsys):
    from local_emulator.experiment.screenshot import main
    monkeypatch.setenv("CHROMIUM", str(tmp_path / "no-such-browser"))
    (tmp_path / "report.html").write_text("<html><body>x</body></html>")
    assert main([str(tmp_path / "report.html"), str(tmp_path / "out.png")]) == 2
    assert "no chromium found: install Debian's chromium (apt-get install chromium)" in capsys.readouterr().err


def test_a_widget_of_many_metrics_without_data_names_the_first_few():
    metrics = [["LambdaChaos", "InjectedFaults", "FunctionName", "hello", "FaultType", fault]
               for fault in ("latency", "error", "response", "timeout")]
    report, _ = dashboard_report({"us-east-1": FakeCloudWatch("us-east-1", {"d": {"widgets": [
        {"type": "metric", "properties": {"title": "Faults", "stat": "Sum", "period": 60, "metrics": metrics}}]}},
        values=lambda *_: None)})
    assert report["widgets_without_data"][0]["reason"] == (
        "no datapoint in the run for any of its 4 metrics (InjectedFaults (hello, latency), "
        "InjectedFaults (hello, error), InjectedFaults (hello, response), …)")


def test_a_stacked_widget_draws_each_line_on_top_of_those_before_it():
    stacked = render_chart(Chart([Series("a", [(0, 2.0)]), Series("b", [(0, 3.0)])], 0, 60, stacked=True))
    plain = render_chart(Chart([Series("a", [(0, 2.0)]), Series("b", [(0, 3.0)])], 0, 60))
    # b drawn at 2 + 3: the axis reaches 5 (its ticks 0, 2, 4, 6); unstacked, 3 is the top
    assert re.findall(r'class="y-tick">([^<]*)</text>', stacked) == ["0", "2", "4", "6"]
    assert re.findall(r'class="y-tick">([^<]*)</text>', plain) == ["0", "1", "2", "3"]


def test_a_fault_longer_than_the_steady_state_still_gets_a_log_axis():
    # Lambda's p99 Duration: 4 steady minutes at 95 ms, then 11 of 10 s timeouts and a 40 s one.
    points = [(60 * i, 95.0) for i in range(4)] + [(60 * i, 10000.0) for i in range(4, 15)] + [(900, 40000.0)]
    svg = render_chart(Chart([Series("Duration", points)], 0, 960, latency=True))
    assert "log scale above 10" in svg


def test_a_period_the_run_covers_only_in_part_is_not_drawn_but_kept_in_the_json():
    from local_emulator.experiment.dashboard_html import whole_periods
    series = {"period": 60, "points": [[-40, 3.0], [20, 12.0], [80, 12.0], [260, 12.0], [320, 2.0]]}
    assert whole_periods(series, 0, 330) == [(20, 12.0), (80, 12.0), (260, 12.0)]
    report, records = dashboard_report()  # the fake's last period, 300–360 s, ends after the run
    assert report["dashboards"][0]["widgets"][3]["series"][0]["points"][-1] == [300, 12.0]
    status = _chart(render_html(report, records), "Status codes")
    assert status.count("<circle") == 5 + 5  # 0–240 s for 2xx and 5xx (4xx has no data)


def test_annotations_are_drawn_at_their_value_and_time_and_named_in_the_legend():
    body = {"widgets": [{"type": "metric", "properties": {
        "title": "Errors", "stat": "Sum", "period": 60, "metrics": [["AWS/Lambda", "Errors", "FunctionName", "hello"]],
        "annotations": {"horizontal": [{"label": "budget", "value": 1.5}],
                        "vertical": [{"label": "deploy", "value": "2026-12-02T06:02:30Z"},
                                     {"label": "hidden", "value": "2026-12-02T06:03:00Z", "visible": False}]}}}]}
    report, records = dashboard_report({"us-east-1": FakeCloudWatch("us-east-1", {"d": body})})
    widget = report["dashboards"][0]["widgets"][0]
    assert [m["template_s"] for m in widget["vertical"]] == [150, 180]
    chart = _chart(render_html(report, records), "Errors")
    legend = re.findall(r'font-size="12" fill="#[0-9a-f]{6}">([^<]*)</text>', chart)
    assert legend == ["Errors", "budget (1.5)", "deploy (at 2:30)"]
    assert f'<line x1="{50 + 150 / 300 * 800:.1f}" y1="{PLOT_TOP}"' in chart  # the deploy, at 150 s
