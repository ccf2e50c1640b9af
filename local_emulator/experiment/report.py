"""The experiment's report: what happened before, during and after the fault, and the verdicts.

Everything is in template time. Three phases: `pre` (steady state, before the experiment
starts), `experiment` (from the FIS experiment's start to its end) and `post` (recovery). For
each phase the report gives, per function (`/hello` from the load, `/health` from the checks),
per serving region and per client region: requests, p50/p95/p99 latency, error rate (share of
non-2xx answers) and the share served by each region; per client region the time until its
traffic failed over and until it came back; then the hypotheses, each with a pass/fail verdict
and the numbers behind it.

Output: a terminal table, JSON, and an HTML page. The page *is* the deployed CloudWatch
dashboard: every widget of every dashboard in the run's regions, metric for metric, read back
from the emulator's CloudWatch with GetMetricData over the run's window (dashboard_data.py) and
drawn at full width (dashboard_html.py, charts.py), the span when the fault was really attached
shaded on each chart (attach step returned → detach step returned, see leftovers.py). A widget
with no data in the run says so on the page and in report.json's `widgets_without_data`. With
no dashboard deployed, the same views come from the load's own records (record_charts.py).
Beside the dashboard, what only a local run knows: the hypotheses and their verdicts, the phase
tables, failover times and the configuration diff. When the run leaves a function changed, the
report says which, until when the fault still injects, why (expected for a template whose
detach is a separate action that a stopped experiment never runs) and the command that
detaches it. screenshot.py renders the page to a PNG (`make report-png`).
"""
from __future__ import annotations

import datetime as _dt
import html
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from sample_app.dashboard import CHAOS_NAMESPACE
from local_emulator.experiment.noise import SIGNIFICANCE, median_lower_bound, rise_probability, window_p50_spread
from local_emulator.experiment.charts import Band
from local_emulator.experiment.dashboard_data import read_dashboards, widgets_without_data
from local_emulator.experiment.dashboard_html import render_dashboards
from local_emulator.experiment.leftovers import fault_steps, fault_window, leftovers, render_leftovers
from local_emulator.experiment.locations import locations_html, render_locations
from local_emulator.experiment.record_charts import record_charts

__all__ = ["PHASES", "Phases", "percentile", "phase_stats", "failover_times", "latency_rise",
           "build_report", "fault_bands",
           "render_table", "render_html", "write_report"]

PHASES = ("pre", "experiment", "post")


@dataclass(frozen=True)
class Phases:
    """Phase boundaries in template seconds: pre [start, fault_start), experiment, post [.., end)."""

    start: float
    fault_start: float
    fault_end: float
    end: float

    def of(self, at: float) -> Optional[str]:
        if self.start <= at < self.fault_start:
            return "pre"
        if self.fault_start <= at < self.fault_end:
            return "experiment"
        if self.fault_end <= at <= self.end:
            return "post"
        return None

    def to_dict(self) -> Dict[str, List[float]]:
        return {"pre": [self.start, self.fault_start], "experiment": [self.fault_start, self.fault_end],
                "post": [self.fault_end, self.end]}


