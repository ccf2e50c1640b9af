"""One whole experiment on the embedded emulator: the steps, wired in order.

1. Start a moto server (the embedded AWS) on 127.0.0.1.
2. `deploy.sh --local --with-sample-app` in each region (layer, SSM documents, roles, FIS
   templates, the blog's sample application), then discover what landed where. An
   organisation-wide template also gets its target accounts (organization.py): the target
   stack in each, the central one included, and a fleet of tagged functions in the others.
3. Capture every function's configuration (of every account, for an organisation run).
4. Start the sandbox (functions run from their configuration with the real awslambdaric), the
   regional API Gateways, Route 53 health checks and latency routing, the load and the
   telemetry (metrics → CloudWatch, alarms evaluated). Every line a function's processes write
   goes to its region's CloudWatch Logs twin, which extracts the embedded-metric-format metrics
   (the layer's InjectedFaults, say); the services' own metrics are published as the services
   publish them (AWS/Lambda, AWS/ApiGateway, and AWS/Route53's HealthCheckStatus in us-east-1).
   Warm each function up.
5. Steady state for `pre_s`; then the FIS runner runs the template (its automation runs the
   real SSM document and handler); then recovery for `post_s`.
6. Stop traffic, build the report, compare configurations with the captured ones (and, for an
   organisation run, say per account and Region what its child automations did: locations.py).

Every duration is template time; `time_scale` compresses them all alike (see clock.py).
"""
from __future__ import annotations

import datetime as _dt
import dataclasses
import gc
import json
import secrets
import shutil
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from chaos_layer import config as chaos
from local_emulator.aws.api_gateway import ApiGateway
from local_emulator.clock import Clock, parse_duration
from local_emulator.aws.cloudwatch import AlarmEvaluator, MetricsPublisher
from local_emulator.aws.emf import EmfIngestor
from local_emulator.aws.accounts import DEFAULT_ACCOUNT
from local_emulator.experiment.deployment import STACK_NAME, Deployment, deploy, discover
from local_emulator.experiment.locations import location_rows
from local_emulator.experiment.organization import (TARGET_ACCOUNT, Organization, deploy_organization,
                                                    is_organization_template)
from local_emulator.errors import TemplateError
from local_emulator.aws.fis_runner import FisExperiment
from local_emulator.experiment.load import LoadGenerator, Telemetry
from local_emulator.aws.moto_server import MotoServer
from local_emulator.experiment.noise import StallMonitor
from local_emulator.experiment.report import Phases, build_report, render_table, write_report
from local_emulator.experiment.run_options import (DEFAULT_TIME_SCALE, check_settings, clear_previous_report,
                                                   template_path)
from local_emulator.aws.route53 import (METRICS_NAMESPACE as ROUTE53_NAMESPACE,
                                        METRICS_REGION as ROUTE53_REGION, HealthCheckConfig,
                                        HealthChecker, LatencyRouter)
from local_emulator.environment.sandbox import Sandbox
from local_emulator.experiment.snapshot import capture, differences

__all__ = ["Settings", "RunResult", "run_experiment", "apply_overrides", "expected_duration"]

# The log group the local customer simulator's lines are counted under (on AWS it is the
# simulator function's own /aws/lambda/NAME).
SIMULATOR_LOG_GROUP = "/aws/lambda/customer-simulator"
# Route 53 needs a latency table; only the order matters: a client's own region is nearest.
_NEAR_MS, _FAR_MS = 10.0, 80.0


