"""The Lambda sandbox: runs each function of the emulator from its configuration.

For every invocation the sandbox reads the function's configuration from the emulator (at most
every `refresh_real_s`), and runs it in an `ExecutionEnvironment` with its runtime's real client
(`awslambdaric`, `aws-lambda-ric`):
the code zip extracted as the task root, the layers extracted in order into one `/opt`, the
handler, environment, memory and timeout of the configuration.

As in Lambda:
- **A configuration change retires warm environments.** The fingerprint is the configuration's
  `CodeSha256`, `LastModified`, `RevisionId`, handler, runtime, memory, timeout, environment and
  layer list; when it changes, idle environments are shut down, busy ones finish their
  invocation and are shut down after it, and the next invocation cold-starts with the new
  configuration. That is how an attach and a detach by the automation take effect.
- **Concurrency**: one invocation per environment at a time (Managed Instances: N, below); a new
  environment is made when all are busy. An invocation is throttled (`TooManyRequestsException`,
  Lambda's 429) where Lambda throttles it: beyond the function's reserved concurrency
  (`PutFunctionConcurrency`), or beyond the region's account concurrency (`account_concurrency`,
  Lambda's default quota of 1,000 per account and region) across the functions without a
  reservation. Lambda's burst scaling (1,000 environments per function every 10 s) is never the
  limit at these rates.
- **This machine's own limit** is another thing: at most `max_environments` environments per
  function run here (each is a runtime process, plus one per extension). An invocation beyond
  that is not a throttle Lambda would make; it ends as `capacity` (the API Gateway answers 500
  and the report counts it as the emulator's, never the system's) and is counted in `stats()`.
- **A timeout** kills the environment's runtime (the emulator re-initialises it next time).
- **Lambda Managed Instances**: a function whose `CapacityProviderConfig` sets
  `PerExecutionEnvironmentMaxConcurrency` N runs in environments of N invocations at once
  (`ExecutionEnvironment(max_concurrency=N)`, local_emulator/environment/managed_instances.py). An
  invocation takes a free slot in the oldest running environment of the current
  configuration; only when each one has N in flight is a new one made, within the same
  limits (reserved and account concurrency count invocations, `max_environments` counts
  environments). An environment whose workers still run timed-out invocations refuses
  (EnvironmentBusyError) and the invocation goes on to another one. A timeout fails that
  invocation alone: the environment is not reset or retired. The setting is part of the
  fingerprint. A Managed Instances function without it is a SandboxError: Lambda derives it
  from the runtime and the vCPUs. Lambda scales Managed Instances ahead of traffic, never on an
  invocation; here the environment an invocation needs is made on the spot, as for any
  function, so its first invocation is a cold start. moto drops the setting; the emulator's
  moto keeps it (local_emulator/aws/moto_capacity_provider.py).
- **Metrics**: with publishers, each invocation is counted in `AWS/Lambda` as Lambda publishes
  it, under `FunctionName` and in the account-wide series (no dimension): `Invocations` (not
  counting throttled requests), `Errors` (handler errors, crashes and timeouts, as Lambda counts
  them; 0 or 1 per invocation) and `Throttles` (1 per throttled request, 0 per invocation that
  ran) in `Count`, `Duration` (template ms) in `Milliseconds` ("Types of metrics for Lambda
  functions").
  The emulator's CloudWatch matches dimensions exactly, as CloudWatch does, so each series is
  its own. The `Resource` (version or alias) and `ExecutedVersion` series are not published.
- **Logs**: with a `log_sink`, every line a function's runtime and extensions write is handed to
  `log_sink(region, log_group, line)` with its log group `/aws/lambda/NAME`, as Lambda sends
  them to CloudWatch Logs (the experiment extracts their embedded-metric-format metrics).

What the emulator changes, and why (only in the processes' environment, never in the
configuration, so the experiment's "restored exactly" check is unaffected):
- `CHAOS_PROXY_PORT` gets a free port per environment: Lambda isolates each sandbox's network,
  here many environments share 127.0.0.1;
- time compression: the function's timeout (but never below `MIN_TIMEOUT_REAL_S` of real time:
  on a busy 2-core machine a warm invocation can stall a few hundred ms, which must not count
  as the function's own time; at scale 30 a 10 s timeout thus acts as 15 s), `CHAOS_LATENCY_MS`
  and `CHAOS_LATENCY_JITTER_MS` are divided by the time scale and `CHAOS_EXPIRES_AT` is brought closer by the same factor (counted
  from when the sandbox saw the configuration), so a 35 s latency fault against a 29 s API
  Gateway timeout plays out as in template time. Durations reported are in template time.
- `CHAOS_DECISION_SEED` is the run's seed, and each invocation's request id is derived from the
  seed, the function and the invocation's number, so the layer's percentage and jitter draws
  (seeded by the request id) replay with `--seed`; on AWS neither is set and the layer draws at
  random;
- each function runs with its `Runtime`'s own client (`local_emulator/environment/runtimes.py`): `python3.x`
  with this interpreter and `awslambdaric`, `nodejs20.x`/`22.x`/`24.x` with the venv's Node 24
  and `aws-lambda-ric`; a runtime it cannot run (Java, .NET, Ruby, OS-only) is refused with a
  SandboxError naming the function and the runtime.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import shutil
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from chaos_layer import config as chaos
from local_emulator.clock import Clock
from local_emulator.environment.http_server import free_port
from local_emulator.environment.code_store import CodeStore, extract_zip
from local_emulator.errors import SandboxError
from local_emulator.environment import managed_instances
from local_emulator.environment import runtimes
from local_emulator.environment.managed_instances import EnvironmentBusyError
from local_emulator.environment.runtime_api import ExecutionEnvironment
from local_emulator.environment.runtimes import UnsupportedRuntimeError

__all__ = ["Sandbox", "SandboxResult", "fingerprint", "FINGERPRINT_FIELDS", "ACCOUNT_CONCURRENCY",
           "MAX_ENVIRONMENTS"]

MIN_TIMEOUT_REAL_S = 0.5
# Lambda's default concurrency quota per account and region ("Lambda quotas": 1,000).
ACCOUNT_CONCURRENCY = 1000
# Environments one function may have on this machine. The regional outage at the default rate
# needs about 10 per faulted function (0.5 requests/s from each client region, each held 15
# template s by the function's timeout, plus health checks); 48 leaves room for --rate 2.
MAX_ENVIRONMENTS = 48
FINGERPRINT_FIELDS = ("CodeSha256", "LastModified", "RevisionId", "Handler", "Runtime",
                      "MemorySize", "Timeout", "Environment", "Layers")
_CAPACITY_PROVIDER = "CapacityProviderConfig"
_MANAGED_INSTANCES = "LambdaManagedInstancesCapacityProviderConfig"
_MAX_CONCURRENCY = "PerExecutionEnvironmentMaxConcurrency"


def fingerprint(configuration: Mapping[str, Any]) -> str:
    """A short digest of the configuration fields whose change retires warm environments
    (and `CapacityProviderConfig` when the function has one: its concurrency is set at init)."""
    picked = {name: configuration.get(name) for name in FINGERPRINT_FIELDS}
    if configuration.get(_CAPACITY_PROVIDER):
        picked[_CAPACITY_PROVIDER] = configuration[_CAPACITY_PROVIDER]
    return hashlib.sha256(json.dumps(picked, sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class SandboxResult:
    """One invocation as its caller (API Gateway) sees it; times in template milliseconds."""

    status: str  # success | error | timeout | crash | throttled | capacity (this machine's limit)
    payload: bytes
    error_type: Optional[str]
    duration_ms: float
    cold_start: bool
    fingerprint: str


@dataclass
class _Spec:
    """One configuration of one function, extracted and ready to start environments from."""

    region: str
    name: str
    fingerprint: str
    configuration: Dict[str, Any]
    task_root: Path
    opt_dir: Optional[Path]
    seen_at: _dt.datetime
    reserved: Optional[int] = None  # ReservedConcurrentExecutions, when the function has one
    max_concurrency: Optional[int] = None  # Managed Instances: invocations per environment


@dataclass
class _Shared:
    """A Managed Instances environment: up to `spec.max_concurrency` invocations at once.
    `made` is set once `environment` (or `failure`) is in: the invocations that take a slot
    while it is being made wait for it rather than each making its own."""

    spec: _Spec
    environment: Optional[ExecutionEnvironment] = None
    failure: Optional[BaseException] = None
    in_flight: int = 0
    made: threading.Event = field(default_factory=threading.Event)


@dataclass
class _Pool:
    """The environments of one function."""

    spec: Optional[_Spec] = None
    checked_at: float = float("-inf")
    idle: List[Tuple[_Spec, ExecutionEnvironment]] = field(default_factory=list)
    busy: int = 0  # invocations in flight, in either kind of environment
    shared: List[_Shared] = field(default_factory=list)  # Managed Instances environments
    cold_starts: int = 0
    retired: int = 0
    throttles: int = 0
    capacity_refusals: int = 0
    invocations: int = 0
    refreshing: bool = False
    refresh_error: str = ""  # the last background re-read's failure, if any
    # Held while a configuration is extracted: two invocations that see a new configuration at
    # once used to extract it into the same folder, one deleting what the other's environment
    # was starting from (Runtime.InvalidEntrypoint, Extension.LaunchError in the report).
    build_lock: threading.Lock = field(default_factory=threading.Lock)
    fingerprints: List[str] = field(default_factory=list)
    history: List[Tuple[float, Dict[str, str]]] = field(default_factory=list)

    def environments(self) -> int:
        """Environments running here: one per invocation in flight in a default environment,
        the idle ones, and every Managed Instances one."""
        return (self.busy - sum(s.in_flight for s in self.shared) + len(self.idle)
                + len(self.shared))


# With `refresh_in_background`, a configuration read this many refresh intervals ago is still
# served while a re-read runs; an older one is read again before the invocation starts.
STALE_READS = 3


class Sandbox:
    """Invoke functions of the emulator by region and name (see the module docstring)."""

    def __init__(self, aws: Any, clock: Clock, work_dir: Path, *,
                 code_store: Optional[CodeStore] = None,
                 account_concurrency: int = ACCOUNT_CONCURRENCY,
                 max_environments: int = MAX_ENVIRONMENTS,
                 refresh_real_s: float = 0.1, init_timeout_s: float = 20.0,
                 runtime_command: Optional[Sequence[str]] = None,
                 metrics: Optional[Mapping[str, Any]] = None,
                 seed: Optional[str] = None, refresh_in_background: bool = False,
                 log_sink: Optional[Callable[[str, str, str], None]] = None) -> None:
        """`seed`: replayable fault decisions (see the module docstring); None draws at random.
        `refresh_in_background`: re-read configurations off the invocation's path (the local
        experiment: a read of the emulator on every tenth of a second of traffic was most of a
        warm request's cost)."""
        self.aws = aws
        self.clock = clock
        self.work_dir = Path(work_dir)
        self.code_store = code_store or CodeStore(aws)
        self.account_concurrency = account_concurrency
        self.max_environments = max_environments
        self.refresh_real_s = refresh_real_s
        self.init_timeout_s = init_timeout_s
        self.runtime_command = list(runtime_command) if runtime_command else None
        self.metrics = dict(metrics or {})
        self.log_sink = log_sink
        self.seed = seed
        self.refresh_in_background = refresh_in_background
        self._pools: Dict[Tuple[str, str], _Pool] = {}
        self._clients: Dict[str, Any] = {}
        self._lock = threading.Lock()
        self._closed = False

    # --- public ---------------------------------------------------------------------------
    def invoke(self, region: str, function_name: str, payload: bytes = b"{}") -> SandboxResult:
        """Run one invocation to its end (response, error, timeout) or throttle it."""
        at = self.clock.now()
        result = self._invoke(region, function_name, payload)
        publisher = self.metrics.get(region)
        if publisher is not None:
            for dims in ([{"Name": "FunctionName", "Value": function_name}], []):
                # Throttles is 1 for a throttled request and 0 for one that ran, so its Sum is
                # the throttle count and the series has data while nothing is throttled.
                publisher.add("Throttles", at, 1.0 if result.status == "throttled" else 0.0, dims,
                              "Count")
                if result.status != "throttled":
                    publisher.add("Invocations", at, 1.0, dims, "Count")
                    publisher.add("Errors", at, 0.0 if result.status == "success" else 1.0, dims,
                                  "Count")
                    publisher.add("Duration", at, result.duration_ms, dims, "Milliseconds")
        return result

    def _invoke(self, region: str, function_name: str, payload: bytes) -> SandboxResult:
        spec = self._current_spec(region, function_name)
        pool = self._pools[(region, function_name)]
        if spec.max_concurrency is not None:
            return self._invoke_shared(region, pool, spec, payload)
        environment, cold, refusal = self._acquire(region, pool, spec)
        if environment is None:
            return _refused(spec, refusal)
        try:
            started = time.monotonic()
            result = environment.invoke(payload, request_id=self._request_id(region, pool, function_name))
            duration = self.clock.to_template(time.monotonic() - started) * 1000.0
            cold = cold or result.init is not None
            return SandboxResult(result.status, result.payload, result.error_type, duration, cold,
                                 spec.fingerprint)
        finally:
            self._release(pool, spec, environment)

    def _invoke_shared(self, region: str, pool: _Pool, spec: _Spec,
                       payload: bytes) -> SandboxResult:
        """Managed Instances: a free slot in a running environment, else a new environment. One
        that still answers EnvironmentBusyError (its workers hold timed-out invocations that
        have not answered yet) is passed over for this invocation, as Lambda routes it to
        another environment."""
        request_id: Optional[str] = None
        refused: List[_Shared] = []
        while True:
            shared, make, refusal = self._acquire_shared(region, pool, spec, refused)
            if shared is None:
                return _refused(spec, refusal)
            if not refused:  # numbered once, whichever environment ends up serving it
                request_id = self._request_id(region, pool, spec.name)
            try:
                environment = self._made(shared, make)
                started = time.monotonic()
                result = environment.invoke(payload, request_id=request_id)
            except EnvironmentBusyError:
                refused.append(shared)
                continue
            finally:
                self._release_shared(pool, shared)
            duration = self.clock.to_template(time.monotonic() - started) * 1000.0
            # only the invocation that ran the environment's init is its cold start
            return SandboxResult(result.status, result.payload, result.error_type, duration,
                                 result.init is not None, spec.fingerprint)

    def _request_id(self, region: str, pool: _Pool, name: str) -> Optional[str]:
        """The n-th invocation's request id, a UUID from the seed (None: a random one)."""
        with self._lock:
            pool.invocations += 1
            number = pool.invocations
        if self.seed is None:
            return None
        digest = hashlib.sha256(f"{self.seed}/{region}/{name}/{number}".encode()).digest()
        return str(uuid.UUID(bytes=digest[:16], version=4))

    def stats(self) -> Dict[str, Dict[str, Any]]:
        """Per function (`region/name`): cold starts, retired environments, throttles, configs
        seen, idle (`warm`) and running (`environments`) environments, invocations in flight."""
        with self._lock:
            return {f"{region}/{name}": {"cold_starts": p.cold_starts, "retired": p.retired,
                                         "throttles": p.throttles,
                                         "capacity_refusals": p.capacity_refusals,
                                         "configurations": len(p.fingerprints),
                                         "warm": len(p.idle) + sum(1 for s in p.shared
                                                                   if not s.in_flight),
                                         "busy": p.busy, "environments": p.environments()}
                    for (region, name), p in self._pools.items()}

    def variables_seen(self) -> Dict[str, List[Tuple[float, Dict[str, str]]]]:
        """Per function (`region/name`): each configuration's environment variables as the
        sandbox first ran it, with the template time — what the functions really ran with."""
        with self._lock:
            return {f"{region}/{name}": list(p.history) for (region, name), p in self._pools.items()}

    def close(self) -> None:
        """Shut every environment down (SHUTDOWN to extensions); idempotent."""
        with self._lock:
            self._closed = True
            environments = [env for pool in self._pools.values() for _, env in pool.idle]
            for pool in self._pools.values():
                pool.idle.clear()
                idle = [s for s in pool.shared if not s.in_flight]  # busy ones: at release
                environments += [s.environment for s in idle if s.environment is not None]
                pool.shared = [s for s in pool.shared if s.in_flight]
        for environment in environments:
            environment.shutdown()

    def __enter__(self) -> "Sandbox":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # --- configuration → spec ---------------------------------------------------------------
    def _current_spec(self, region: str, name: str) -> _Spec:
        """The function's configuration as of at most `refresh_real_s` ago. With
        `refresh_in_background`, an invocation does not wait for that read while the last one
        is younger than STALE_READS × `refresh_real_s`: it starts one re-read on a thread and
        is served the last configuration (under steady traffic the reads stay that fresh).
        Older than that (a function idle since, or re-reads failing) it reads first: an
        invocation after a detach must never run the configuration from before it, as no
        invocation on Lambda does once the update has completed."""
        with self._lock:
            pool = self._pools.setdefault((region, name), _Pool())
            age = time.monotonic() - pool.checked_at
            fresh = age < self.refresh_real_s
            recent = self.refresh_in_background and age < self.refresh_real_s * STALE_READS
            if pool.spec is not None and (fresh or recent):
                if not fresh and not pool.refreshing:
                    pool.refreshing = True
                    threading.Thread(target=self._refresh_in_background, args=(region, name, pool),
                                     name="sandbox-refresh", daemon=True).start()
                return pool.spec
        return self._refresh(region, name, pool)

    def _refresh_in_background(self, region: str, name: str, pool: _Pool) -> None:
        try:
            self._refresh(region, name, pool)
        except Exception as exc:  # noqa: BLE001 - the next invocation past the bound reads itself
            pool.refresh_error = str(exc)
        finally:
            with self._lock:
                pool.refreshing = False

    def _refresh(self, region: str, name: str, pool: _Pool) -> _Spec:
        """Read the configuration; on a change, extract it and retire the older environments."""
        configuration = self._configuration(region, name)
        digest = fingerprint(configuration)
        with self._lock:
            pool.checked_at = time.monotonic()
            if pool.spec is not None and pool.spec.fingerprint == digest:
                return pool.spec
        with pool.build_lock:  # one thread extracts a configuration; the others wait for it
            with self._lock:
                built = pool.spec if pool.spec is not None and pool.spec.fingerprint == digest else None
            spec = built or self._build_spec(region, name, configuration, digest)
        with self._lock:
            if pool.spec is None or pool.spec.fingerprint != digest:
                pool.spec = spec
                pool.fingerprints.append(digest)
                pool.history.append((self.clock.now(), dict(
                    (configuration.get("Environment") or {}).get("Variables") or {})))
                stale, pool.idle = [e for s, e in pool.idle if s is not spec], \
                    [(s, e) for s, e in pool.idle if s is spec]
                idle_shared = [s for s in pool.shared if s.spec is not spec and not s.in_flight]
                pool.shared = [s for s in pool.shared if s not in idle_shared]
                stale += [s.environment for s in idle_shared if s.environment is not None]
                pool.retired += len(stale)
            else:
                stale = []
            current = pool.spec
        for environment in stale:
            threading.Thread(target=environment.shutdown, daemon=True).start()
        return current

    def _configuration(self, region: str, name: str) -> Dict[str, Any]:
        if region not in self._clients:
            self._clients[region] = self.aws.client("lambda", region)
        try:
            configuration = self._clients[region].get_function_configuration(FunctionName=name)
        except Exception as exc:  # botocore ClientError: name the function, not a traceback
            raise SandboxError(f"function {name} cannot be read in {region}: {exc}; "
                               "is it deployed (deploy.sh --local --with-sample-app)?") from None
        configuration.pop("ResponseMetadata", None)
        if configuration.get("PackageType", "Zip") != "Zip":
            raise SandboxError(f"function {name} in {region} is a container image; the sandbox "
                               "runs zip-packaged functions only")
        try:
            runtimes.resolve(configuration.get("Runtime"))
        except UnsupportedRuntimeError as exc:
            raise SandboxError(f"function {name} in {region}: {exc}") from None
        _max_concurrency(region, name, configuration)  # a SandboxError before anything starts
        return configuration

    def _build_spec(self, region: str, name: str, configuration: Dict[str, Any],
                    digest: str) -> _Spec:
        root = self.work_dir / region / name / digest
        task_root, opt_dir = root / "task", root / "opt"
        layers = [layer["Arn"] for layer in configuration.get("Layers") or []]
        if not (root / ".ready").exists():
            shutil.rmtree(root, ignore_errors=True)
            extract_zip(self.code_store.function_zip(region, configuration), task_root)
            for arn in layers:  # in order: a later layer's file replaces an earlier one's
                extract_zip(self.code_store.layer_zip(region, arn), opt_dir)
            root.mkdir(parents=True, exist_ok=True)
            (root / ".ready").touch()
        return _Spec(region, name, digest, configuration, task_root,
                     opt_dir if layers else None, _dt.datetime.now(_dt.timezone.utc),
                     self._reserved_concurrency(region, name),
                     _max_concurrency(region, name, configuration))

    def _reserved_concurrency(self, region: str, name: str) -> Optional[int]:
        """The function's ReservedConcurrentExecutions (GetFunctionConcurrency), or None."""
        try:
            answer = self._clients[region].get_function_concurrency(FunctionName=name)
        except Exception:  # noqa: BLE001 - no reservation readable: the account's pool applies
            return None
        reserved = answer.get("ReservedConcurrentExecutions")
        return None if reserved is None else int(reserved)

    # --- environments -----------------------------------------------------------------------
    def _acquire(self, region: str, pool: _Pool, spec: _Spec):
        """(environment, cold start, None), or (None, False, (status, message)) when the
        invocation is throttled as Lambda would throttle it or this machine has no room."""
        with self._lock:
            refusal = self._admit(region, pool, spec)
            if refusal:
                return None, False, refusal
            for index, (owner, environment) in enumerate(pool.idle):
                if owner is spec:
                    del pool.idle[index]
                    pool.busy += 1
                    return environment, False, None
            refusal = self._make_room(pool, spec)
            if refusal:
                return None, False, refusal
            pool.busy += 1
            pool.cold_starts += 1
        try:
            return self._new_environment(spec), True, None
        except Exception:
            with self._lock:
                pool.busy -= 1
            raise

    def _admit(self, region: str, pool: _Pool, spec: _Spec) -> Optional[Tuple[str, str]]:
        """Under `_lock`: None, or the throttle Lambda would answer; SandboxError once closed."""
        if self._closed:
            raise SandboxError("the sandbox is closed; make a new one")
        throttle = self._throttle(region, pool, spec)
        if throttle:
            pool.throttles += 1
            return ("throttled", throttle)
        return None

    def _make_room(self, pool: _Pool, spec: _Spec) -> Optional[Tuple[str, str]]:
        """Under `_lock`, before a new environment: None when there is room for one (an idle
        environment of an old configuration is retired to make it), else the refusal."""
        if pool.environments() < self.max_environments:
            return None
        if not pool.idle:
            pool.capacity_refusals += 1
            return ("capacity", (
                f"{spec.name} needs more than {self.max_environments} execution "
                "environments at once; this machine runs at most that many per function "
                "(Lambda would not throttle here): lower --rate"))
        _, stale = pool.idle.pop(0)  # an idle environment of an old configuration
        pool.retired += 1
        threading.Thread(target=stale.shutdown, daemon=True).start()
        return None

    def _acquire_shared(self, region: str, pool: _Pool, spec: _Spec,
                        passed_over: Sequence[_Shared]):
        """Managed Instances: (environment, whether this invocation makes it, None), or
        (None, False, (status, message)) as `_acquire`. The oldest environment with a free slot
        serves first, so a new one is made only when every running one is full."""
        with self._lock:
            refusal = self._admit(region, pool, spec)
            if refusal:
                return None, False, refusal
            for shared in pool.shared:
                # our own count: a timed-out invocation still running is not in it, the
                # environment refuses the slot it holds (EnvironmentBusyError, see above)
                if (shared.spec is spec and shared not in passed_over
                        and shared.in_flight < (spec.max_concurrency or 1)):
                    shared.in_flight += 1
                    pool.busy += 1
                    return shared, False, None
            refusal = self._make_room(pool, spec)
            if refusal:
                return None, False, refusal
            shared = _Shared(spec, in_flight=1)
            pool.shared.append(shared)
            pool.busy += 1
            pool.cold_starts += 1
            return shared, True, None

    def _made(self, shared: _Shared, make: bool) -> ExecutionEnvironment:
        """The shared environment, made by this invocation (`make`) or waited for."""
        if make:
            try:
                shared.environment = self._new_environment(shared.spec)
            except BaseException as exc:
                shared.failure = exc
                raise
            finally:
                shared.made.set()
        else:
            shared.made.wait()
        if shared.environment is None:
            raise SandboxError(f"the execution environment of {shared.spec.name} in "
                               f"{shared.spec.region} could not be made: {shared.failure}")
        return shared.environment

    def _release_shared(self, pool: _Pool, shared: _Shared) -> None:
        """A slot back; an environment of an old configuration (or of a closed sandbox) is
        shut down when its last invocation ends, as `_release` does for a default one."""
        with self._lock:
            pool.busy -= 1
            shared.in_flight -= 1
            failed = shared.made.is_set() and shared.environment is None
            done = shared.in_flight == 0 and (failed or self._closed or pool.spec is not shared.spec)
            if done:
                pool.shared.remove(shared)
                pool.retired += 0 if failed else 1
        if done and shared.environment is not None:
            threading.Thread(target=shared.environment.shutdown, daemon=True).start()

    def _throttle(self, region: str, pool: _Pool, spec: _Spec) -> Optional[str]:
        """Lambda's throttling message when one more concurrent invocation exceeds the function's
        reserved concurrency or the region's unreserved account concurrency; else None."""
        if spec.reserved is not None:
            if pool.busy >= spec.reserved:
                return (f"Rate Exceeded: {spec.name} is at its reserved concurrency "
                        f"({spec.reserved})")
            return None
        here = [(p, p.spec) for (r, _), p in self._pools.items() if r == region]
        reserved = sum(s.reserved for _, s in here if s is not None and s.reserved is not None)
        unreserved_busy = sum(p.busy for p, s in here if s is None or s.reserved is None)
        if unreserved_busy >= self.account_concurrency - reserved:
            return (f"Rate Exceeded: the account's concurrency in {region} is used up "
                    f"({self.account_concurrency - reserved} unreserved)")
        return None

    def _release(self, pool: _Pool, spec: _Spec, environment: ExecutionEnvironment) -> None:
        with self._lock:
            pool.busy -= 1
            keep = not self._closed and pool.spec is spec
            if keep:
                pool.idle.append((spec, environment))
            else:
                pool.retired += 1
        if not keep:
            threading.Thread(target=environment.shutdown, daemon=True).start()

    def _new_environment(self, spec: _Spec) -> ExecutionEnvironment:
        configuration = spec.configuration
        variables = dict((configuration.get("Environment") or {}).get("Variables") or {})
        return ExecutionEnvironment(
            handler=configuration["Handler"], task_root=str(spec.task_root),
            opt_dir=str(spec.opt_dir) if spec.opt_dir else None,
            environment=self._process_variables(variables, spec.seen_at),
            function_name=spec.name, function_version=configuration.get("Version", "$LATEST"),
            memory_mb=int(configuration.get("MemorySize", 128)),
            timeout_s=max(self.clock.to_real(float(configuration.get("Timeout", 3))), MIN_TIMEOUT_REAL_S),
            region=spec.region, runtime_command=self._runtime_command(configuration),
            runtime=configuration.get("Runtime"), init_timeout_s=self.init_timeout_s,
            max_concurrency=spec.max_concurrency, log_sink=self._log_sink(spec))

    def _log_sink(self, spec: _Spec) -> Optional[Callable[[str], None]]:
        """The environment's `log_sink`: each line, with the function's region and log group."""
        sink = self.log_sink
        if sink is None:
            return None
        region, group = spec.region, f"/aws/lambda/{spec.name}"
        return lambda line: sink(region, group, line)

    def _runtime_command(self, configuration: Mapping[str, Any]) -> Optional[List[str]]:
        if self.runtime_command is None:
            return None
        return self.runtime_command + [configuration["Handler"]]

    def _process_variables(self, variables: Dict[str, str], seen_at: _dt.datetime) -> Dict[str, str]:
        """The function's variables as this machine must run them (see the module docstring)."""
        result = dict(variables)
        result[chaos.PROXY_PORT] = str(free_port())
        if self.seed is not None:
            result[chaos.DECISION_SEED] = self.seed
        for name in (chaos.LATENCY_MS, chaos.LATENCY_JITTER_MS):
            if result.get(name, "").strip().isdigit():
                result[name] = str(int(round(int(result[name]) / self.clock.scale)))
        if result.get(chaos.EXPIRES_AT, "").strip():
            try:
                expires = chaos.parse_utc_time(result[chaos.EXPIRES_AT])
            except ValueError:
                return result  # the layer logs the bad value itself and injects nothing
            if expires > seen_at:
                result[chaos.EXPIRES_AT] = chaos.format_utc_time(
                    seen_at + (expires - seen_at) / self.clock.scale + _dt.timedelta(seconds=1))
        return result


