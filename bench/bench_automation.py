"""How many AWS calls attach and detach make per function, and how long runs take, on moto.

    .venv/bin/python bench/bench_automation.py              # N = 10, 100, 1000
    .venv/bin/python bench/bench_automation.py --sizes 10 100 --concurrency 8

Calls are counted with botocore's `before-parameter-build` event on the automation's own
clients, so retries and waiter polls count. moto is extended with the same `MotoGaps` hooks as
the tests (tests/automation_fixtures.py): every update is `InProgress` for the first read after
it, as on Lambda, so each update costs waiter polls here too. Wall time is measured with the
rate limit off (moto's own cost); the time the same run takes at the default client-side limit
is calls / rate, because the limiter spaces every call evenly. Prints tables; asserts nothing.
"""
import argparse
import collections
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path[:0] = [ROOT, os.path.join(ROOT, "layer"), os.path.join(ROOT, "tests")]
for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                    "AWS_DEFAULT_REGION": "us-east-1"}.items():
    os.environ.setdefault(name, value)

from moto import mock_aws  # noqa: E402

import automation_handler as ah  # noqa: E402
from automation_fixtures import Lab  # noqa: E402

# The fewest Lambda calls a correct run can make per function (see ssm_documents/README.md):
# read it (RevisionId, prior values), update it, and see LastUpdateStatus leave InProgress once;
# with an alias also read the alias, publish and move the alias (detach: move it back).
MINIMUM = {("attach", False): 3, ("detach", False): 3, ("attach", True): 6, ("detach", True): 5}


class Counter:
    """Counts every API call the automation's clients make, by operation; can add a fixed
    latency to each call (Lambda's control plane answers in tens of ms, moto in ~1 ms)."""

    def __init__(self, *clients, latency_s=0.0):
        self.by_op = collections.Counter()
        self.latency_s = latency_s
        for client in clients:
            client.meta.events.register("before-parameter-build", self._count)

    def _count(self, model, **_):
        self.by_op[model.name] += 1
        if self.latency_s:
            time.sleep(self.latency_s)

    def take(self):
        counts, self.by_op = self.by_op, collections.Counter()
        return counts


def run(n, alias, concurrency, rate, latency_s=0.0):
    """Attach then detach on n tagged functions; returns per-phase (counts, seconds)."""
    with mock_aws():
        lab = Lab(in_progress_polls=1)
        for i in range(n):
            lab.function(f"bench-{i:04d}", alias="live" if alias else None,
                         tags={"chaos:target": "bench"})
        aws = ah.Aws(lab.lam, lab.tagging, max_requests_per_second=rate, poll_delay_s=0,
                     backoff_base_s=0.05, concurrency=concurrency)
        counter = Counter(lab.lam, lab.tagging, latency_s=latency_s)
        params = lab.params(TargetTagKey="chaos:target", TargetTagValue="bench",
                            MaxTargets=str(max(n, 1)), AliasName="live" if alias else "")
        results = {}
        for phase, operation in (("attach", ah.attach), ("detach", ah.detach)):
            start = time.perf_counter()
            out = operation(params, aws)
            seconds = time.perf_counter() - start
            assert out["TargetCount"] == n, out["Summary"]
            results[phase] = (counter.take(), seconds)
        return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--concurrency", type=int, default=ah.DEFAULT_CONCURRENCY)
    parser.add_argument("--repeat", type=int, default=3, help="runs per size for N ≤ 100")
    args = parser.parse_args()
    rate = ah.DEFAULT_REQUESTS_PER_SECOND

    print("## Calls per function (N = 10, by tag)\n")
    print("| run | alias | calls/function | per-run calls | minimum | ≤ min + 2 | by operation |")
    print("|---|---|---|---|---|---|---|")
    for alias in (False, True):
        for phase, (counts, _) in run(10, alias, args.concurrency, float("inf")).items():
            per_run = counts["GetResources"] + counts["GetLayerVersion"]
            per_fn = (sum(counts.values()) - per_run) / 10
            minimum = MINIMUM[(phase, alias)]
            ops = ", ".join(f"{op} {c / 10:g}" for op, c in sorted(counts.items())
                            if op not in ("GetResources", "GetLayerVersion"))
            print(f"| {phase} | {'yes' if alias else 'no'} | {per_fn:g} | {per_run} | {minimum} "
                  f"| {'yes' if per_fn <= minimum + 2 else 'NO'} | {ops} |")

    print(f"\n## Wall time on moto, no alias, concurrency {args.concurrency} "
          f"(median of {args.repeat} for N ≤ 100, one run for larger N)\n")
    print("| N | attach s | detach s | attach ms/function | calls | at the default "
          f"{rate:g} req/s |")
    print("|---|---|---|---|---|---|")
    for n in args.sizes:
        runs = [run(n, False, args.concurrency, float("inf"))
                for _ in range(args.repeat if n <= 100 else 1)]
        attach_s = statistics.median(r["attach"][1] for r in runs)
        detach_s = statistics.median(r["detach"][1] for r in runs)
        calls = sum(runs[0]["attach"][0].values()) + sum(runs[0]["detach"][0].values())
        print(f"| {n} | {attach_s:.2f} | {detach_s:.2f} | {1000 * attach_s / n:.1f} | {calls} "
              f"| {calls / rate:.0f} s |")

    latency = 0.02
    print(f"\n## Attach with {latency * 1000:g} ms added to every call, rate limit off: time ∝ "
          "N / concurrency\n")
    print("| N | concurrency | attach s | N × calls × latency / concurrency |")
    print("|---|---|---|---|")
    for n in (25, 100):
        for concurrency in (1, 4, 8):
            result = run(n, False, concurrency, float("inf"), latency)
            counts, seconds = result["attach"]
            ideal = (sum(counts.values()) - 3) * latency / concurrency + 3 * latency
            print(f"| {n} | {concurrency} | {seconds:.2f} | {ideal:.2f} |")


if __name__ == "__main__":
    main()