@dataclass
class Settings:
    """What the command line sets; every time is template seconds."""

    template: str = "lambda-regional-outage"
    time_scale: float = DEFAULT_TIME_SCALE
    rate: float = 0.5                      # requests per template second per client region
    regions: Tuple[str, ...] = ("us-east-1", "eu-west-1")
    experiment_region: str = "us-east-1"
    # An organisation-wide template's accounts besides the central one (moto's default); it
    # runs in experiment_region of each of them and of the central account.
    target_accounts: Tuple[str, ...] = (TARGET_ACCOUNT,)
    pre_s: float = 120.0
    post_s: float = 300.0
    output: Path = Path("reports/latest")
    overrides: Dict[str, str] = field(default_factory=dict)  # "Action.Param" → value
    alarm_threshold: Optional[float] = None
    # None: each region's deployed Route 53 health check (interval, threshold), else defaults
    health: Optional[HealthCheckConfig] = None
    # region → the region whose /health its check calls; a mismatch reproduces the blog's bug
    # (a health check pointing at the wrong region, so failover never happens)
    health_check_targets: Dict[str, str] = field(default_factory=dict)
    dns_ttl_s: float = 60.0
    # Metrics are flushed and alarms evaluated every 30 template s. CloudWatch evaluates a
    # standard alarm once a minute; each flush is a few datums per series in moto (its
    # GetMetricStatistics used to scan every datapoint ever stored: 10 s then tripled the
    # emulator's own load as a run went on; moto_cloudwatch.py now indexes them by metric).
    telemetry_interval_s: float = 30.0
    progress: bool = True
    # Seeds the layer's percentage and jitter draws (see sandbox.py); None: a fresh one, which
    # the report prints so `--seed` can replay the run's fault decisions.
    seed: Optional[int] = None


@dataclass
class RunResult:
    report: Dict[str, Any]
    paths: Dict[str, Path]
    records: List[Dict[str, Any]]
    restored: bool
    differences: List[str]


def apply_overrides(template: Dict[str, Any], overrides: Mapping[str, str]) -> Dict[str, Any]:
    """`{"Action.Param": value}`: set an action parameter (`duration`, `maxDuration`) or a
    document parameter inside `documentParameters`; unknown actions are refused by name."""
    template = json.loads(json.dumps(template))
    for key, value in overrides.items():
        action_name, _, param = key.partition(".")
        action = template["actions"].get(action_name)
        if action is None or not param:
            raise TemplateError(f"override {key!r}: write ACTION.PARAMETER with an action of the "
                                f"template ({', '.join(template['actions'])})")
        parameters = action.setdefault("parameters", {})
        if param in ("duration", "maxDuration", "documentArn"):
            parameters[param] = value
        else:
            document = json.loads(parameters.get("documentParameters") or "{}")
            document[param] = value
            parameters["documentParameters"] = json.dumps(document)
    return template


def expected_duration(template: Mapping[str, Any]) -> float:
    """Template seconds the experiment should take: the longest startAfter chain, counting a
    wait's `duration` and an automation's `Duration` document parameter (its own sleep)."""
    actions = template["actions"]
    memo: Dict[str, float] = {}

    def own(spec: Mapping[str, Any]) -> float:
        parameters = spec.get("parameters") or {}
        if "duration" in parameters:
            return parse_duration(parameters["duration"])
        document = json.loads(parameters.get("documentParameters") or "{}")
        sleeps = "Duration" in document and document.get("ChaosMode") is None
        return parse_duration(document["Duration"]) if sleeps else 0.0

    def finish(name: str) -> float:
        if name not in memo:
            after = actions[name].get("startAfter") or []
            memo[name] = max((finish(a) for a in after), default=0.0) + own(actions[name])
        return memo[name]

    return max(finish(name) for name in actions)


class _Progress:
    """One status line: phase, elapsed and remaining template time, traffic so far."""

    def __init__(self, clock: Clock, load: Optional[LoadGenerator], enabled: bool,
                 write: Callable[[str], None]) -> None:
        self.clock, self.load, self.enabled, self.write = clock, load, enabled, write
        self.phase, self.phase_start, self.phase_length = "setup", 0.0, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="progress", daemon=True)

    def start(self) -> "_Progress":
        if self.enabled:
            self._thread.start()
        return self

    def enter(self, phase: str, length_s: float) -> None:
        self.phase, self.phase_start, self.phase_length = phase, self.clock.now(), length_s
        if self.enabled:
            self.write(f"== {phase} (~{_mmss(length_s)} template time, "
                       f"~{self.clock.to_real(length_s):.0f} s here)")

    def line(self) -> str:
        elapsed = self.clock.now() - self.phase_start
        records = self.load.snapshot() if self.load else []
        errors = sum(1 for r in records if r.status >= 400)
        left = self.phase_length - elapsed
        # An experiment ends when FIS says so (an alarm, a slow action), not at the estimate.
        when = (f"~{_mmss(left)} remaining" if left > 0 else
                f"{_mmss(-left)} past the estimate of {_mmss(self.phase_length)}, waiting for the "
                + ("experiment" if self.phase == "experiment" else f"{self.phase} phase") + " to end")
        return f"   {self.phase:<10} {_mmss(elapsed)} elapsed, {when} | {len(records)} requests, {errors} failed"

    def _loop(self) -> None:
        while not self._stop.wait(2.0):
            self.write(self.line())

    def stop(self) -> None:
        self._stop.set()


