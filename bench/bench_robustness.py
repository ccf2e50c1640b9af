"""Do the verdicts hold on a busy machine? Run by hand; prints a table per part.

    .venv/bin/python bench/bench_robustness.py [--e2e-runs 10] [--suite-runs 3] [--busy-cores 1]

Part 1: `tests/test_experiment_e2e.py` (the three end-to-end experiments) `--e2e-runs` times in
a row while `--busy-cores` other processes each keep one core busy (a spinning `sh` loop, as the
developers' guide describes). Part 2: `make test` `--suite-runs` times, each from a fresh clone
of this repository's HEAD (its own `.venv`, as CI builds it). Each run's outcome, pytest's
summary line and its wall time are printed; a failed run also prints its first failure, so a
flake can be read without running it again. Exit status 1 if any run failed.
"""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, List, Tuple

ROOT = Path(__file__).resolve().parent.parent
# pytest's last line: "== 3 passed in 232.62s ==" or, with -q, "737 passed in 500.12s (0:08:20)"
_SUMMARY = re.compile(r"^=*\s*(\d+ (?:passed|failed|error).* in [\d.]+s(?: \([\d:]+\))?)", re.M)


@contextmanager
def busy_cores(count: int) -> Iterator[None]:
    """`count` processes that each spin on one core until the block ends."""
    spinners = [subprocess.Popen(["sh", "-c", "while :; do :; done"]) for _ in range(count)]
    try:
        yield
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()


def _summary(output: str) -> str:
    found = _SUMMARY.findall(output)
    if found:
        return found[-1]
    lines = [line for line in output.strip().splitlines() if line.strip()]
    return lines[-1][:120] if lines else "(no output)"


def _first_failure(output: str) -> str:
    """pytest's first FAILED/ERROR summary line (test and message), else its first `E` line."""
    lines = output.splitlines()
    for prefixes in (("FAILED", "ERROR"), ("E   ",)):
        for line in lines:
            if line.startswith(prefixes):
                return line[:240]
    return ""


def run(command: List[str], cwd: Path) -> Tuple[bool, str, str, float]:
    started = time.monotonic()
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    output = done.stdout + done.stderr
    return done.returncode == 0, _summary(output), _first_failure(output), time.monotonic() - started


def _table(title: str, rows: List[Tuple[int, bool, str, str, float]]) -> None:
    print(f"\n{title}")
    print(f"{'run':>4}  {'result':<7} {'wall s':>8}  pytest")
    for number, ok, summary, failure, wall in rows:
        print(f"{number:>4}  {'pass' if ok else 'FAIL':<7} {wall:>8.0f}  {summary}")
        if failure:
            print(f"{'':>22}{failure}")
    passed = sum(1 for row in rows if row[1])
    print(f"{passed}/{len(rows)} passed")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--e2e-runs", type=int, default=10)
    parser.add_argument("--suite-runs", type=int, default=3)
    parser.add_argument("--busy-cores", type=int, default=1)
    args = parser.parse_args()
    all_ok = True
    if args.e2e_runs:
        rows = []
        with busy_cores(args.busy_cores):
            for number in range(1, args.e2e_runs + 1):
                ok, summary, failure, wall = run(
                    [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                     "tests/test_experiment_e2e.py"], ROOT)
                rows.append((number, ok, summary, failure, wall))
                print(f"e2e run {number}: {'pass' if ok else 'FAIL'} {summary} ({wall:.0f} s)", flush=True)
        _table(f"tests/test_experiment_e2e.py, {args.busy_cores} core(s) kept busy", rows)
        all_ok &= all(row[1] for row in rows)
    if args.suite_runs:
        rows = []
        for number in range(1, args.suite_runs + 1):
            with tempfile.TemporaryDirectory(prefix="fresh-clone-") as folder:
                clone = Path(folder) / "repo"
                subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
                ok, summary, failure, wall = run(["make", "test"], clone)
            rows.append((number, ok, summary, failure, wall))
            print(f"make test run {number}: {'pass' if ok else 'FAIL'} {summary} ({wall:.0f} s)", flush=True)
        _table("make test from a fresh clone of HEAD (wall time includes the .venv set-up)", rows)
        all_ok &= all(row[1] for row in rows)
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main())