def percentile(values: Sequence[float], q: float) -> Optional[float]:
    """Linear-interpolated percentile (q in 0–100) of the values; None when there are none."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def phase_stats(records: Iterable[Mapping[str, Any]]) -> Dict[str, Any]:
    """Requests, latency percentiles, error rate and share per serving region of some requests."""
    rows = list(records)
    latencies = [r["latency_ms"] for r in rows if r.get("latency_ms") is not None]
    errors = sum(1 for r in rows if not 200 <= (r.get("status") or 0) < 300)
    served: Dict[str, int] = {}
    for r in rows:
        region = r.get("served_region") or "failed"
        served[region] = served.get(region, 0) + 1
    return {"requests": len(rows),
            "p50_ms": _round(percentile(latencies, 50)), "p95_ms": _round(percentile(latencies, 95)),
            "p99_ms": _round(percentile(latencies, 99)),
            "error_rate": round(errors / len(rows), 4) if rows else None,
            "share": {k: round(v / len(rows), 4) for k, v in sorted(served.items())}}


def _round(value: Optional[float]) -> Optional[float]:
    return None if value is None else round(value, 1)


def _by_phase(records: Sequence[Mapping[str, Any]], phases: Phases) -> Dict[str, Dict[str, Any]]:
    return {phase: phase_stats(r for r in records if phases.of(r["at"]) == phase) for phase in PHASES}


def failover_times(records: Sequence[Mapping[str, Any]], client_region: str,
                   phases: Phases) -> Dict[str, Optional[float]]:
    """Seconds from the fault's start until this client region's requests are answered by
    another region (failover), and from the fault's end until they are answered at home again
    (recovery). None when it never happened."""
    own = sorted((r for r in records if r["client_region"] == client_region), key=lambda r: r["at"])
    away = next((r["at"] for r in own if r["at"] >= phases.fault_start
                 and r.get("served_region") not in (None, client_region)), None)
    failover = None if away is None else round(away - phases.fault_start, 1)
    recovery = None
    if away is not None:
        # Back home: from the first answer at home after which no answer comes from elsewhere.
        # A failed request is not an answer from elsewhere: errors are the steady-state
        # hypothesis's business, not routing's.
        answered = [r for r in own if r["at"] >= max(phases.fault_end, away) and r.get("served_region")]
        for index, r in enumerate(answered):
            if all(x["served_region"] == client_region for x in answered[index:]):
                recovery = round(r["at"] - phases.fault_end, 1)
                break
    return {"time_to_failover_s": failover, "time_to_recovery_s": recovery}


def build_report(records: Sequence[Mapping[str, Any]], phases: Phases, *,
                 health: Mapping[str, Mapping[str, Any]], experiment: Mapping[str, Any],
                 alarm: Optional[Mapping[str, Any]] = None, configurations: Mapping[str, Any],
                 sandbox: Mapping[str, Any], settings: Mapping[str, Any],
                 steady_state_tolerance: float = 0.10, faulted_regions: Sequence[str] = (),
                 latency_fault: Optional[Mapping[str, Any]] = None,
                 latency_tolerance: float = 0.15, emulator: Optional[Mapping[str, Any]] = None,
                 after: Optional[Mapping[str, Any]] = None, template: Optional[Mapping[str, Any]] = None,
                 endpoint_url: Optional[str] = None,
                 dashboards: Optional[Sequence[Mapping[str, Any]]] = None,
                 cloudwatch: Optional[Callable[[str], Any]] = None,
                 wall: Optional[Callable[[float], _dt.datetime]] = None,
                 locations: Optional[Sequence[Mapping[str, Any]]] = None) -> Dict[str, Any]:
    """The report as a dict (what report.json holds); `records` are RequestRecord dicts.

    `health[region]` = {"checks": [CheckResult dicts], "transitions": [[t, healthy], ...]};
    `alarm` = {"name", "threshold", "period_s", "statistic", "metric", "fired"} when there is one.
    `latency_fault` = {"region", "function", "latency_ms", "jitter_ms"} when the experiment
    injected latency: the report then checks the rise of /hello's p50 in that region.
    `emulator` = {"seed", "stalls" (noise.StallMonitor.summary), "telemetry_errors"}: the run's
    own noise and how to replay it, printed with the verdicts.
    `after` (snapshot.capture after the run), `template` (the template as run) and
    `endpoint_url` (the embedded AWS) let the report say until when a function left changed
    still injects its fault and how to detach it; `template` also tells the fault window which
    action attached and which detached.
    `dashboards` (dashboard_data.read_dashboards) are the deployed dashboards with their data;
    given instead `cloudwatch` (region → the emulator's boto3 CloudWatch client) and `wall`
    (Clock.wall), the report reads them itself, from every region of `settings["regions"]`,
    over the run's window. `widgets_without_data` lists the widgets that showed nothing.
    `locations` (locations.location_rows) are an organisation-wide run's accounts and Regions:
    each one's child automations and whether its functions were restored exactly.
    """
    client_regions = sorted({r["client_region"] for r in records})
    served_regions = sorted({r["routed_region"] for r in records})
    health_records = [{"at": c["at"], "client_region": "route53", "routed_region": region,
                       "status": c["status"] or 0, "latency_ms": c.get("latency_ms"),
                       "served_region": region if c["ok"] else None}
                      for region, h in health.items() for c in h.get("checks", [])]
    report: Dict[str, Any] = {
        "settings": dict(settings), "phases": phases.to_dict(), "experiment": dict(experiment),
        "functions": {"/hello": _by_phase(records, phases),
                      "/health": _by_phase(health_records, phases)},
        "regions": {region: _by_phase([r for r in records if r["routed_region"] == region], phases)
                    for region in served_regions},
        "clients": {region: {**_by_phase([r for r in records if r["client_region"] == region], phases),
                             **failover_times(records, region, phases)}
                    for region in client_regions},
        "health_checks": {region: {"transitions": h.get("transitions", []),
                                   "checks": len(h.get("checks", [])),
                                   "failed": sum(1 for c in h.get("checks", []) if not c["ok"])}
                          for region, h in health.items()},
        "alarm": dict(alarm) if alarm else None,
        "configurations": dict(configurations), "sandbox": dict(sandbox),
        "locations": [dict(row) for row in locations or []],
    }
    report["latency_fault"] = dict(latency_fault) if latency_fault else None
    report["emulator"] = dict(emulator or {})
    report["faithful"] = faithfulness(report["emulator"].get("stalls"),
                                      _unhealthy_controls(report["health_checks"], _unchanged_regions(report)))
    report["failures"] = failure_causes(records, phases)
    report["fault_window"] = fault_window(experiment, template, report["locations"])
    report["fault_steps"] = fault_steps(experiment, template, report["locations"])
    report["leftovers"] = leftovers(
        configurations.get("differences") or [], after, experiment=experiment, run_end=phases.end,
        template=template, template_name=_template_name(settings, template), endpoint_url=endpoint_url)
    if dashboards is None and cloudwatch is not None and wall is not None:
        regions = settings.get("regions") or sorted(health) or client_regions
        dashboards = read_dashboards(cloudwatch, regions, wall, phases.start, phases.end)
    report["dashboards"] = [dict(d) for d in dashboards or []]
    gaps = widgets_without_data(report["dashboards"])
    quiet = [g for g in gaps if _quiet_by_design(g, report["dashboards"], faulted_regions)]
    # [issue 11 §5] a widget without data is a failure of the run, except the layer's own
    # widgets in a region no fault reached: there "nothing injected" is the right answer.
    report["widgets_without_data"] = [g for g in gaps if g not in quiet]
    report["widgets_quiet_by_design"] = [
        {**g, "reason": f"no fault was attached in {g['region']}, so the layer injected none there"}
        for g in quiet]
    report["hypotheses"] = _hypotheses(report, records, phases, steady_state_tolerance,
                                       list(faulted_regions))
    if latency_fault:
        report["hypotheses"] += _latency_hypothesis(records, phases, latency_fault, latency_tolerance)
    return report



def _quiet_by_design(gap: Mapping[str, Any], dashboards: Sequence[Mapping[str, Any]],
                     faulted_regions: Sequence[str]) -> bool:
    """Whether a widget without data draws only the chaos layer's metrics, in a region whose
    functions no fault reached (the layer writes its EMF only when it injects)."""
    if gap.get("widget") is None:
        return False
    board = next((d for d in dashboards if d.get("name") == gap.get("dashboard")
                  and d.get("region") == gap.get("region")), None)
    if board is None:
        return False
    series = (board.get("widgets") or [])[gap["widget"]].get("series") or []
    return bool(series) and all(s.get("namespace") == CHAOS_NAMESPACE
                                and s.get("region") not in faulted_regions for s in series)

# A stall of the emulator longer than this (template time) can by itself fail a request that was
# in flight: half API Gateway's 29 s integration timeout, the shortest deadline a client request
# meets (function timeouts are floored in real time, see sandbox.MIN_TIMEOUT_REAL_S).
MAX_FAITHFUL_STALL_MS = 29000.0 / 2


def faithfulness(stalls: Optional[Mapping[str, Any]],
                 unhealthy_controls: Sequence[Tuple[str, float]] = ()) -> Dict[str, Any]:
    """Whether the emulator kept up with the run: its worst stall (StallMonitor) against
    MAX_FAITHFUL_STALL_MS, and no health check of a region whose functions never changed turned
    unhealthy (`unhealthy_controls`: (region, template s)). No fault reached such a region, so on
    this machine only the emulator's own slowness fails its checks (they time out after 2 s of
    template time, or 0.25 s of real time, far less than a request's 29 s), and the failover that
    follows would be the emulator's, not the system's. A run that did not keep up cannot blame
    a failure on the system."""
    worst = (stalls or {}).get("max_ms")
    rerun = "; rerun with a lower --time-scale (e.g. half this one) or on a quieter machine"
    if worst is not None and worst > MAX_FAITHFUL_STALL_MS:
        ok, words = False, (
            f"the emulator did NOT keep up: it stalled for {worst:.0f} ms of template time, more "
            f"than half API Gateway's 29 s timeout, so requests in flight then may have failed for "
            f"the emulator's sake, not the system's{rerun}")
    elif unhealthy_controls:
        region, at = unhealthy_controls[0]
        ok, words = False, (
            f"the emulator did NOT keep up: the health check of {region}, none of whose functions "
            f"changed, turned UNHEALTHY at {at:.0f} s; no fault reached that region, so its "
            f"checks failed for the emulator's sake (worst stall "
            f"{'not measured' if worst is None else format(worst, '.0f') + ' ms'}){rerun}")
    elif worst is None:
        ok, words = True, "not measured"
    else:
        ok, words = True, (f"the emulator kept up: its worst stall was {worst:.0f} ms of template time "
                           f"(at most {MAX_FAITHFUL_STALL_MS:.0f}, half API Gateway's 29 s timeout)")
    return {"ok": ok, "worst_stall_ms": worst, "limit_ms": MAX_FAITHFUL_STALL_MS, "words": words}


def _unhealthy_controls(health: Mapping[str, Mapping[str, Any]],
                        unchanged: Sequence[str]) -> List[Tuple[str, float]]:
    """(region, template s) of the first turn to UNHEALTHY of each unchanged region's check."""
    turns = [(region, at) for region in unchanged
             for at, healthy in (health.get(region) or {}).get("transitions", []) if not healthy]
    return sorted({region: at for region, at in reversed(turns)}.items(), key=lambda turn: turn[1])


def failure_causes(records: Sequence[Mapping[str, Any]], phases: Phases) -> List[Dict[str, Any]]:
    """Failed /hello requests counted by client region, phase, serving region, status and cause
    (`RequestRecord.error`: "function timeout", "integration timeout (29 s)", "Lambda throttled",
    "emulator capacity (not Lambda's limit)"…), most frequent first within each group."""
    counts: Dict[Tuple[str, str, str, int, str], int] = {}
    for r in records:
        if 200 <= (r.get("status") or 0) < 300:
            continue
        key = (r["client_region"], phases.of(r["at"]) or "-", r.get("routed_region") or "-",
               int(r.get("status") or 0), r.get("error") or "unknown")
        counts[key] = counts.get(key, 0) + 1
    order = {phase: i for i, phase in enumerate(PHASES)}
    rows = sorted(counts.items(), key=lambda kv: (kv[0][0], order.get(kv[0][1], 9), -kv[1], kv[0]))
    return [{"client_region": c, "phase": ph, "served_by": routed, "status": status, "cause": cause,
             "requests": n} for (c, ph, routed, status, cause), n in rows]


def _failure_lines(report: Mapping[str, Any]) -> List[str]:
    rows = report.get("failures") or []
    if not rows:
        return ["Failed /hello requests: none", ""]
    lines = ["Failed /hello requests by cause",
             f"{'client':<12}{'phase':<12}{'sent to':<12}{'status':>7}{'requests':>10}  cause"]
    for row in rows:
        lines.append(f"{row['client_region']:<12}{row['phase']:<12}{row['served_by']:<12}"
                     f"{row['status']:>7}{row['requests']:>10}  {row['cause']}")
    return lines + [""]


def _dashboard_lines(report: Mapping[str, Any]) -> List[str]:
    """Which dashboards the report drew, and each widget that had no data in the run."""
    dashboards = report.get("dashboards") or []
    if not dashboards:
        return ["Dashboards: none found in the emulator (the charts come from the load's records)", ""]
    lines = [f"Dashboard {d.get('name')} ({d.get('region')}): {len(d.get('widgets') or [])} widgets"
             for d in dashboards]
    for gap in report.get("widgets_without_data") or []:
        lines.append(f"  NO DATA: {gap['dashboard']} ({gap['region']}) widget {gap['widget']} "
                     f"\"{gap['title']}\": {gap['reason']}")
    return lines + [""]


def _emulator_lines(report: Mapping[str, Any]) -> List[str]:
    """The run's own noise and how to replay it."""
    emulator = report.get("emulator") or {}
    lines = []
    if emulator.get("seed") is not None:
        lines.append(f"Seed {emulator['seed']}: the fault decisions (percentage, jitter) replay with "
                     f"--seed {emulator['seed']}")
    stalls = emulator.get("stalls")
    if stalls and stalls.get("ticks"):
        worst = ", ".join(f"{ms:.0f} ms at {at:.0f} s" for at, ms in stalls.get("worst", []))
        lines.append(f"Emulator's own lateness (template ms; it multiplies with the time scale): "
                     f"p50 {stalls['p50_ms']:g}, p99 {stalls['p99_ms']:g}, max {stalls['max_ms']:g}; "
                     f"{stalls['stalls']} stalls over {stalls['threshold_ms']:g} ms"
                     + (f" (worst: {worst})" if worst else ""))
    throttles = sum(s.get("throttles", 0) for s in (report.get("sandbox") or {}).values())
    capacity = sum(s.get("capacity_refusals", 0) for s in (report.get("sandbox") or {}).values())
    lines.append(f"Lambda throttles: {throttles} (Lambda's limits: reserved concurrency, else 1,000 "
                 "per account and region)"
                 + (f"; {capacity} invocations found no room on this machine (the emulator's limit, "
                    "not Lambda's: lower --rate)" if capacity else ""))
    faithful = report.get("faithful") or {}
    if faithful.get("words") and (faithful.get("worst_stall_ms") is not None or faithful.get("ok") is False):
        lines.append(("" if faithful.get("ok") else "WARNING: ") + faithful["words"][0].upper()
                     + faithful["words"][1:])
    for error in emulator.get("telemetry_errors") or []:
        lines.append(f"Telemetry error (metrics or alarms may be incomplete): {error}")
    return lines + [""]


def _template_name(settings: Mapping[str, Any], template: Optional[Mapping[str, Any]]) -> str:
    name = ((template or {}).get("tags") or {}).get("Name")
    if name:
        return str(name)
    given = Path(str(settings.get("template") or "this template"))
    return given.parent.name if given.name == "template.json" else given.name


def latency_rise(records: Sequence[Mapping[str, Any]], phases: Phases, region: str) -> Optional[float]:
    """p50 of successful /hello requests served in `region` during the experiment, minus before."""
    served = [r for r in records if r.get("served_region") == region and 200 <= r["status"] < 300]
    before = percentile([r["latency_ms"] for r in served if phases.of(r["at"]) == "pre"], 50)
    during = percentile([r["latency_ms"] for r in served if phases.of(r["at"]) == "experiment"], 50)
    return None if before is None or during is None else during - before


def _latency_hypothesis(records: Sequence[Mapping[str, Any]], phases: Phases,
                        fault: Mapping[str, Any], tolerance: float) -> List[Dict[str, Any]]:
    expected = float(fault["latency_ms"]) + float(fault.get("jitter_ms") or 0) / 2
    if expected >= 29000:
        return []  # meant to exceed API Gateway's timeout: judged by failover, not by latency
    rise = latency_rise(records, phases, fault["region"])
    ok = rise is not None and abs(rise - expected) <= tolerance * expected
    shown = "no successful requests to compare" if rise is None else f"rose {rise:.0f} ms"
    return [_verdict(f"/hello latency in {fault['region']} rose by the injected {expected:g} ms "
                     f"(±{tolerance:.0%})", ok, f"p50 {shown}")]


def _hypotheses(report: Mapping[str, Any], records: Sequence[Mapping[str, Any]], phases: Phases,
                tolerance: float, faulted: List[str]) -> List[Dict[str, Any]]:
    verdicts = []
    hello = report["functions"]["/hello"]
    if hello["pre"]["requests"] and hello["post"]["requests"]:
        verdicts.append(_recovery(records, phases, tolerance, _unchanged_regions(report)))
    alarm = report.get("alarm")
    if alarm:
        worst = "no data" if alarm.get("worst") is None else f"{alarm['worst']:g}"
        verdicts.append(_verdict(
            "errors stayed under the alarm threshold", not alarm.get("fired"),
            f"{alarm['name']}: {alarm['statistic']} of {alarm['metric']} per {alarm['period_s']:g} s "
            f"peaked at {worst} ({alarm.get('operator', '')} {alarm['threshold']:g} for "
            f"{alarm.get('evaluation_periods', 1)} periods to fire); "
            f"{'fired at ' + format(alarm['fired_at'], '.0f') + ' s' if alarm.get('fired') else 'never fired'}"))
    for region in faulted:
        times = report["clients"].get(region, {})
        verdicts.append(_verdict(
            f"{region} clients failed over to a healthy region",
            times.get("time_to_failover_s") is not None,
            _routing_words(region, times, report)))
        for other, stats in report["clients"].items():
            if other in faulted:
                continue
            during, before = stats["experiment"], stats["pre"]
            if during["requests"] and before["requests"]:
                mine = [r for r in records if r["client_region"] == other]
                ok, words = _no_rise(_failures(mine, phases, "pre"), _failures(mine, phases, "experiment"))
                verdicts.append(_verdict(f"{other} clients were unaffected by the fault in {region}",
                                         ok, f"errors {words}"))
    restored = report["configurations"].get("restored")
    if restored is not None:
        verdicts.append(_verdict("every function's configuration restored exactly", bool(restored),
                                 "; ".join(report["configurations"].get("differences", [])) or "identical"))
    return verdicts


# Recovery is "how quickly your system goes back to its normal state" (seed 000's post-experiment
# state): the settling times tried, and the share of the post phase that must then be steady.
RECOVERY_STEP_S = 30.0
RECOVERY_STEADY_SHARE = 0.5


def _unchanged_regions(report: Mapping[str, Any]) -> List[str]:
    """Regions none of whose functions ran more than one configuration (sandbox stats): their
    latency moves only with the emulator, so they measure its drift through the run."""
    regions: Dict[str, bool] = {}
    for key, stats in (report.get("sandbox") or {}).items():
        region = key.split("/", 1)[0]
        regions[region] = regions.get(region, True) and stats.get("configurations", 1) <= 1
    return sorted(region for region, unchanged in regions.items() if unchanged)


def _drift(records: Sequence[Mapping[str, Any]], phases: Phases, regions: Sequence[str],
           since: float) -> Optional[Tuple[float, float, float]]:
    """(slowdown, p50 before, p50 after) of requests served by `regions`, steady state against
    the post phase from `since`: the factor by which the emulator itself slowed down (none: 1).
    A factor, not a difference: a machine shared with other work stretches each request's
    time in proportion. None when those regions served no request in either span."""
    served = [r for r in records if r.get("served_region") in regions]
    before = percentile([r["latency_ms"] for r in served if phases.of(r["at"]) == "pre"], 50)
    after = percentile([r["latency_ms"] for r in served if r["at"] >= since
                        and phases.of(r["at"]) == "post"], 50)
    if not before or after is None:
        return None
    return max(1.0, after / before), before, after


def _recovery(records: Sequence[Mapping[str, Any]], phases: Phases, tolerance: float,
              unchanged: Sequence[str] = ()) -> Dict[str, Any]:
    """Back to the steady state after the experiment: from the earliest settling time (in steps
    of RECOVERY_STEP_S, within the first half of the post phase) the rest of the post phase has,
    in every region whose functions changed, a p50 within `tolerance` of that region's own
    steady state plus the run's own noise, and no rise in failures beyond chance.

    Each region is judged on its own: the p50 of a mix of a slow and a fast region is the p50
    of a two-humped sample, which neither region's latency nor its noise describes. The
    regions whose functions never changed are the control: they measure the factor by which
    the emulator itself slowed through the run (a busy machine stretches every request alike).
    With no control, every region is judged and no drift allowed. Faster is recovered too."""
    judged = _judged_regions(records, phases, unchanged)
    if not judged or not [r for r in records if phases.of(r["at"]) == "post"]:
        return _verdict(_recovery_name(tolerance), False, "no requests after the experiment to compare")
    before = _failures(records, phases, "pre")
    latest = (phases.end - phases.fault_end) * (1 - RECOVERY_STEADY_SHARE)
    settles = [RECOVERY_STEP_S * i for i in range(int(latest // RECOVERY_STEP_S) + 1)
               if RECOVERY_STEP_S * i < latest] + [latest]
    for settle in settles:
        since = phases.fault_end + settle
        rows = [r for r in records if r["at"] >= since and phases.of(r["at"]) == "post"]
        if not rows:
            break
        drift = _drift(records, phases, unchanged, since) if unchanged else None
        regions = [_region_recovery(records, phases, region, since, tolerance, drift,
                                    lenient=settle == settles[-1]) for region in judged]
        errors_ok, errors_words = _no_rise(before, _failed_of(rows))
        ok = errors_ok and all(region[0] for region in regions)
        if ok or settle == settles[-1]:
            break
    figures = "; ".join(words for _, words in regions) + f"; {_drift_words(unchanged, drift)}" + \
        f"; errors {errors_words}"
    if not ok:
        return _verdict(_recovery_name(tolerance), False, f"not back within the first {latest:g} s of the "
                        f"post phase: its last {len(rows)} requests read {figures}")
    when = ("throughout the post phase" if settle == 0 else
            f"back {settle:g} s after the experiment ended, then steady for the last {len(rows)} requests")
    return _verdict(_recovery_name(tolerance), True, f"{when}: {figures}")


def _recovery_name(tolerance: float) -> str:
    return f"post-experiment back within {tolerance:.0%} of steady state"


def _judged_regions(records: Sequence[Mapping[str, Any]], phases: Phases,
                    unchanged: Sequence[str]) -> List[str]:
    """The serving regions the recovery verdict judges: those that served the steady state
    and whose functions changed; every one that served it when none stayed unchanged."""
    served = sorted({r["served_region"] for r in records
                     if r.get("served_region") and phases.of(r["at"]) == "pre"})
    changed = [region for region in served if region not in unchanged]
    return changed if unchanged else served


def _region_recovery(records: Sequence[Mapping[str, Any]], phases: Phases, region: str, since: float,
                     tolerance: float, drift: Optional[Tuple[float, float, float]],
                     lenient: bool) -> Tuple[bool, str]:
    """Whether one serving region's p50 from `since` is back within its steady state's p50
    × (1 + tolerance) plus its quarters' spread, times the emulator's slowdown; and the figures.
    `lenient` (the post phase's steady half only): a p50 above that is let off when over its
    n requests it is not known to be, 99 % sure (noise.median_lower_bound). Only there, since a
    slow start followed by a fast end is a two-humped sample, whose median bound is loose."""
    mine = [r for r in records if r.get("served_region") == region]
    pre = [r for r in mine if phases.of(r["at"]) == "pre"]
    after = [r["latency_ms"] for r in mine if r["at"] >= since and phases.of(r["at"]) == "post"]
    steady = percentile([r["latency_ms"] for r in pre], 50)
    spread = window_p50_spread([(r["at"], r["latency_ms"]) for r in pre], phases.start, phases.fault_start)
    noise = (f"+{tolerance:.0%} ± {spread:.0f} ms: its steady state's quarters' p50s strayed that far"
             if spread is not None else f"+{tolerance:.0%}; no noise measured: a quarter of the steady "
             "state had no request, lengthen --pre")
    if not after:
        return False, f"{region} served no request after {since:g} s (steady p50 {steady:.1f} ms)"
    slowdown = drift[0] if drift else 1.0
    allowed = (steady * (1 + tolerance) + (spread or 0.0)) * slowdown
    p50, lowest = percentile(after, 50), median_lower_bound(after)
    words = (f"served by {region}: p50 {steady:.1f} → {p50:.1f} ms (allowed ≤ {allowed:.0f}: {noise}"
             + (f", × {slowdown:.2f} the emulator's slowdown" if drift else "") + ")")
    if p50 <= allowed:
        return True, words
    if lenient and lowest <= allowed:
        return True, words + (f", but over its {len(after)} requests the p50 is only known to be ≥ "
                              f"{lowest:.1f} ms, 99 % sure: within its sampling noise")
    return False, words


def _drift_words(unchanged: Sequence[str], drift: Optional[Tuple[float, float, float]]) -> str:
    if not unchanged:
        return "no region left unchanged to measure the emulator's drift"
    if drift is None:
        return f"{', '.join(unchanged)}, whose functions never changed, served too little to measure the drift"
    return (f"the emulator slowed × {drift[0]:.2f}: {', '.join(unchanged)}, whose functions never "
            f"changed, read p50 {drift[1]:.0f} → {drift[2]:.0f} ms")


def _failures(records: Sequence[Mapping[str, Any]], phases: Phases, phase: str) -> Tuple[int, int]:
    """(failed, total) of the requests in one phase; a failure is any non-2xx answer."""
    return _failed_of([r for r in records if phases.of(r["at"]) == phase])


def _failed_of(rows: Sequence[Mapping[str, Any]]) -> Tuple[int, int]:
    """(failed, total) of some requests; a failure is any non-2xx answer."""
    return sum(1 for r in rows if not 200 <= (r.get("status") or 0) < 300), len(rows)


def _no_rise(before: Tuple[int, int], after: Tuple[int, int]) -> Tuple[bool, str]:
    """Whether failures rose beyond chance between two phases (noise.rise_probability), and the
    counts and chance in words: the error rate's noise is its sampling noise."""
    chance = rise_probability(before[0], before[1], after[0], after[1])
    rate = lambda counts: f"{counts[0] / counts[1]:.1%} ({counts[0]}/{counts[1]})"  # noqa: E731
    words = f"{rate(before)} → {rate(after)}"
    if chance >= 1.0:
        return True, words + ": no rise"
    return chance >= SIGNIFICANCE, (f"{words}: a rise this large comes by chance {chance:.1%} of the "
                                    f"time with nothing changed (a rise fails below {SIGNIFICANCE:.0%})")


def _routing_words(region: str, stats: Mapping[str, Any], report: Mapping[str, Any]) -> str:
    """When a client region's traffic left home and came back, in words, with what each time
    counts from: the experiment's start/end, and the attach/detach when the fault window is known."""
    failover, recovery = stats.get("time_to_failover_s"), stats.get("time_to_recovery_s")
    (start, end), window = report["phases"]["experiment"], report.get("fault_window")
    if failover is None:
        failed = (stats.get("experiment") or {}).get("share", {}).get("failed", 0)
        return (f"no failover (always answered by {region}" if not failed else
                f"no failover (answered only by {region}; {failed:.0%} of its requests during the "
                "experiment failed") + "), so no need to come back home"
    words = f"failed over {failover:g} s after the experiment started"
    if window:
        words += f" ({_relative(start + failover - window[0])} the attach returned at {window[0]:g} s)"
    if recovery is None:
        return words + "; never came back home before the run ended"
    words += f"; back home {recovery:g} s after the experiment ended"
    if window and window[1] is not None:
        words += f" ({_relative(end + recovery - window[1])} the detach returned at {window[1]:g} s)"
    elif window:
        words += " (the fault was never detached)"
    return words


def _relative(seconds: float) -> str:
    # The handler changes the function before its step returns, so traffic can move first.
    return f"{seconds:.1f} s after" if seconds >= 0 else f"{-seconds:.1f} s before"


def _verdict(name: str, ok: bool, detail: str) -> Dict[str, Any]:
    return {"hypothesis": name, "verdict": "pass" if ok else "fail", "detail": detail}


# --- rendering -------------------------------------------------------------------------------

def _fmt(value: Any, suffix: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and suffix == "%":
        return f"{value:.1%}"
    return f"{value:g}{suffix}" if isinstance(value, (int, float)) else str(value)


def _table(title: str, groups: Mapping[str, Mapping[str, Any]]) -> List[str]:
    header = f"{'':<14}{'phase':<11}{'requests':>9}{'p50 ms':>10}{'p95 ms':>10}{'p99 ms':>10}" \
             f"{'errors':>8}  share by region"
    lines = [title, header, "-" * len(header)]
    for name, phases in groups.items():
        for phase in PHASES:
            s = phases[phase]
            share = ", ".join(f"{k} {v:.0%}" for k, v in s["share"].items() if k != "failed")
            if s["share"].get("failed"):
                share += ("; " if share else "") + f"failed {s['share']['failed']:.0%}"
            lines.append(f"{name:<14}{phase:<11}{s['requests']:>9}{_fmt(s['p50_ms']):>10}"
                         f"{_fmt(s['p95_ms']):>10}{_fmt(s['p99_ms']):>10}"
                         f"{_fmt(s['error_rate'], '%'):>8}  {share}")
    return lines + [""]


def _actions(experiment: Mapping[str, Any]) -> List[str]:
    """The FIS actions and their automations' steps, with template times."""
    def span(item: Mapping[str, Any]) -> str:
        start, end = item.get("start"), item.get("end")
        if start is None and end is None:
            return "never started"
        return f"{_fmt(None if start is None else round(start))}–{_fmt(None if end is None else round(end))} s"

    lines = ["Actions"]
    for name, action in (experiment.get("actions") or {}).items():
        lines.append(f"  {name} ({action.get('actionId')}): {action.get('state')} {span(action)}"
                     + (f" — {action['reason'][:160]}" if action.get("reason") else ""))
        for step in ((action.get("automation") or {}).get("steps") or []):
            lines.append(f"    {step['name']:<24}{step['status']:<11}{span(step)}")
    return lines + [""]


def _headline(experiment: Mapping[str, Any]) -> str:
    """`Experiment stopped — Stop condition … entered ALARM state`; the reason is left out when
    it only repeats the state ("Experiment completed — Experiment completed.")."""
    line = f"Experiment {experiment.get('state')}"
    reason = str(experiment.get("reason") or "").strip()
    if reason and reason.rstrip(".").strip().lower() not in line.lower():
        line += f" — {reason}"
    return line


def render_table(report: Mapping[str, Any]) -> str:
    """The terminal view: phases, per function / region / client, failover, hypotheses."""
    experiment = report["experiment"]
    phases = report["phases"]
    lines = [_headline(experiment),
             "Phases (template s): " + ", ".join(f"{p} {a:.0f}–{b:.0f}" for p, (a, b) in phases.items()),
             ""]
    lines += _actions(experiment)
    lines += _table("Per function", report["functions"])
    lines += _table("Per serving region (/hello)", report["regions"])
    lines += _table("Per client region (/hello)", {k: v for k, v in report["clients"].items()})
    window, steps = report.get("fault_window"), report.get("fault_steps") or {}
    if window:
        ran = [f"the {name} step ran {span[0]:.0f}–{span[1]:.0f} s" for name, span in steps.items() if span]
        lines.append(f"Fault attached (attach returned → detach returned): {window[0]:g} s → "
                     + (f"{window[1]:g} s" if window[1] is not None else "never detached during the run")
                     + (f" ({', '.join(ran)})" if ran else ""))
    else:
        lines.append("Fault attached: never (no attach step succeeded)")
    for region, stats in report["clients"].items():
        lines.append(f"{region} clients: {_routing_words(region, stats, report)}")
    for region, checks in report["health_checks"].items():
        moves = ", ".join(f"{'healthy' if ok else 'UNHEALTHY'} at {t:.0f} s" for t, ok in checks["transitions"])
        lines.append(f"health check {region}: {checks['failed']}/{checks['checks']} failed; {moves or 'no change'}")
    lines.append("")
    lines += render_locations(report.get("locations") or [])
    lines += _failure_lines(report)
    lines += _dashboard_lines(report)
    lines += _emulator_lines(report)
    lines.append("Hypotheses")
    for h in report["hypotheses"]:
        lines.append(f"  [{h['verdict'].upper():4}] {h['hypothesis']}: {h['detail']}")
    config = report["configurations"]
    if config.get("restored") is not None:
        lines.append("")
        lines.append("All functions restored exactly." if config["restored"] else
                     "Functions NOT restored: " + "; ".join(config.get("differences", [])))
    if report.get("leftovers"):
        lines += [""] + render_leftovers(report["leftovers"])
    return "\n".join(lines)


def _shaded_span(report: Mapping[str, Any]) -> Optional[Tuple[float, float, str]]:
    """(from, to, label) of the span the fault was attached, clipped to the run; None if never."""
    window = report.get("fault_window")
    if not window:
        return None
    end = report["phases"]["post"][1]
    if window[1] is not None:
        return (window[0], window[1], f"fault attached {window[0]:.0f}–{window[1]:.0f} s "
                "(attach step returned → detach step returned)")
    expiries = [f["expires_template_s"] for f in (report.get("leftovers") or {}).get("functions", [])
                if f.get("expires_template_s") is not None]
    if expiries and min(expiries) < end:
        return (window[0], min(expiries), f"fault attached from {window[0]:.0f} s, never detached; "
                f"expired ~{min(expiries):.0f} s")
    return window[0], end, f"fault attached from {window[0]:.0f} s, never detached (still at the run's end)"


def fault_bands(report: Mapping[str, Any]) -> List[Band]:
    """The chart bands of the run: the attach and detach steps (light: the function changes
    during them), then the span the fault was attached (attach returned → detach returned)."""
    bands = [Band(span[0], span[1], f"{step} step running {span[0]:.0f}–{span[1]:.0f} s: the function "
                  "changes during it", strong=False)
             for step, span in (report.get("fault_steps") or {}).items() if span]
    shaded = _shaded_span(report)
    if shaded:
        bands.append(Band(*shaded))
    return bands


_CSS = """
*{box-sizing:border-box}
body{font-family:sans-serif;font-size:15px;line-height:1.4;margin:0;padding:16px 24px;color:#222;
     max-width:1600px;overflow-wrap:anywhere}
h1{font-size:24px;margin:0 0 8px}h2{font-size:19px;margin:28px 0 6px}
h3{font-size:16px;margin:22px 0 2px}h4{font-size:15px;margin:8px 0 2px}
p{margin:4px 0}.what{color:#555;font-size:13px}
.no-data{color:#a00;font-weight:bold}
svg.chart{display:block;width:100%;height:auto;margin:2px 0 6px}
section.widget{margin:0 0 10px}
ul.verdicts{padding-left:0;list-style:none}ul.verdicts li{margin:6px 0}
.pass{color:#17692c;font-weight:bold}.fail{color:#a00;font-weight:bold}
table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ddd;padding:3px 8px;text-align:left}
.state-ALARM{color:#a00;font-weight:bold}.state-OK{color:#17692c}
pre{font-size:12px;white-space:pre-wrap;overflow-wrap:anywhere;background:#f7f7f7;padding:10px}
pre.leftovers{background:#fff3cd;padding:1em}
"""


def _verdict_list(report: Mapping[str, Any]) -> List[str]:
    items = [f"<li><span class='{h['verdict']}'>[{h['verdict'].upper()}]</span> "
             f"<b>{html.escape(h['hypothesis'])}</b>: {html.escape(h['detail'])}</li>"
             for h in report.get("hypotheses") or []]
    return ["<h2>Hypotheses</h2>", "<ul class='verdicts'>", *items, "</ul>"] if items else []


def _gaps(report: Mapping[str, Any]) -> List[str]:
    gaps = report.get("widgets_without_data") or []
    if not gaps:
        return []
    rows = "".join(f"<li>{html.escape(str(g['dashboard']))} ({html.escape(str(g['region']))}) widget "
                   f"{g['widget']} “{html.escape(g['title'])}”: {html.escape(g['reason'])}</li>" for g in gaps)
    return [f"<p class='no-data'>{len(gaps)} dashboard widget(s) had no data in this run:</p><ul>{rows}</ul>"]


def render_html(report: Mapping[str, Any], records: Sequence[Mapping[str, Any]]) -> str:
    """A self-contained page: the hypotheses and their verdicts, the deployed dashboard drawn
    widget for widget from the emulator's CloudWatch (else the same views from the load's own
    records), the span the fault was attached shaded on every chart, then the whole table."""
    bands = fault_bands(report)
    still = render_leftovers(report.get("leftovers"))
    leftover = [f"<h2>{html.escape(still[0])}</h2>", "<pre class='leftovers'>"
                + html.escape("\n".join(line[2:] for line in still[1:])) + "</pre>"] if still else []
    if report.get("dashboards"):
        charts = render_dashboards(report, bands)
    else:
        charts = ["<h2>The run, from the load's own records</h2>",
                  "<p class='what'>No CloudWatch dashboard was found in the emulator, so these "
                  "charts come from the requests the load recorded.</p>"]
        charts += [f"<section class='widget metric'><h3>{html.escape(title)}</h3>"
                   f"<p class='what'>{html.escape(what)}</p>{svg}</section>"
                   for title, what, svg in record_charts(report, records, bands)]
    body = ["<h1>Local chaos experiment</h1>", f"<p>{html.escape(_headline(report['experiment']))}</p>",
            f"<p>{html.escape(str(report['experiment'].get('description', '')))}</p>", *leftover,
            *_verdict_list(report), *locations_html(report.get("locations") or []), *_gaps(report), *charts,
            "<div class='whole-report'><h2>The whole report</h2><pre>" + html.escape(render_table(report))
            + "</pre></div>"]
    return ("<!doctype html><html><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>Local chaos experiment</title><style>{_CSS}</style></head><body>"
            + "\n".join(body) + "</body></html>")


def write_report(report: Mapping[str, Any], records: Sequence[Mapping[str, Any]],
                 out_dir: Path) -> Dict[str, Path]:
    """Write report.json (with every request), report.html and report.txt; return their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "report.json", "html": out / "report.html", "text": out / "report.txt"}
    paths["json"].write_text(json.dumps({**report, "requests": list(records)}, indent=1, default=str))
    paths["html"].write_text(render_html(report, records), encoding="utf-8")
    paths["text"].write_text(render_table(report) + "\n", encoding="utf-8")
    return paths
