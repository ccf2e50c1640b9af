"""Customer traffic, as the blog's load-gen makes it: requests to `/hello` through Route 53.

Clients sit in each region (`client_regions`) and each sends `rate_per_s` requests per template
second, open loop: a request is due at its scheduled time whether or not earlier ones have
answered, and its latency is measured *from that time*, so a backlog shows up as latency instead
of quietly lowering the rate (no coordinated omission). Each request resolves its region through
the `LatencyRouter` (failover happens there), calls that region's API, and is recorded with its
time, latency, status, the region it was routed to and the region that answered (parsed from
`Hello from region …`, as load-gen derives its `region_*` metric).

Counts go to the emulator's CloudWatch as the blog's metrics: `status_2xx`, `status_4xx`,
`status_5xx` and `region_<region>`; every `flush_interval_s` they are flushed and the alarms
evaluated, so a stop-condition alarm can fire while the experiment runs.
"""
from __future__ import annotations

import concurrent.futures
import re
import threading
import time
from dataclasses import asdict, dataclass
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from local_emulator.clock import Clock
from local_emulator.aws.cloudwatch import AlarmEvaluator, MetricsPublisher
from local_emulator.aws.route53 import LatencyRouter

__all__ = ["RequestRecord", "LoadGenerator", "Telemetry", "status_metric", "served_region"]

# An API: path → (HTTP status, body text). The sandbox's API Gateway provides one per region.
Api = Callable[[str], Tuple[int, str]]
_REGION_IN_BODY = re.compile(r"region ([a-z]{2}(?:-[a-z]+)+-\d)")


@dataclass(frozen=True)
class RequestRecord:
    """One customer request (times and latency in template time)."""

    at: float
    client_region: str
    path: str
    routed_region: str
    status: int
    latency_ms: float
    served_region: Optional[str]
    error: str = ""  # why it failed: the API's cause ("function timeout", "Lambda throttled"…)

    def to_dict(self) -> Dict[str, object]:
        return asdict(self)


def status_metric(status: int) -> str:
    """The blog's status metric a response counts in; anything not 2xx/4xx counts as 5xx."""
    if 200 <= status < 300:
        return "status_2xx"
    if 400 <= status < 500:
        return "status_4xx"
    return "status_5xx"


def served_region(status: int, body: str) -> Optional[str]:
    """The region that answered, read from a 2xx body (`Hello from region eu-west-1`)."""
    if not 200 <= status < 300:
        return None
    match = _REGION_IN_BODY.search(body or "")
    return match.group(1) if match else None


class LoadGenerator:
    """Open-loop traffic from every client region; `start()`, `stop()`, then read `records`."""

    def __init__(self, apis: Mapping[str, Api], router: LatencyRouter, clock: Clock, *,
                 rate_per_s: float = 0.5, client_regions: Sequence[str] = ("us-east-1", "eu-west-1"),
                 path: str = "/hello", publishers: Optional[Mapping[str, MetricsPublisher]] = None,
                 workers: int = 16) -> None:
        """`publishers[client_region]` receives that region's counts (load-gen runs in each
        region and writes to that region's CloudWatch); regions without one publish nothing."""
        if not rate_per_s > 0:
            raise ValueError(f"rate {rate_per_s!r} must be > 0 requests per template second "
                             "per client region, e.g. 0.5")
        self.apis = dict(apis)
        self.router = router
        self.clock = clock
        self.rate_per_s = float(rate_per_s)
        self.client_regions = list(client_regions)
        self.path = path
        self.publishers = dict(publishers or {})
        self.records: List[RequestRecord] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=workers,
                                                           thread_name_prefix="load")
        self._thread: Optional[threading.Thread] = None
        self.scheduled = 0

    def start(self) -> "LoadGenerator":
        self._thread = threading.Thread(target=self._schedule, name="load-scheduler", daemon=True)
        self._thread.start()
        return self

    def stop(self, drain_real_s: float = 30.0) -> None:
        """Stop scheduling; wait (bounded) for requests in flight to be recorded."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._pool.shutdown(wait=False)
        deadline = time.monotonic() + drain_real_s
        while time.monotonic() < deadline and len(self.records) < self.scheduled:
            time.sleep(0.02)

    def _schedule(self) -> None:
        interval = 1.0 / self.rate_per_s
        # Client regions start staggered so their requests interleave instead of colliding.
        offsets = {region: interval * i / len(self.client_regions)
                   for i, region in enumerate(self.client_regions)}
        start = self.clock.now()
        n = 0
        while not self._stop.is_set():
            for region in self.client_regions:
                due = start + n * interval + offsets[region]
                if self.clock.sleep_until(due, self._stop):
                    return
                self.scheduled += 1
                self._pool.submit(self.send_one, region, due)
            n += 1

    def send_one(self, client_region: str, due: float) -> RequestRecord:
        """One request from a client region, scheduled for template time `due`."""
        routed = self.router.resolve(client_region)
        error = ""
        try:
            # (status, body) or, from ApiGateway.respond, (status, body, cause)
            status, body, *cause = self.apis[routed](self.path)
            error = cause[0] if cause else ""
        except Exception as exc:  # noqa: BLE001 - what a client sees is a failed request
            status, body, error = 502, "", f"{type(exc).__name__}: {exc}"
        latency_ms = max(0.0, self.clock.now() - due) * 1000.0
        record = RequestRecord(due, client_region, self.path, routed, status, latency_ms,
                               served_region(status, body), error)
        with self._lock:
            self.records.append(record)
        publisher = self.publishers.get(client_region)
        if publisher is not None:
            publisher.add(status_metric(status), due)
            if record.served_region:
                publisher.add(f"region_{record.served_region}", due)
        return record

    def snapshot(self) -> List[RequestRecord]:
        with self._lock:
            return list(self.records)


class Telemetry:
    """Every `interval_s` of template time: flush the metrics, then evaluate the alarms."""

    def __init__(self, clock: Clock, publishers: Sequence[MetricsPublisher],
                 evaluators: Sequence[AlarmEvaluator], interval_s: float = 10.0) -> None:
        self.clock = clock
        self.publishers = list(publishers)
        self.evaluators = list(evaluators)
        self.interval_s = interval_s
        self.errors: List[str] = []
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def start(self) -> "Telemetry":
        self._thread = threading.Thread(target=self._loop, name="telemetry", daemon=True)
        self._thread.start()
        return self

    def tick(self) -> None:
        """Flush every publisher and evaluate every alarm; a failure of one is recorded in
        `errors` (the report lists them) and does not keep the others from running."""
        for step in [p.flush for p in self.publishers] + [e.evaluate for e in self.evaluators]:
            try:
                step()
            except Exception as exc:  # noqa: BLE001 - keep measuring; the report lists it
                self.errors.append(f"{type(exc).__name__}: {exc}")

    def _loop(self) -> None:
        while not self.clock.sleep(self.interval_s, self._stop):
            self.tick()

    def stop(self) -> None:
        """Stop the loop and publish what is left; never raises (the run's clean-up calls it)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.tick()
