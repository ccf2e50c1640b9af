"""How many AWS calls attach and detach make per function, and how long runs take, on moto.

    nice -n 10 .venv/bin/python bench/bench_automation.py            # everything, a few minutes
    nice -n 10 .venv/bin/python bench/bench_automation.py --part limits --sizes 1000,5000 \
        --speed 40 --background-rps 8
    nice -n 10 .venv/bin/python bench/bench_automation.py --part calls --moto-sizes 10 100

Calls are counted with botocore's `before-parameter-build` event on the automation's own
clients, so retries and waiter polls count. moto is extended with the same `MotoGaps` hooks as
the tests (tests/automation_fixtures.py): every update is `InProgress` for the first read after
it, as on Lambda, so each update costs waiter polls here too. Wall time is measured with the
rate limit off (moto's own cost); the time the same run takes at the default client-side limit
is calls / rate, because the limiter spaces every call evenly.

`--part limits` runs the documents' batches at the real limits (bench/limits.py): the handler
paced at RequestsPerSecond, Lambda's 15 requests/s per account and Region as a token bucket
that answers 429 (the handler retries; a throttle that fails a step "surfaced"), a modelled
latency per call, and optionally other callers sharing the bucket. Plan, then one `apply` per
batch, then the detach plan and its batches, each batch timed against the 600 s step limit;
first in one location, then in 2 accounts x 2 Regions in parallel threads (TargetLocations).
Real time is compressed by --speed S (rates x S, latencies / S, modelled s = real s x S); the
2 x 2 runs at S / 4 by default (--multi-speed), so that four locations put the same load on
moto as one. Prints tables; asserts nothing.
"""
import argparse
import collections
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path[:0] = [ROOT, os.path.join(ROOT, "layer"), os.path.join(ROOT, "tests"), HERE]
for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                    "AWS_DEFAULT_REGION": "us-east-1"}.items():
    os.environ.setdefault(name, value)

from moto import mock_aws  # noqa: E402

import automation_handler as ah  # noqa: E402
from automation_fixtures import Lab  # noqa: E402

import limits  # noqa: E402

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


def calls_tables(args):
    """The tables this bench has printed from the start: calls per function by operation, wall
    time on moto, and time against concurrency with a fixed latency."""
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
    for n in args.moto_sizes:
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

def _sizes(text):
    return [int(part) for part in text.replace(",", " ").split()]


ACCOUNTS, REGIONS = ("123456789012", "210987654321"), ("us-east-1", "eu-west-1")
SPARE_REGIONS = ("us-west-2", "ap-southeast-2", "eu-central-1", "sa-east-1", "ca-central-1")
SMALL = 0.25  # moto's cost a call, as a share of the compressed interval, that distorts little


def _load(cost_s, rate, speed, locations, what):
    """moto's cost a call against the compressed interval of all locations together; a
    warning when it is not small."""
    interval = 1.0 / (rate * speed * locations)
    share = cost_s / interval
    line = (f"moto + botocore {what}: {cost_s * 1000:.2f} ms a call; the compressed interval "
            f"is {interval * 1000:.2f} ms (1 / ({locations} location(s) × {rate:g}/s × "
            f"{speed:g})): {share:.0%} of it.")
    if share > SMALL:
        line += (f"\n\n**WARNING**: moto's own cost is {share:.0%} of the compressed interval, "
                 f"more than {SMALL:.0%}: moto, not Lambda's limits, adds time (see the "
                 f"'wall ÷' column); lower --speed (about {speed * SMALL / share:.0f} would do)")
    return line


def _cpu_per_call(phases):
    return sum(p.cpu_s for p in phases) / max(1, sum(p.calls for p in phases))


_HEADER = ("| phase | N | batches | plan s | slowest batch s | every batch < 600 s | wall s "
           "| N × calls/function / rate | wall ÷ that | N × {c} / rate (the plan's) "
           "| calls/function | 429s retried | throttles surfaced (target 0) "
           "| background 429s/sent |\n" + "|---" * 14 + "|")


