"""How faithful is the local experiment at each time scale? Run by hand; prints a table.

    .venv/bin/python bench/bench_local_experiment.py [--scales 10,20,30] [--latency-ms 4000]

One embedded AWS and one deploy (deploy.sh --local, both regions); then, per time scale, the
latency template on the sample app's /hello with the given latency. For each: the real wall
time of the run, the steady-state p50 (mostly the emulator's own overhead × scale), the p50
rise during the fault against the injected latency, and whether every function was restored.
"""
import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "layer")]

from local_emulator.experiment.deployment import deploy, discover  # noqa: E402
from local_emulator.experiment.orchestration import Settings, run_experiment  # noqa: E402
from local_emulator.aws.moto_server import MotoServer  # noqa: E402
from local_emulator.experiment.report import Phases, latency_rise  # noqa: E402

REGIONS = ("us-east-1", "eu-west-1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", default="10,20,30")
    parser.add_argument("--latency-ms", type=int, default=4000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-local-"))
    rows = []
    with MotoServer(log_path=str(work / "moto.log")) as aws:
        started = time.monotonic()
        deploy(aws.endpoint_url, REGIONS, aws.env(), work)
        deployment = discover(aws, REGIONS)
        deploy_s = time.monotonic() - started
        for scale in [float(s) for s in args.scales.split(",")]:
            started = time.monotonic()
            result = run_experiment(
                Settings(template="lambda-latency-single-function", time_scale=scale,
                         pre_s=60, post_s=120, output=work / f"scale-{scale:g}", progress=False,
                         overrides={"S00_AttachExtensionToLambda.LatencyMilliseconds": str(args.latency_ms)}),
                aws=aws, deployment=deployment, write=lambda text: None)
            real_s = time.monotonic() - started
            phases = Phases(**{k: v for k, v in zip(
                ("start", "fault_start", "fault_end", "end"),
                (result.report["phases"]["pre"][0], result.report["phases"]["experiment"][0],
                 result.report["phases"]["experiment"][1], result.report["phases"]["post"][1]))})
            rise = latency_rise(result.records, phases, "us-east-1")
            pre = result.report["regions"]["us-east-1"]["pre"]["p50_ms"]
            rows.append((scale, real_s, result.report["phases"]["post"][1], pre, rise,
                         result.restored))
    print(f"deploy.sh --local, both regions: {deploy_s:.0f} s\n")
    print(f"{'scale':>6} {'run s':>7} {'template s':>11} {'pre p50 ms':>11} "
          f"{'p50 rise ms':>12} {'vs injected':>12} {'restored':>9}")
    for scale, real_s, template_s, pre, rise, restored in rows:
        error = "-" if rise is None else f"{(rise - args.latency_ms) / args.latency_ms:+.1%}"
        print(f"{scale:>6g} {real_s:>7.0f} {template_s:>11.0f} {pre:>11.0f} "
              f"{'-' if rise is None else format(rise, '.0f'):>12} {error:>12} {str(restored):>9}")


if __name__ == "__main__":
    main()