def _mmss(seconds: float) -> str:
    return f"{int(seconds // 60):02d}:{int(seconds % 60):02d}"


def run_experiment(settings: Settings, *, aws: Optional[MotoServer] = None,
                   deployment: Optional[Deployment] = None,
                   write: Callable[[str], None] = lambda text: print(text, file=sys.stderr, flush=True),
                   on_experiment: Optional[Callable[[FisExperiment], None]] = None) -> RunResult:
    """Run everything (see the module docstring). `aws`/`deployment` reuse an emulator that is
    already deployed (the tests do, to deploy once for several runs)."""
    # Refuse settings the run cannot honour before anything is deployed (SettingsError), and
    # remove an earlier run's report so that a failed run leaves none that looks like its own.
    check_settings(settings)
    clear_previous_report(Path(settings.output))
    output = Path(settings.output)
    output.mkdir(parents=True, exist_ok=True)
    organization_run = is_organization_template(template_path(settings.template))
    own_server = aws is None
    if own_server:
        write(f"Starting the embedded AWS (moto server); log: {output / 'moto.log'}")
        aws = MotoServer(log_path=str(output / "moto.log")).start()
    try:
        if deployment is None:
            write(f"Deploying with deploy.sh --local to {', '.join(settings.regions)}")
            deploy(aws.endpoint_url, settings.regions, aws.env(), output,
                   target_accounts=settings.target_accounts if organization_run else ())
            deployment = discover(aws, settings.regions)
        if organization_run and deployment.organization is None:
            deployment.organization = _deploy_organization(aws, deployment, settings, output, write)
        return _run(settings, aws, deployment, output, write, on_experiment,
                    deployment.organization if organization_run else None)
    finally:
        if own_server:
            aws.stop()


def _deploy_organization(aws: MotoServer, deployment: Deployment, settings: Settings,
                         output: Path, write: Callable[[str], None]) -> Organization:
    """The organisation run's accounts: the target stack in each, a fleet in the others."""
    accounts = (DEFAULT_ACCOUNT, *settings.target_accounts)
    write(f"Deploying the target stack with deploy.sh --target-stack to {settings.experiment_region} "
          f"of accounts {', '.join(accounts)}, and a fleet of tagged functions in "
          f"{', '.join(settings.target_accounts)}")
    here = deployment.regions[settings.experiment_region]
    return deploy_organization(aws, regions=[settings.experiment_region],
                               app_function=here.routes["/health"], log_dir=output,
                               stack_name=STACK_NAME, accounts=accounts)