def _phase_row(label, n, phase, rate, background):
    ideal = phase.calls / rate
    worst = max(phase.batch_s, default=0.0)
    other = f" (+{len(phase.failed)} other failures)" if phase.failed else ""
    return (f"| {label} | {n} | {len(phase.batch_s)} | {phase.plan_s:.0f} | {worst:.0f} "
            f"| {'yes' if worst < limits.STEP_LIMIT_S else 'NO'} | {phase.seconds:.0f} "
            f"| {ideal:.0f} | {phase.seconds / ideal:.2f} "
            f"| {n * ah.CALLS_PER_TARGET[False] / rate:.0f} | {phase.calls / n:.2f} "
            f"| {phase.throttled} | {len(phase.surfaced)}{other} "
            f"| {background[1]}/{background[0]} |")


def _median_run(runs, key=lambda run: run["attach"].seconds):
    """The run of median attach time (a whole run, so that its columns agree)."""
    return sorted(runs, key=key)[(len(runs) - 1) // 2]


def _failures(label, runs):
    for run in runs:
        for phase in ("attach", "detach"):
            for text in run[phase].surfaced + run[phase].failed:
                print(f"\n- {label} {phase}: {text}")


def limits_tables(args):
    """Scenario 1: one account and Region at each size; scenario 2: 2 accounts × 2 Regions."""
    ah.print = lambda *_a, **_k: None  # apply's step log (a JSON line a batch): not a table
    try:
        with mock_aws():
            _limits_tables(args)
    finally:
        del ah.print


def _limits_tables(args):
    rate, speed, latency = ah.DEFAULT_REQUESTS_PER_SECOND, args.speed, args.latency_ms / 1000
    multi_speed = args.multi_speed or speed / 4
    repeat = args.repeat or 1
    options = dict(rps=rate, concurrency=args.concurrency, background_rps=args.background_rps)

    built = time.perf_counter()
    multi = [limits.Location(a, r, args.multi_size, speed, latency)
             for a in ACCOUNTS for r in REGIONS]
    spare = iter(SPARE_REGIONS)
    single = {n: multi[0] if n == args.multi_size else
              limits.Location(ACCOUNTS[0], next(spare), n, speed, latency) for n in args.sizes}
    functions = args.multi_size * len(multi) + sum(n for n in single if n != args.multi_size)
    built = time.perf_counter() - built
    probe = limits.moto_cost_s(multi[0])

    print(f"\n## At the real limits, in compressed time (×{speed:g})\n")
    print(f"Time is compressed {speed:g}×: every rate × {speed:g}, every latency and delay / "
          f"{speed:g}, so a modelled second is {1000 / speed:.1f} ms real; every time below is "
          f"modelled (real × {speed:g}). The handler paces itself at {rate:g} requests/s "
          f"(RequestsPerSecond); Lambda allows {limits.LAMBDA_RPS:g}/s per account and Region "
          f"(a token bucket, burst {limits.LAMBDA_RPS:g}, that answers 429); "
          f"{args.latency_ms:g} ms modelled latency a call; concurrency {args.concurrency}; "
          f"other callers take {args.background_rps:g}/s of the same bucket. Batches are sized "
          f"for a {ah.STEP_BUDGET_S:g} s step budget; a step's limit is "
          f"{limits.STEP_LIMIT_S:g} s. Median of {repeat} run(s). No alias. ({functions} "
          f"functions built in {built:.0f} real s.)\n")
    print(_load(probe, rate, speed, 1, "(probe: GetFunctionConfiguration in one thread)"))

    print(f"\n### One account and Region ({ACCOUNTS[0]}), plan + one step a batch, then the "
          f"detach plan + its batches\n")
    print(_HEADER.format(c=ah.CALLS_PER_TARGET[False]))
    results = {}
    for n, location in single.items():
        location.set_speed(speed)
        results[n] = [limits.run_document(location, **options) for _ in range(repeat)]
        run = _median_run(results[n])
        for phase in ("attach", "detach"):
            print(_phase_row(phase, n, run[phase], rate, run["background"]))
    for n, runs in results.items():
        _failures(f"N = {n}", runs)
    phases = [run[p] for runs in results.values() for run in runs for p in ("attach", "detach")]
    print("\n" + _load(_cpu_per_call(phases), rate, speed, 1, "(process CPU during these runs)"))

    m = args.multi_size
    print(f"\n### 2 accounts × 2 Regions, {m} functions each, in parallel threads "
          f"(TargetLocationMaxConcurrency 100 %), at ×{multi_speed:g}\n")
    for location in multi:
        location.set_speed(multi_speed)
    alone = [limits.run_document(multi[0], **options) for _ in range(repeat)]
    together = [limits.run_locations(multi, **options) for _ in range(repeat)]
    walls, per_location = _median_run(together, key=lambda t: t[0]["attach"])
    print("| location | N | attach s | detach s | slowest batch s | every batch < 600 s "
          "| calls/function (attach, detach) | 429s retried | throttles surfaced (target 0) "
          "| background 429s/sent |\n" + "|---" * 10 + "|")
    for location, run in zip(multi, per_location):
        a, d = run["attach"], run["detach"]
        worst = max(a.batch_s + d.batch_s)
        print(f"| {location.name} | {m} | {a.seconds:.0f} | {d.seconds:.0f} | {worst:.0f} "
              f"| {'yes' if worst < limits.STEP_LIMIT_S else 'NO'} "
              f"| {a.calls / m:.2f}, {d.calls / m:.2f} | {a.throttled + d.throttled} "
              f"| {len(a.surfaced) + len(d.surfaced)} "
              f"| {run['background'][1]}/{run['background'][0]} |")
    _failures("2 × 2", per_location)

    print(f"\n| phase | 2 × 2 wall s (the slowest location) | {multi[0].name} alone, same "
          f"×{multi_speed:g}: wall s | ratio (target ≈ 1) | N × calls/function / rate |")
    print("|---|---|---|---|---|")
    for phase in ("attach", "detach"):
        wall = limits.median([t[0][phase] for t in together])
        one = limits.median([run[phase].seconds for run in alone])
        calls = _median_run(alone)[phase].calls
        print(f"| {phase} | {wall:.0f} | {one:.0f} | {wall / one:.2f} "
              f"| {m} × {calls / m:.2f} / {rate:g} = {calls / rate:.0f} |")
    phases = [run[p] for t in together for run in t[1] for p in ("attach", "detach")]
    cpu = sum(p.cpu_s for p in phases) / len(multi)  # each phase saw the whole process's CPU
    print("\n" + _load(cpu / max(1, sum(p.calls for p in phases)), rate, multi_speed,
                       len(multi), "(process CPU during the 2 × 2 runs)"))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("all", "calls", "limits"), default="all",
                        help="calls: the calls-per-function and moto tables; limits: the "
                             "batched runs at the real limits")
    parser.add_argument("--moto-sizes", type=int, nargs="+", default=[10, 100, 1000],
                        help="N of the wall-time-on-moto table")
    parser.add_argument("--sizes", type=_sizes, default=[1000, 5000],
                        help="N of one location at the real limits, e.g. 1000,5000")
    parser.add_argument("--multi-size", type=int, default=1000,
                        help="functions in each of the 2 × 2 locations")
    parser.add_argument("--concurrency", type=int, default=ah.DEFAULT_CONCURRENCY)
    parser.add_argument("--repeat", type=int, default=None,
                        help="runs per size (median): default 3 for N ≤ 100 in the moto "
                             "table, 1 at the real limits")
    parser.add_argument("--latency-ms", type=float, default=20.0,
                        help="modelled latency of every call at the real limits")
    parser.add_argument("--speed", type=float, default=40.0,
                        help="time compression S of one location")
    parser.add_argument("--multi-speed", type=float, default=None,
                        help="time compression of the 2 × 2 (default S / 4: the same load "
                             "on moto as one location at S)")
    parser.add_argument("--background-rps", type=float, default=0.0,
                        help="other callers' requests/s in each location's Lambda limit")
    args = parser.parse_args()
    if args.part in ("all", "calls"):
        args_calls = argparse.Namespace(**vars(args))
        args_calls.repeat = args.repeat or 3
        calls_tables(args_calls)
    if args.part in ("all", "limits"):
        limits_tables(args)


if __name__ == "__main__":
    main()
