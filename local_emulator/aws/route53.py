"""Route 53 as the blog uses it: latency-based routing between regions, with health checks.

The semantics are modelled explicitly, in template time, because the experiment's verdict
("failover happens promptly") depends on every one of them:

- **A check** is an HTTP GET of the endpoint's `/health`. It *succeeds* when a 2xx or 3xx
  status arrives within `timeout_s` (Route 53: 2 s after connecting; the connection is local
  here), and *fails* on any other status, an error, or no answer in time — a request that is
  still hanging in a 35 s latency fault is a failure after 2 s, not after 35.
- **Checks** run every `request_interval_s` (Route 53: 30 s standard, 10 s fast).
- The timeout is compressed like every duration, but never below `MIN_TIMEOUT_REAL_S` of real
  time: the emulator's own per-request overhead does not shrink with the time scale, and a
  check must not fail for the emulator's slowness (at scale 30, 2 s would be 67 real ms).
- **Status**: an endpoint starts healthy; it becomes unhealthy after `failure_threshold`
  consecutive failed checks (Route 53 default 3, range 1–10) and healthy again after the same
  number of consecutive successes. Route 53 runs ~15 checkers and calls an endpoint healthy when
  more than 18 % of them say so; every checker sees the same local endpoint, so one checker
  reaches the same verdict and is what is modelled.
- **Routing**: a client is answered with the healthy region of lowest latency from the client's
  own region (latency records with EvaluateTargetHealth). When *no* region is healthy, Route 53
  routes as if all were healthy (lowest latency again). Clients cache the answer for `ttl_s`
  (alias records to API Gateway: 60 s), so a status change reaches them up to one TTL later.
- **Metrics**: with a publisher (`HealthChecker(metrics=...)`), each check publishes what Route 53
  publishes for a health check, in `AWS/Route53` with the dimension `HealthCheckId` (the
  deployed check's id), to **us-east-1**'s CloudWatch whatever region the endpoint is in
  ("Monitoring health checks using CloudWatch": Route 53 metrics exist only in US East (N.
  Virginia)): `HealthCheckStatus`, 1 healthy or 0 unhealthy (the status after the check, so
  `Minimum` over a period is 0 once the check was unhealthy in it), and
  `HealthCheckPercentageHealthy`, the share of checkers that see the endpoint healthy (the one
  modelled checker: 100 or 0), in `Percent`.
"""
from __future__ import annotations

import concurrent.futures
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from local_emulator.clock import Clock

__all__ = ["HealthCheckConfig", "HealthCheckState", "HealthChecker", "LatencyRouter",
           "CheckResult", "check_succeeded", "METRICS_REGION", "METRICS_NAMESPACE"]

# Route 53 publishes its health checks' metrics to CloudWatch in US East (N. Virginia) only.
METRICS_REGION = "us-east-1"
METRICS_NAMESPACE = "AWS/Route53"

MIN_TIMEOUT_REAL_S = 0.25

# A probe sends one request to the endpoint and returns its HTTP status (None: no answer).
Probe = Callable[[], Optional[int]]


@dataclass(frozen=True)
class HealthCheckConfig:
    """A health check's settings, named as in Route 53's CreateHealthCheck."""

    request_interval_s: float = 30.0
    failure_threshold: int = 3
    timeout_s: float = 2.0
    resource_path: str = "/health"

    def __post_init__(self) -> None:
        if not 1 <= self.failure_threshold <= 10:
            raise ValueError(f"failure_threshold {self.failure_threshold} must be 1–10, as in Route 53")
        if self.request_interval_s <= 0 or self.timeout_s <= 0:
            raise ValueError("request_interval_s and timeout_s must be > 0 (template seconds)")


@dataclass(frozen=True)
class CheckResult:
    """One check: when it started (template s), its status (None: no answer), verdict, latency."""

    at: float
    status: Optional[int]
    ok: bool
    healthy_after: bool
    latency_ms: Optional[float] = None  # None: no answer within the timeout


def check_succeeded(status: Optional[int]) -> bool:
    """Route 53's HTTP check: a 2xx or 3xx status (in time) is a success, anything else a failure."""
    return status is not None and 200 <= status < 400


@dataclass
class HealthCheckState:
    """The status machine of one health check, free of threads and clocks (tests drive it)."""

    config: HealthCheckConfig = field(default_factory=HealthCheckConfig)
    healthy: bool = True
    consecutive_failures: int = 0
    consecutive_successes: int = 0
    results: List[CheckResult] = field(default_factory=list)
    transitions: List[Tuple[float, bool]] = field(default_factory=list)

    def record(self, at: float, status: Optional[int],
               latency_ms: Optional[float] = None) -> CheckResult:
        ok = check_succeeded(status)
        if ok:
            self.consecutive_successes += 1
            self.consecutive_failures = 0
        else:
            self.consecutive_failures += 1
            self.consecutive_successes = 0
        threshold = self.config.failure_threshold
        if self.healthy and self.consecutive_failures >= threshold:
            self.healthy = False
            self.transitions.append((at, False))
        elif not self.healthy and self.consecutive_successes >= threshold:
            self.healthy = True
            self.transitions.append((at, True))
        result = CheckResult(at, status, ok, self.healthy, latency_ms)
        self.results.append(result)
        return result


