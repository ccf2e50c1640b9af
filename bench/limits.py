"""Lambda's control plane at its real limits, on moto, in compressed time (bench_automation.py).

A `Location` is one account and Region on moto: its own Lambda client (with the tests'
`MotoGaps`), the chaos layer, N tagged functions, and a `TokenBucket` of Lambda's 15 requests/s
per account and Region that answers TooManyRequestsException (429) when it is empty, from a
botocore `before-call` hook, so the handler's retry path runs and is counted. `run_document`
drives the handler as the document does: the Plan step, then one `apply` per batch in order,
then the detach plan and its batches; `run_locations` runs one such run per location in
parallel threads, as SSM runs TargetLocations with TargetLocationMaxConcurrency 100 %.

Time is compressed by `speed` S: every rate x S, every latency and delay / S, and a modelled
second is S real seconds. Needs `mock_aws` active.
"""
from __future__ import annotations

import dataclasses
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace
from typing import Any, Dict, List, Optional, Sequence

import boto3

import automation_handler as ah
from automation_fixtures import OWN_WRAPPER, MotoGaps, code_zip, fault_params, publish_layer

LAMBDA_RPS = 15.0        # Lambda control-plane requests/s per account and Region
STEP_LIMIT_S = 600.0     # an aws:executeScript step runs at most 600 s
TAG = {"TargetTagKey": "chaos:target", "TargetTagValue": "bench"}
_THROTTLED = (429, "TooManyRequestsException", "Rate exceeded")


class TokenBucket:
    """`rate` tokens a real second, at most `burst` saved up (one modelled second's worth)."""

    def __init__(self, rate: float, burst: float):
        self.rate, self.burst = rate, burst
        self._tokens, self._last = burst, time.monotonic()
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
            self._last = now
            if self._tokens >= 1:
                self._tokens -= 1
                return True
            return False


class Background:
    """Another caller of the same account and Region (a deploy, a dashboard): takes tokens
    from the location's bucket at `rps` modelled requests/s, without calling moto (its 429s
    are its own; what matters is the budget left to the handler)."""

    def __init__(self, bucket: TokenBucket, rps: float, speed: float):
        self.bucket, self.interval = bucket, 1.0 / (rps * speed)
        self.sent = self.throttled = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "Background":
        self._thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        due = time.monotonic()
        while not self._stop.is_set():
            due += self.interval
            pause = due - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            self.sent += 1
            self.throttled += not self.bucket.take()


def _session(account: str) -> Any:
    """Credentials of `account` (moto maps an assumed role's keys to the role's account)."""
    sts = boto3.client("sts", region_name="us-east-1")
    creds = sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/bench",
                            RoleSessionName="bench")["Credentials"]
    return boto3.session.Session(aws_access_key_id=creds["AccessKeyId"],
                                 aws_secret_access_key=creds["SecretAccessKey"],
                                 aws_session_token=creds["SessionToken"])


