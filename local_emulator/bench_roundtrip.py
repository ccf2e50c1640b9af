"""Benchmark (run by hand): per-invocation round trip through the emulator with awslambdaric.

    .venv/bin/python -m local_emulator.bench_roundtrip [--count 2000]

Prints, per payload size, the median / p90 / p99 of ``ExecutionEnvironment.invoke`` (event
out, response back, through the real runtime client and its handler) and invocations per
second. It measures the emulator's share of the layer benchmark's "direct" column.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time

from local_emulator.runtime_api import ExecutionEnvironment

FUNCTIONS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                         "tests", "functions")


def _percentile(sorted_values, fraction):
    return sorted_values[min(len(sorted_values) - 1, int(fraction * len(sorted_values)))]


def run(count: int) -> None:
    print(f"{'handler':<14}{'event':>9}{'count':>7}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}{'inv/s':>9}")
    for handler, size in (("echo.raw", 1024), ("echo.handler", 1024), ("echo.raw", 1024 * 1024)):
        event = json.dumps({"body": "a" * (size - len('{"body": ""}'))}).encode()
        runs = count if size <= 64 * 1024 else max(50, count // 20)
        with ExecutionEnvironment(handler, FUNCTIONS) as env:
            for _ in range(20):
                env.invoke(event)
            durations = []
            started = time.perf_counter()
            for _ in range(runs):
                t0 = time.perf_counter()
                result = env.invoke(event)
                durations.append((time.perf_counter() - t0) * 1000)
                assert result.status == "success", result
            elapsed = time.perf_counter() - started
        durations.sort()
        print(f"{handler:<14}{len(event):>9}{runs:>7}{statistics.median(durations):>9.3f}"
              f"{_percentile(durations, 0.9):>9.3f}{_percentile(durations, 0.99):>9.3f}"
              f"{runs / elapsed:>9.0f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000)
    run(parser.parse_args().count)