class HealthChecker:
    """Runs one endpoint's checks on a thread, every `request_interval_s` of template time."""

    def __init__(self, name: str, probe: Probe, clock: Clock,
                 config: Optional[HealthCheckConfig] = None, *, metrics: Any = None,
                 health_check_id: Optional[str] = None) -> None:
        """`metrics`: a publisher (`MetricsPublisher` of `AWS/Route53` in us-east-1) that each
        check's status goes to, under `HealthCheckId` = `health_check_id`."""
        if metrics is not None and not health_check_id:
            raise ValueError(f"health check {name}: publishing its metrics needs the deployed "
                             "health check's id (the stack output HealthCheckId)")
        self.name = name
        self.probe = probe
        self.clock = clock
        self.metrics = metrics
        self.health_check_id = health_check_id
        self.state = HealthCheckState(config or HealthCheckConfig())
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        # A probe that hangs (a latency fault) keeps its worker busy; a few workers let the
        # next checks start on time, as Route 53's checkers do not wait for each other.
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=4,
                                                           thread_name_prefix=f"hc-{name}")

    @property
    def healthy(self) -> bool:
        return self.state.healthy

    def check_once(self) -> CheckResult:
        """Run one check now: the probe's status if it answers within the timeout, else a failure."""
        at = self.clock.now()
        future = self._pool.submit(self.probe)
        latency_ms: Optional[float] = None
        try:
            timeout = max(self.clock.to_real(self.state.config.timeout_s), MIN_TIMEOUT_REAL_S)
            status = future.result(timeout=timeout)
            latency_ms = (self.clock.now() - at) * 1000.0
        except concurrent.futures.TimeoutError:
            status = None
        except Exception:  # noqa: BLE001 - a probe that raises is a failed check, as a reset is
            status = None
        result = self.state.record(at, status, latency_ms)
        if self.metrics is not None:
            dims = [{"Name": "HealthCheckId", "Value": self.health_check_id}]
            healthy = 1.0 if result.healthy_after else 0.0
            self.metrics.add("HealthCheckStatus", at, healthy, dims, "None")
            self.metrics.add("HealthCheckPercentageHealthy", at, healthy * 100.0, dims, "Percent")
        return result

    def start(self) -> "HealthChecker":
        self._thread = threading.Thread(target=self._loop, name=f"health-{self.name}", daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        next_at = self.clock.now()
        while not self._stop.is_set():
            try:
                self.check_once()
            except RuntimeError:
                # stop() shut the pool between our check of _stop and the submit: a stop, not
                # a failure (it used to print "cannot schedule new futures" after the run).
                if self._stop.is_set():
                    return
                raise
            next_at += self.state.config.request_interval_s
            if self.clock.sleep_until(next_at, self._stop):
                return

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._pool.shutdown(wait=False, cancel_futures=True)


class LatencyRouter:
    """Latency-based records over regional endpoints, each guarded by its health check."""

    def __init__(self, latency_ms: Mapping[Tuple[str, str], float],
                 health: Mapping[str, Callable[[], bool]], clock: Clock, ttl_s: float = 60.0) -> None:
        """`latency_ms[(client_region, endpoint_region)]`: Route 53's latency table.

        `health[region]()` says whether that region's health check is healthy now.
        """
        self.latency_ms = dict(latency_ms)
        self.health = dict(health)
        self.clock = clock
        self.ttl_s = ttl_s
        self._cache: Dict[str, Tuple[float, str]] = {}
        self._lock = threading.Lock()
        for (client, endpoint) in self.latency_ms:
            if endpoint not in self.health:
                raise ValueError(f"latency table names region {endpoint} that has no health check")

    def answer(self, client_region: str) -> str:
        """What Route 53 answers right now for a client in `client_region` (no cache)."""
        candidates = sorted((ms, endpoint) for (client, endpoint), ms in self.latency_ms.items()
                            if client == client_region)
        if not candidates:
            raise ValueError(f"no latency records for client region {client_region}; "
                             f"known: {sorted({c for c, _ in self.latency_ms})}")
        healthy = [endpoint for _, endpoint in candidates if self.health[endpoint]()]
        return healthy[0] if healthy else candidates[0][1]  # none healthy: as if all were

    def resolve(self, client_region: str) -> str:
        """The region a client's request goes to, honouring the client's DNS cache (TTL)."""
        now = self.clock.now()
        with self._lock:
            cached = self._cache.get(client_region)
            if cached is not None and now < cached[0]:
                return cached[1]
            region = self.answer(client_region)
            self._cache[client_region] = (now + self.ttl_s, region)
            return region