class Location:
    """One account and Region: N functions tagged chaos:target=bench (two layers of their
    own, variables, their own exec wrapper; no alias), the chaos layer, Lambda's bucket."""

    _roles: Dict[str, str] = {}

    def __init__(self, account: str, region: str, n: int, speed: float, latency_s: float):
        self.account, self.region, self.n = account, region, n
        self.speed, self.latency_s = speed, latency_s
        self.session = _session(account)
        self.lam = self.session.client("lambda", region_name=region)
        self.tagging = self.session.client("resourcegroupstaggingapi", region_name=region)
        self.gaps = MotoGaps(self.lam, in_progress_polls=1)
        self.gaps.raw = self.session.client("lambda", region_name=region)  # this account's
        self.gaps.calls = _Discard()  # no per-call log: thousands of functions
        self.layer = publish_layer(self.gaps.raw, "lambda-chaos")
        own = [publish_layer(self.gaps.raw, name) for name in ("otel-collector", "powertools")]
        role = self._role()
        for i in range(n):
            self.gaps.raw.create_function(
                FunctionName=f"bench-{i:05d}", Runtime="python3.12", Role=role,
                Handler="app.handler", Code={"ZipFile": code_zip()}, Layers=own,
                Environment={"Variables": {"TABLE_NAME": "orders", "LOG_LEVEL": "INFO",
                                           "AWS_LAMBDA_EXEC_WRAPPER": OWN_WRAPPER}},
                Timeout=10, MemorySize=256, Tags={"chaos:target": "bench"})
        # moto builds its tagging index on the first GetResources (seconds): not the handler's
        self.tagging.get_resources(ResourceTypeFilters=["lambda:function"], ResourcesPerPage=1)
        self.bucket = TokenBucket(LAMBDA_RPS * speed, LAMBDA_RPS)
        self.calls = self.throttled = 0
        self._lock = threading.Lock()
        self.lam.meta.events.register_first("before-call.lambda", self._control_plane)
        self.tagging.meta.events.register_first("before-call", self._latency)

    def set_speed(self, speed: float) -> None:
        self.speed = speed
        self.bucket = TokenBucket(LAMBDA_RPS * speed, LAMBDA_RPS)

    @property
    def name(self) -> str:
        return f"{self.account}/{self.region}"

    def _role(self) -> str:
        if self.account not in self._roles:
            iam = self.session.client("iam", region_name="us-east-1")
            self._roles[self.account] = iam.create_role(
                RoleName="fn-role", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        return self._roles[self.account]

    def _latency(self, **_: Any) -> None:
        with self._lock:
            self.calls += 1
        time.sleep(self.latency_s / self.speed)

    def _control_plane(self, **_: Any) -> Optional[tuple]:
        """Every Lambda call (waiter polls too) takes a token, or is answered 429."""
        self._latency()
        if self.bucket.take():
            return None
        with self._lock:
            self.throttled += 1
        status, code, message = _THROTTLED
        return (SimpleNamespace(status_code=status, headers={}),
                {"Error": {"Code": code, "Message": message},
                 "ResponseMetadata": {"HTTPStatusCode": status}})

    def aws(self, rps: float, concurrency: int) -> ah.Aws:
        """The handler's clients as a step creates them, with every rate x S, delay / S."""
        s = self.speed
        return ah.Aws(self.lam, self.tagging, max_requests_per_second=rps * s,
                      concurrency=concurrency, poll_delay_s=1.0 / s, backoff_base_s=0.25 / s,
                      backoff_cap_s=8.0 / s)

    def take_counts(self) -> tuple:
        with self._lock:
            counts = (self.calls, self.throttled)
            self.calls = self.throttled = 0
        return counts


class _Discard(list):
    def append(self, _item: Any) -> None:
        pass


@dataclasses.dataclass
class Phase:
    """One attach or detach of one location, in modelled seconds."""
    seconds: float = 0.0
    plan_s: float = 0.0
    batch_s: List[float] = dataclasses.field(default_factory=list)
    calls: int = 0
    throttled: int = 0          # 429s answered, retried by the handler
    surfaced: List[str] = dataclasses.field(default_factory=list)  # throttles that failed a step
    failed: List[str] = dataclasses.field(default_factory=list)    # any other step failure
    functions: int = 0
    cpu_s: float = 0.0          # real CPU seconds of the process (moto, botocore, handler)


def _phase(location: Location, aws: ah.Aws, params: Dict[str, Any]) -> Phase:
    s = location.speed
    out = Phase()
    location.take_counts()
    cpu = time.process_time()
    start = time.perf_counter()
    planned = ah.plan(params, aws=aws)
    out.plan_s = (time.perf_counter() - start) * s
    for batch in planned["Batches"]:
        began = time.perf_counter()
        try:
            result = ah.apply(dict(params, Batch=batch, Digest=planned["Digest"],
                                   ExpiresAt=planned["ExpiresAt"],
                                   LayerArn=planned["LayerArn"]), aws=aws)
            out.functions += result["TargetCount"]
        except ah.AutomationError as exc:
            text = f"{location.name} {batch}: {exc}"
            throttle = any(code in str(exc) for code in ah._THROTTLED)
            (out.surfaced if throttle else out.failed).append(text)
        out.batch_s.append((time.perf_counter() - began) * s)
    out.seconds = (time.perf_counter() - start) * s
    out.cpu_s = time.process_time() - cpu
    out.calls, out.throttled = location.take_counts()
    return out


def run_document(location: Location, rps: float = ah.DEFAULT_REQUESTS_PER_SECOND,
                 concurrency: int = ah.DEFAULT_CONCURRENCY,
                 background_rps: float = 0.0) -> Dict[str, Any]:
    """lambda-fault.yaml's Plan + Apply loop (attach), then the experiment's PlanDetach +
    Detach loop, on one location; `background_rps` of other callers share its bucket."""
    aws = location.aws(rps, concurrency)
    attach = fault_params(LayerArn="lambda-chaos", MaxTargets=str(location.n),
                          RequestsPerSecond=str(int(rps)), **TAG)
    detach = dict(attach, ChaosMode="DISABLED", OnlyThisExperiment="true")
    background = Background(location.bucket, background_rps, location.speed) \
        if background_rps else None
    if background:
        background.__enter__()
    try:
        out = {"attach": _phase(location, aws, attach), "detach": _phase(location, aws, detach)}
    finally:
        if background:
            background.__exit__()
    out["background"] = (background.sent, background.throttled) if background else (0, 0)
    return out


def run_locations(locations: Sequence[Location], **options: Any) -> tuple:
    """One run per location, all at once (TargetLocationMaxConcurrency 100 %); returns the
    modelled wall time of the whole (the parent waits for its slowest child) per phase and
    each location's phases."""
    with ThreadPoolExecutor(max_workers=len(locations)) as pool:
        per_location = list(pool.map(lambda loc: run_document(loc, **options), locations))
    wall = {phase: max(p[phase].seconds for p in per_location) for phase in ("attach", "detach")}
    return wall, per_location


def moto_cost_s(location: Location, calls: int = 200) -> float:
    """Real seconds of moto + botocore per Lambda call (no latency, no pacing), measured on
    the call a run makes most (reads and waiter polls), in one thread."""
    latency, location.latency_s = location.latency_s, 0.0
    bucket, location.bucket = location.bucket, TokenBucket(1e12, 1e12)
    try:
        start = time.perf_counter()
        for i in range(calls):
            location.lam.get_function_configuration(FunctionName=f"bench-{i % location.n:05d}")
        return (time.perf_counter() - start) / calls
    finally:
        location.latency_s, location.bucket = latency, bucket
        location.take_counts()


def median(values: Sequence[float]) -> float:
    return statistics.median(values)