def _run(settings: Settings, aws: MotoServer, deployment: Deployment, output: Path,
         write: Callable[[str], None], on_experiment,
         organization: Optional[Organization] = None) -> RunResult:
    for region, target in settings.health_check_targets.items():
        if region not in settings.regions or target not in settings.regions:
            raise TemplateError(f"health check target {region}={target}: both must be among the "
                                f"regions {', '.join(settings.regions)}")
    template = apply_overrides(deployment.template(settings.template, settings.experiment_region),
                               settings.overrides)
    alarm = _stop_alarm(aws, template, settings)
    # An organisation run changes functions in every account: the snapshot covers each.
    accounts = organization.accounts if organization else None
    before = capture(aws, settings.regions, accounts)
    clock = Clock(scale=settings.time_scale, wall_start=_fresh_wall_start(aws, alarm))
    work = Path(tempfile.mkdtemp(prefix="lambda-sandbox-"))
    lambda_metrics = {r: MetricsPublisher(aws, r, clock, "AWS/Lambda") for r in settings.regions}
    # CloudWatch Logs of each region: the EMF in every line the functions (and the layer in
    # them) write becomes metrics, flushed with the telemetry.
    ingestors = {r: EmfIngestor(aws, r, clock) for r in settings.regions}
    if settings.seed is None:
        settings = dataclasses.replace(settings, seed=secrets.randbelow(1_000_000))
    # A configuration change reaches new invocations within ~5 template s (Lambda applies an
    # update within seconds too), read off the invocations' path.
    sandbox = Sandbox(aws, clock, work, metrics=lambda_metrics, seed=str(settings.seed),
                      refresh_real_s=min(max(clock.to_real(5.0), 0.1), 1.0), refresh_in_background=True,
                      log_sink=lambda region, group, line: ingestors[region].ingest(
                          line, group, real_time=True))
    api_metrics = {r: MetricsPublisher(aws, r, clock, "AWS/ApiGateway") for r in settings.regions}
    gateways = {r: ApiGateway(r, deployment.regions[r].routes, sandbox, clock, metrics=api_metrics[r],
                              api_name=deployment.regions[r].api_name, stage=deployment.regions[r].stage)
                for r in settings.regions}
    # Route 53 publishes every health check's status to us-east-1, whichever region it checks.
    route53_metrics = MetricsPublisher(aws, ROUTE53_REGION, clock, ROUTE53_NAMESPACE)
    checkers = {r: HealthChecker(r, lambda g=gateways[settings.health_check_targets.get(r, r)]:
                                 g.request("/health")[0], clock,
                                 settings.health or _deployed_health_check(deployment, r),
                                 **_health_check_metrics(deployment, r, route53_metrics))
                for r in settings.regions}
    latency = {(c, e): (_NEAR_MS if c == e else _FAR_MS) for c in settings.regions for e in settings.regions}
    router = LatencyRouter(latency, {r: (lambda c=checkers[r]: c.healthy) for r in settings.regions},
                           clock, ttl_s=settings.dns_ttl_s)
    apis = {r: g.respond for r, g in gateways.items()}
    # Enough client threads that requests hanging until the integration timeout never queue
    # behind each other (that would be the client's bottleneck, not the system's).
    in_flight = settings.rate * len(settings.regions) * settings.time_scale * clock.to_real(29.0)
    generator = LoadGenerator(apis, router, clock, rate_per_s=settings.rate,
                              client_regions=settings.regions, workers=min(256, int(in_flight * 2) + 16),
                              # the simulator's EMF lines (status_*, region_*, Latency) go to its
                              # region's CloudWatch Logs, stamped in emulated wall time already
                              emf_writers={r: ingestors[r].writer(SIMULATOR_LOG_GROUP)
                                           for r in settings.regions})
    evaluators = [AlarmEvaluator(aws, r, clock) for r in settings.regions]
    telemetry = Telemetry(clock, list(api_metrics.values()) + list(lambda_metrics.values())
                          + [route53_metrics] + list(ingestors.values()),
                          evaluators,
                          settings.telemetry_interval_s)
    progress = _Progress(clock, generator, settings.progress, write)
    stalls = StallMonitor(clock)
    experiment: Optional[FisExperiment] = None
    try:
        write("Warming up every function (cold starts are not part of the steady state)")
        for region, gateway in gateways.items():
            for route in gateway.routes:
                gateway.request(route)
        clock.rebase()  # the report counts from the steady state, not from the set-up
        # What the set-up made (boto3 clients and their models, the deployment) lives for the
        # whole run: a full collection used to walk it a dozen times a run, each a stall of up
        # to 0.35 real s (5 template s at scale 15). Frozen, the collector skips it.
        gc.collect()
        gc.freeze()
        for checker in checkers.values():
            checker.start()
        stalls.start()
        generator.start()
        telemetry.start()
        progress.start()
        start = clock.now()
        progress.enter("pre", settings.pre_s)
        clock.sleep(settings.pre_s)
        experiment = FisExperiment(template, aws=aws, region=settings.experiment_region, clock=clock,
                                   on_event=lambda m: write(f"   {m}") if settings.progress else None)
        progress.enter("experiment", expected_duration(template))
        experiment.start()
        if on_experiment:
            on_experiment(experiment)
        while not experiment.wait(0.2):
            pass
        progress.enter("post", settings.post_s)
        clock.sleep(settings.post_s)
        end = clock.now()
    finally:
        def stop_experiment() -> None:
            if experiment is not None and not experiment.wait(0):
                experiment.stop("the local run was interrupted")
                experiment.wait(150)
            if experiment is not None:  # a cancel's detach runs on in its own execution
                experiment.automation.wait_all(600)

        # The experiment's own clean-up (its automation's detach) comes first of what changes
        # functions; every step runs even when an earlier one fails.
        _each([progress.stop, generator.stop, stop_experiment, telemetry.stop, stalls.stop,
               *[c.stop for c in checkers.values()], *[g.close for g in gateways.values()]])
        sandbox_stats = sandbox.stats()
        seen = sandbox.variables_seen()
        # what the functions wrote while their environments shut down reaches CloudWatch too
        _each([sandbox.close, *[i.flush for i in ingestors.values()],
               lambda: shutil.rmtree(work, ignore_errors=True), gc.unfreeze])
    after = capture(aws, settings.regions, accounts)
    diff = differences(before, after)
    records = [r.to_dict() for r in generator.snapshot()]
    phases = Phases(start, experiment.start_time, experiment.end_time, end)
    report = build_report(
        records, phases,
        health={r: {"checks": [c.__dict__ for c in checkers[r].state.results],
                    "transitions": [list(t) for t in checkers[r].state.transitions]}
                for r in settings.regions},
        experiment=experiment.summary(), alarm=_alarm_summary(alarm, evaluators),
        configurations={"restored": not diff, "differences": diff, "functions": sorted(before)},
        sandbox=sandbox_stats, settings=_settings_dict(settings),
        faulted_regions=_faulted_regions(seen, deployment),
        latency_fault=_latency_fault(seen, deployment),
        emulator={"seed": settings.seed, "stalls": stalls.summary(), "telemetry_errors": telemetry.errors,
                  "emf": {r: i.stats() for r, i in ingestors.items()}},
        # [issue 9 §6] what a function left changed still does, and the command that detaches it
        after=after, template=template, endpoint_url=aws.endpoint_url,
        # [issue 11 §4] the deployed dashboards, each widget's data read back with GetMetricData
        cloudwatch=lambda region: aws.client("cloudwatch", region), wall=clock.wall,
        # [issue 12 §4] per account and Region: its child automations, its functions restored
        locations=location_rows(experiment.automation.executions, before, diff) if organization else None)
    paths = write_report(report, records, output)
    write(render_table(report))
    write(f"\nReport: {paths['html']} (also {paths['json'].name}, {paths['text'].name})")
    return RunResult(report, paths, records, not diff, diff)


