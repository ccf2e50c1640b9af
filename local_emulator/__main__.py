"""`python -m local_emulator`: run a whole chaos experiment on the embedded emulator.

Only wires the command line to `experiment.run_experiment`; see that module for the steps and
run_options.py for what each option accepts. The exit status says how the run ended (below).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import traceback
from pathlib import Path
from typing import List, Optional

from local_emulator.experiment.orchestration import RunResult, Settings, run_experiment
from local_emulator.errors import ExperimentError
from local_emulator.experiment.run_options import (
    DEFAULT_TIME_SCALE, ERROR_LOG, MAX_TIME_SCALE, MIN_TIME_SCALE, SettingsError, health_config, unusable)

__all__ = ["main", "settings_from", "exit_status", "EXIT_HELD", "EXIT_HYPOTHESIS_FAILED",
           "EXIT_NOT_RUN", "EXIT_INTERRUPTED"]

EXIT_HELD = 0               # the experiment ran and every hypothesis held
EXIT_HYPOTHESIS_FAILED = 1  # it ran and at least one hypothesis failed (restore is one of them)
EXIT_NOT_RUN = 2            # it could not run: a refused option, or an error before the verdicts
EXIT_INTERRUPTED = 130      # Ctrl-C (128 + SIGINT); the experiment was stopped and cleaned up


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m local_emulator",
        description="Run a FIS experiment template locally: embedded AWS (moto), deploy.sh --local, "
                    "the real SSM document, the real layer in a Lambda sandbox, load through "
                    "Route 53 latency routing, and a report. Times are template time.",
        epilog=f"Exit status: {EXIT_HELD} every hypothesis held, {EXIT_HYPOTHESIS_FAILED} a "
               f"hypothesis failed, {EXIT_NOT_RUN} the experiment could not run, "
               f"{EXIT_INTERRUPTED} interrupted.")
    parser.add_argument("--template", default="lambda-regional-outage",
                        help="a folder name under fis_templates/ or a template.json path "
                             "(default: lambda-regional-outage)")
    parser.add_argument("--time-scale", type=float, default=DEFAULT_TIME_SCALE,
                        help=f"template seconds per real second, {MIN_TIME_SCALE:g}-{MAX_TIME_SCALE:g} "
                             f"(default {DEFAULT_TIME_SCALE:g}: a 10-minute wait takes "
                             f"{600 / DEFAULT_TIME_SCALE:g} s)")
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
    parser.add_argument("--seed", type=_seed, default=None, metavar="N",
                        help="replay the fault decisions (percentage, jitter) of an earlier run: "
                             "its report prints its seed (default: a fresh one)")
    parser.add_argument("--quiet", action="store_true", help="no progress lines, only the report")
    return parser


def _seed(text: str) -> int:
    """A seed as the report prints it: a whole number from 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a seed: write the whole number a "
                                         "report printed, e.g. --seed 482913") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: a seed is a whole number from 0")
    return value


def settings_from(argv: Optional[List[str]] = None) -> Settings:
    """Parse the command line into Settings; what cannot even be written down as settings exits
    with a usage message (status 2, = EXIT_NOT_RUN). The bounds of each value are checked by
    `run_experiment` before anything is deployed (run_options.check_settings)."""
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
    problems = unusable(args.time_scale, args.rate)
    if problems:
        parser.error("\n".join(problems))
    try:
        health = health_config(args.health_interval, args.failure_threshold)
    except SettingsError as exc:
        parser.error(str(exc))
    return Settings(template=args.template, time_scale=args.time_scale, rate=args.rate,
                    output=args.output, pre_s=args.pre, post_s=args.post, overrides=overrides,
                    alarm_threshold=args.alarm_threshold, health=health,
                    health_check_targets=targets, progress=not args.quiet, seed=args.seed)


def exit_status(result: RunResult) -> int:
    """EXIT_HELD when every hypothesis of the report passed, else EXIT_HYPOTHESIS_FAILED; but
    EXIT_NOT_RUN for a run the emulator could not keep up with (report.py's `faithful`): a
    stall can fail a request or keep an alarm from firing, so neither verdict can be trusted."""
    if (result.report.get("faithful") or {}).get("ok") is False:
        print(f"error: no verdict: {result.report['faithful']['words']}", file=sys.stderr)
        return EXIT_NOT_RUN
    failed = [h for h in result.report.get("hypotheses", []) if h.get("verdict") != "pass"]
    return EXIT_HYPOTHESIS_FAILED if failed or not result.restored else EXIT_HELD


def main(argv: Optional[List[str]] = None) -> int:
    settings = settings_from(argv)
    try:
        result = run_experiment(settings)
    except KeyboardInterrupt:
        # run_experiment's clean-up already stopped the experiment: the running automation was
        # cancelled and its onCancel path (the detach) ran before we got here.
        print("interrupted: the experiment was stopped and its clean-up ran", file=sys.stderr)
        return EXIT_INTERRUPTED
    except SettingsError as exc:  # refused before anything was deployed: no log to read
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_NOT_RUN
    except ExperimentError as exc:
        print(f"error: {exc}{_logs(Path(settings.output))}", file=sys.stderr)
        return EXIT_NOT_RUN
    except Exception as exc:  # noqa: BLE001 - a bug or a broken part: a message, not a traceback
        log = _write_traceback(Path(settings.output))
        print(f"error: the experiment could not finish: {type(exc).__name__}: {exc}\n"
              f"  the traceback is in {log}{_logs(Path(settings.output))}", file=sys.stderr)
        return EXIT_NOT_RUN
    return exit_status(result)


def _logs(output: Path) -> str:
    """Where the run's own logs are, when it got far enough to write them."""
    logs = [p.name for p in (output / "moto.log", *sorted(output.glob("deploy-*.log"))) if p.is_file()]
    return f"\n  logs: {', '.join(str(output / name) for name in logs)}" if logs else ""


def _write_traceback(output: Path) -> Path:
    """The current exception's traceback in the output folder (or a temporary file if it cannot)."""
    text = traceback.format_exc()
    try:
        output.mkdir(parents=True, exist_ok=True)
        path = output / ERROR_LOG
        path.write_text(text, encoding="utf-8")
    except OSError:
        with tempfile.NamedTemporaryFile("w", prefix="local-emulator-", suffix=".log",
                                         delete=False) as handle:
            handle.write(text)
            path = Path(handle.name)
    return path


if __name__ == "__main__":
    sys.exit(main())
