"""`python -m local_emulator`: run a whole chaos experiment on the embedded emulator.

Only wires the command line to `experiment.run_experiment`; see that module for the steps.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import List, Optional

# The layer's package lives in layer/ (it ships under /opt/lambda-chaos, not /opt/python); the
# emulator imports its configuration names, so put it on the path before importing the rest.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "layer"))

from local_emulator.experiment import Settings, run_experiment  # noqa: E402
from local_emulator.experiment_errors import ExperimentError  # noqa: E402
from local_emulator.route53 import HealthCheckConfig  # noqa: E402


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m local_emulator",
        description="Run a FIS experiment template locally: embedded AWS (moto), deploy.sh --local, "
                    "the real SSM document, the real layer in a Lambda sandbox, load through "
                    "Route 53 latency routing, and a report. Times are template time.")
    parser.add_argument("--template", default="lambda-regional-outage",
                        help="a folder name under fis_templates/ or a template.json path "
                             "(default: lambda-regional-outage)")
    parser.add_argument("--time-scale", type=float, default=30.0,
                        help="template seconds per real second (default 30: a 10-minute wait takes 20 s)")
    parser.add_argument("--rate", type=float, default=0.5,
                        help="requests per template second from each client region (default 0.5)")
    parser.add_argument("--output", type=Path, default=Path("reports/latest"),
                        help="where report.html, report.json and report.txt go (default reports/latest)")
    parser.add_argument("--pre", type=float, default=120.0, help="steady-state seconds before (default 120)")
    parser.add_argument("--post", type=float, default=300.0, help="recovery seconds after (default 300)")
    parser.add_argument("--set", action="append", default=[], metavar="ACTION.PARAM=VALUE",
                        help="override an action or document parameter, e.g. "
                             "S00_AttachExtensionToLambda.LatencyMilliseconds=2000 or S01_Wait.duration=PT5M")
    parser.add_argument("--alarm-threshold", type=float, default=None,
                        help="change the stop-condition alarm's threshold for this run")
    parser.add_argument("--health-interval", type=float, default=None,
                        help="Route 53 health check request interval, s (30 standard, 10 fast; "
                             "default: as deployed)")
    parser.add_argument("--failure-threshold", type=int, default=None,
                        help="consecutive failed/passed checks to change status (1-10; default: "
                             "as deployed)")
    parser.add_argument("--health-check-target", action="append", default=[], metavar="REGION=TARGET",
                        help="make REGION's health check call TARGET's /health: the blog's "
                             "misconfiguration (failover never happens), e.g. us-east-1=eu-west-1")
    parser.add_argument("--quiet", action="store_true", help="no progress lines, only the report")
    return parser


def settings_from(argv: Optional[List[str]] = None) -> Settings:
    """Parse the command line into Settings; argparse exits with a usage message on bad input."""
    parser = _parser()
    args = parser.parse_args(argv)
    overrides = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep or "." not in key:
            parser.error(f"--set {item!r}: write ACTION.PARAM=VALUE, e.g. S01_Wait.duration=PT5M")
        overrides[key] = value
    targets = {}
    for item in args.health_check_target:
        region, sep, target = item.partition("=")
        if not sep or not region or not target:
            parser.error(f"--health-check-target {item!r}: write REGION=TARGET, e.g. us-east-1=eu-west-1")
        targets[region] = target
    if not args.time_scale > 0:
        parser.error(f"--time-scale {args.time_scale}: must be > 0 (1 = real time)")
    if not args.rate > 0:
        parser.error(f"--rate {args.rate}: must be > 0 requests per template second")
    health = None
    if args.health_interval is not None or args.failure_threshold is not None:
        try:
            health = HealthCheckConfig(
                request_interval_s=30.0 if args.health_interval is None else args.health_interval,
                failure_threshold=3 if args.failure_threshold is None else args.failure_threshold)
        except ValueError as exc:
            parser.error(str(exc))
    return Settings(template=args.template, time_scale=args.time_scale, rate=args.rate,
                    output=args.output, pre_s=args.pre, post_s=args.post, overrides=overrides,
                    alarm_threshold=args.alarm_threshold, health=health,
                    health_check_targets=targets, progress=not args.quiet)


def main(argv: Optional[List[str]] = None) -> int:
    settings = settings_from(argv)
    try:
        result = run_experiment(settings)
    except ExperimentError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        # run_experiment's clean-up already stopped the experiment: the running automation was
        # cancelled and its onCancel path (the detach) ran before we got here.
        print("interrupted: the experiment was stopped and its clean-up ran", file=sys.stderr)
        return 130
    return 0 if result.restored else 1


if __name__ == "__main__":
    sys.exit(main())