def _each(steps: Sequence[Callable[[], None]]) -> None:
    """Run every clean-up step, even after one fails; then raise the first failure."""
    failures = []
    for step in steps:
        try:
            step()
        except BaseException as exc:  # noqa: BLE001 - re-raised below, after the others ran
            failures.append(exc)
    if failures:
        raise failures[0]


def _stop_alarm(aws: MotoServer, template: Mapping[str, Any], settings: Settings) -> Optional[Dict[str, Any]]:
    """The template's stop-condition alarm definition (its threshold changed if asked)."""
    arns = [c["value"] for c in template.get("stopConditions") or []
            if c.get("source") == "aws:cloudwatch:alarm"]
    if not arns:
        return None
    name, region = arns[0].split(":alarm:", 1)[-1], arns[0].split(":")[3] or settings.experiment_region
    client = aws.client("cloudwatch", region)
    found = client.describe_alarms(AlarmNames=[name])["MetricAlarms"]
    if not found:
        raise TemplateError(f"stop condition alarm {arns[0]} does not exist in {region}; "
                            "deploy.sh --local creates it: check its log")
    alarm = found[0]
    if settings.alarm_threshold is not None:
        keys = ("AlarmName", "AlarmDescription", "ActionsEnabled", "Namespace", "MetricName",
                "Statistic", "Dimensions", "Period", "EvaluationPeriods", "DatapointsToAlarm",
                "ComparisonOperator", "TreatMissingData", "Unit")
        definition = {k: alarm[k] for k in keys if alarm.get(k) not in (None, "")}
        client.put_metric_alarm(**definition, Threshold=float(settings.alarm_threshold))
        alarm = client.describe_alarms(AlarmNames=[name])["MetricAlarms"][0]
    if alarm.get("StateValue") == "ALARM":  # left over from an earlier run on this emulator
        client.set_alarm_state(AlarmName=name, StateValue="OK", StateReason="new local run")
    return alarm


