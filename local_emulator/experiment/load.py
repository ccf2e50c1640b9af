"""Customer traffic, as the blog's load-gen makes it: the sample app's own simulator, run locally.

sample_app/simulator.py is the customer simulator `deploy.sh --with-sample-app` deploys as a
Lambda function; this module runs the same `CustomerSimulator` in the local experiment, so a
local rehearsal and a real run schedule, classify and measure in the same way. Its scheduling
(open loop: a request is due at its time whether or not earlier ones have answered, and its
latency counts *from that time*, so a backlog shows as latency instead of quietly lowering the
rate), its status and region classification (`status_metric`, `served_region`) and its EMF
lines all come from there. What is local:

- one client per client region (`client_regions`), `rate_per_s` requests per template second
  each, on the experiment's clock (template time, emulated wall time in the timestamps), their
  starts staggered so the regions' requests interleave; all share one pool of `workers`;
- each request resolves its region through the `LatencyRouter` (failover happens there), calls
  that region's API and is kept as a `RequestRecord` (the report's verdicts read them), with
  the region it was routed to beside the one that answered;
- the client's EMF lines go to `emf_writers[client_region]` (that region's CloudWatch Logs
  ingestion: load-gen runs in each region and writes to that region's CloudWatch). Until the
  experiment passes those, `publishers[client_region]` (a MetricsPublisher) still receives
  the same counts (`status_*`, `region_*`) as PutMetricData; a run passes one or the other.

`Telemetry` flushes the metrics every `interval_s` and evaluates the alarms, so a
stop-condition alarm can fire while the experiment runs.
"""
from __future__ import annotations

import concurrent.futures
import threading
import time
from dataclasses import asdict, dataclass
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from local_emulator.clock import Clock
from local_emulator.aws.cloudwatch import AlarmEvaluator, MetricsPublisher
from local_emulator.aws.route53 import LatencyRouter
from sample_app.simulator import CustomerSimulator, served_region, status_metric

__all__ = ["RequestRecord", "LoadGenerator", "Telemetry", "status_metric", "served_region"]

# An API: path → (HTTP status, body text[, cause]). The sandbox's API Gateway provides one per region.
Api = Callable[[str], Tuple]


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


class LoadGenerator:
    """Open-loop traffic from every client region; `start()`, `stop()`, then read `records`."""

    def __init__(self, apis: Mapping[str, Api], router: LatencyRouter, clock: Clock, *,
                 rate_per_s: float = 0.5, client_regions: Sequence[str] = ("us-east-1", "eu-west-1"),
                 path: str = "/hello",
                 emf_writers: Optional[Mapping[str, Callable[[str], None]]] = None,
                 publishers: Optional[Mapping[str, MetricsPublisher]] = None,
                 workers: int = 16, namespace: str = "LoadGen") -> None:
        """`emf_writers[client_region]` receives that client's EMF lines (or, for now,
        `publishers[client_region]` its counts); regions with neither publish nothing."""
        if not rate_per_s > 0:
            raise ValueError(f"rate {rate_per_s!r} must be > 0 requests per template second "
                             "per client region, e.g. 0.5")
        if emf_writers and publishers:
            raise ValueError("pass emf_writers or publishers, not both: each would count every "
                             "request once more (emf_writers is the one to keep)")
        self.apis = dict(apis)
        self.router = router
        self.clock = clock
        self.rate_per_s = float(rate_per_s)
        self.client_regions = list(client_regions)
        self.path = path
        self.emf_writers = dict(emf_writers or {})
        self.publishers = dict(publishers or {})
        self.records: List[RequestRecord] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=workers,
                                                           thread_name_prefix="load")
        self.clients = {
            region: CustomerSimulator(
                self._routed(region), clock, rate_per_s=rate_per_s, paths=[path],
                write=self.emf_writers.get(region, _discard), namespace=namespace,
                executor=self._pool, dispatch=lambda _path, due, r=region: self.send_one(r, due))
            for region in self.client_regions}
        self._threads: List[threading.Thread] = []

    @property
    def scheduled(self) -> int:
        """Requests scheduled so far, in every client region."""
        return sum(client.scheduled for client in self.clients.values())

    def start(self) -> "LoadGenerator":
        start = self.clock.now()
        interval = 1.0 / self.rate_per_s
        for i, (region, client) in enumerate(self.clients.items()):
            # Client regions start staggered so their requests interleave instead of colliding.
            offset = interval * i / len(self.clients)
            thread = threading.Thread(target=client.run, name=f"load-{region}", daemon=True,
                                      kwargs={"cancel": self._stop, "start_at": start + offset})
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self, drain_real_s: float = 30.0) -> None:
        """Stop scheduling; wait (bounded) for requests in flight to be recorded."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)
        self._pool.shutdown(wait=False)
        deadline = time.monotonic() + drain_real_s
        while time.monotonic() < deadline and len(self.records) < self.scheduled:
            time.sleep(0.02)

    def _routed(self, client_region: str) -> Callable[[str], Tuple]:
        """The client's transport: the region Route 53 resolves for it, then that region's API."""
        return lambda path: self.apis[self.router.resolve(client_region)](path)

    def send_one(self, client_region: str, due: float) -> RequestRecord:
        """One request from a client region, scheduled for template time `due`."""
        routed = self.router.resolve(client_region)
        outcome = self.clients[client_region].request(
            self.path, due, send=lambda path: self.apis[routed](path))
        record = RequestRecord(due, client_region, self.path, routed, outcome.status,
                               outcome.latency_ms, outcome.served_region, outcome.cause)
        with self._lock:
            self.records.append(record)
        publisher = self.publishers.get(client_region)
        if publisher is not None:
            for metric, value in outcome.counts.items():
                if value:
                    publisher.add(metric, due)
        return record

    def snapshot(self) -> List[RequestRecord]:
        with self._lock:
            return list(self.records)


def _discard(line: str) -> None:
    """The EMF writer of a client region that publishes nothing."""


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