def _refused(spec: _Spec, refusal: Tuple[str, str]) -> SandboxResult:
    """A throttled (or this machine's `capacity`) invocation, with Lambda's 429 payload."""
    return SandboxResult(refusal[0], json.dumps({
        "errorType": "TooManyRequestsException", "errorMessage": refusal[1]}).encode(),
        "TooManyRequestsException", 0.0, False, spec.fingerprint)


def _max_concurrency(region: str, name: str, configuration: Mapping[str, Any]) -> Optional[int]:
    """The function's PerExecutionEnvironmentMaxConcurrency when it runs on Lambda Managed
    Instances (its CapacityProviderConfig), else None. Raises SandboxError for a Managed
    Instances function without the setting: Lambda then picks a default from the runtime and
    the instance's vCPUs, which this machine cannot know."""
    provider = configuration.get(_CAPACITY_PROVIDER) or {}
    settings = provider.get(_MANAGED_INSTANCES)
    if not settings:
        return None
    value = settings.get(_MAX_CONCURRENCY)
    if value is None:
        raise SandboxError(
            f"function {name} in {region} runs on Lambda Managed Instances "
            f"({settings.get('CapacityProviderArn')}) without {_MAX_CONCURRENCY}: Lambda then "
            f"derives it from the runtime and the vCPUs, which the sandbox does not guess; set "
            f"{_MAX_CONCURRENCY} (1-{managed_instances.MAX_CONCURRENCY_LIMIT}) in the function's "
            f"{_CAPACITY_PROVIDER}.{_MANAGED_INSTANCES}")
    return int(value)