def _deployed_health_check(deployment: Deployment, region: str) -> HealthCheckConfig:
    """The region's Route 53 health check as deployed (RequestInterval, FailureThreshold)."""
    deployed = deployment.regions[region].health_check or {}
    return HealthCheckConfig(request_interval_s=float(deployed.get("RequestInterval", 30)),
                             failure_threshold=int(deployed.get("FailureThreshold", 3)))


def _health_check_metrics(deployment: Deployment, region: str,
                          publisher: MetricsPublisher) -> Dict[str, Any]:
    """The HealthChecker's metric arguments: the deployed check's id (stack output
    HealthCheckId) and the us-east-1 publisher; none when no check was deployed."""
    health_check_id = deployment.regions[region].outputs.get("HealthCheckId")
    if not health_check_id:
        return {}
    return {"metrics": publisher, "health_check_id": health_check_id}


def _fresh_wall_start(aws: MotoServer, alarm: Optional[Mapping[str, Any]]) -> _dt.datetime:
    """Now, or later if an earlier run on this emulator already wrote metrics up to a later
    emulated time: a new run must not evaluate its alarm on an old run's data."""
    now = _dt.datetime.now(_dt.timezone.utc)
    if not alarm:
        return now
    points = aws.client("cloudwatch", alarm["AlarmArn"].split(":")[3]).get_metric_statistics(
        Namespace=alarm["Namespace"], MetricName=alarm["MetricName"],
        Dimensions=alarm.get("Dimensions") or [], StartTime=now - _dt.timedelta(days=1),
        EndTime=now + _dt.timedelta(days=7), Period=60, Statistics=["SampleCount"])["Datapoints"]
    latest = max((p["Timestamp"] for p in points), default=now)
    return max(now, latest + _dt.timedelta(seconds=2 * int(alarm["Period"]) + 60))


def _alarm_summary(alarm: Optional[Mapping[str, Any]],
                   evaluators: Sequence[AlarmEvaluator]) -> Optional[Dict[str, Any]]:
    if not alarm:
        return None
    fired = [t for e in evaluators for (t, name, state) in e.history
             if name == alarm["AlarmName"] and state == "ALARM"]
    worst = [e.worst[alarm["AlarmName"]] for e in evaluators if alarm["AlarmName"] in e.worst]
    return {"name": alarm["AlarmName"], "threshold": float(alarm["Threshold"]),
            "operator": alarm["ComparisonOperator"], "period_s": float(alarm["Period"]),
            "evaluation_periods": int(alarm["EvaluationPeriods"]), "statistic": alarm["Statistic"],
            "metric": alarm["MetricName"], "namespace": alarm["Namespace"],
            "worst": max(worst) if worst else None,
            "fired": bool(fired), "fired_at": min(fired) if fired else None}


def _faulted_regions(seen: Mapping[str, Any], deployment: Deployment) -> List[str]:
    """Regions whose /health function ran with a fault: there, Route 53 should fail over."""
    return sorted(region for region, here in deployment.regions.items()
                  if any(variables.get(chaos.FAULT_TYPE)
                         for _, variables in seen.get(f"{region}/{here.routes['/health']}", [])))


def _latency_fault(seen: Mapping[str, Any], deployment: Deployment) -> Optional[Dict[str, Any]]:
    """The latency fault a /hello function ran with (from the configurations the sandbox ran)."""
    for region, here in deployment.regions.items():
        for _, variables in seen.get(f"{region}/{here.routes['/hello']}", []):
            if variables.get(chaos.FAULT_TYPE) == "latency":
                return {"function": here.routes["/hello"], "region": region,
                        "latency_ms": float(variables.get(chaos.LATENCY_MS) or 0),
                        "jitter_ms": float(variables.get(chaos.LATENCY_JITTER_MS) or 0)}
    return None


def _settings_dict(settings: Settings) -> Dict[str, Any]:
    values = dict(settings.__dict__)
    values["health"] = dict(settings.health.__dict__) if settings.health else "as deployed"
    values["output"] = str(settings.output)
    values["regions"] = list(settings.regions)
    return values
