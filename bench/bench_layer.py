"""Benchmark of the chaos layer's proxy: what one extra hop through it costs an invocation.

Run by hand (never by the test suite):  .venv/bin/python bench/bench_layer.py [--small N] [--large N]

The same runtime client (awslambdaric) and the same emulator, four ways, interleaved one
invocation at a time so drift on a shared VM hits every variant alike:
  direct        the runtime talks to the Runtime API emulator
  socat         through `socat ... nodelay` (a C relay with no logic: the floor for one hop),
                with the layer's extension attached but idle, so only the hop differs from
                the next line
  proxy 0%      through the layer's proxy, a fault configured at 0 % of invocations
  layer, idle   the layer attached with no fault (the wrapper must bypass the proxy)
Prints per-invocation p50/p99 and invocations/s at 1 KB and 1 MB, the ratios against socat
and direct, the extension's RSS, and the init time the layer adds. Targets (issue 3): proxy
<= 1.25x socat at both sizes; RSS <= 25 MB; init <= +60 ms; no fault = direct.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "layer"), str(REPO / "tests")]

from chaos_layer import config as c  # noqa: E402
from local_emulator.runtime_api import ExecutionEnvironment  # noqa: E402
from layer_fixtures import build_layer, extract_layer  # noqa: E402

FUNCTIONS = str(REPO / "tests" / "functions")
HANDLER = "echo.handler"  # the event comes back: the payload crosses each hop both ways


def ensure_socat() -> str:
    path = shutil.which("socat")
    if path:
        return path
    print("socat missing: apt-get install -y socat", file=sys.stderr)
    subprocess.run(["apt-get", "install", "-y", "socat"], check=True,
                   stdout=subprocess.DEVNULL)
    return shutil.which("socat")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Variant:
    def __init__(self, name: str, env: ExecutionEnvironment, helper=None):
        self.name, self.env, self.helper = name, env, helper
        self.times = {}
        self.repeat_p50 = {}

    def close(self):
        self.env.shutdown()
        if self.helper is not None:
            self.helper.terminate()
            self.helper.wait()


def make_variants(opt_dir: str, tmp: Path, socat: str):
    layer_fault = {c.EXEC_WRAPPER: c.WRAPPER_PATH, c.PROXY_PORT: "0", c.FAULT_TYPE: "latency",
                   c.LATENCY_MS: "1000", c.INVOCATION_PERCENTAGE: "0"}
    variants = [Variant("direct", ExecutionEnvironment(HANDLER, FUNCTIONS, None, {},
                                                       timeout_s=30))]
    port = free_port()
    wrapper = tmp / "via-socat"
    wrapper.write_text(f'#!/bin/sh\nexport AWS_LAMBDA_RUNTIME_API=127.0.0.1:{port}\nexec "$@"\n')
    wrapper.chmod(0o755)
    # The layer is attached here too (its extension idle, no fault): the emulator wakes every
    # registered extension's long poll on each state change, a cost real Lambda does not have
    # and which would otherwise be charged to the proxy alone. Only the hop then differs.
    env = ExecutionEnvironment(HANDLER, FUNCTIONS, opt_dir, {c.EXEC_WRAPPER: str(wrapper)},
                               timeout_s=30)
    host, _, upstream_port = env.runtime_api_address.rpartition(":")
    relay = subprocess.Popen([socat, f"TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork,nodelay",
                              f"TCP:{host}:{upstream_port},nodelay"])
    time.sleep(0.3)
    variants.append(Variant("socat", env, relay))
    variants.append(Variant("proxy 0%", ExecutionEnvironment(HANDLER, FUNCTIONS, opt_dir,
                                                             layer_fault, timeout_s=30)))
    variants.append(Variant("layer, idle", ExecutionEnvironment(
        HANDLER, FUNCTIONS, opt_dir, {c.EXEC_WRAPPER: c.WRAPPER_PATH}, timeout_s=30)))
    for variant in variants:
        init = variant.env.start()
        assert init.ok, (variant.name, init, variant.env.logs())
    return variants


def run_interleaved(variants, label: str, size: int, rounds: int, block: int, warmup: int = 20):
    """`block` invocations of each variant in turn until each has `rounds` (after warm-up).

    block=1 alternates every invocation: each then starts with caches another variant's
    processes just used, which a real execution environment never sees; larger blocks keep
    the interleaving (drift still hits every variant alike) without that artefact.
    """
    event = json.dumps({"body": "x" * size}).encode()
    for variant in variants:
        variant.times.setdefault(label, [])
        for _ in range(warmup):
            variant.env.invoke(event)
    for done in range(0, rounds, block):
        for variant in variants:
            for _ in range(min(block, rounds - done)):
                started = time.perf_counter()
                result = variant.env.invoke(event)
                elapsed = time.perf_counter() - started
                if result.status != "success":
                    raise SystemExit(f"{variant.name}: {result.status} {result.payload[:200]!r}")
                variant.times[label].append(elapsed)
    for variant in variants:  # this repeat's median, to show the spread between repeats
        variant.repeat_p50.setdefault(label, []).append(
            statistics.median(variant.times[label][-rounds:]))


def percentile(values, q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def extension_rss(variant) -> str:
    ready = c.ready_file(variant.env.runtime_api_address)
    try:
        pid = int(Path(ready).read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return "n/a"
    return f"{rss_kb(pid) / 1024:.1f} MB"


def init_overhead(opt_dir: str, samples: int):
    """Median Init duration without the layer and with it (fault configured), interleaved."""
    layer_env = {c.EXEC_WRAPPER: c.WRAPPER_PATH, c.PROXY_PORT: "0", c.FAULT_TYPE: "latency",
                 c.INVOCATION_PERCENTAGE: "0"}
    durations = {"without layer": [], "with layer": []}
    for _ in range(samples):
        for name, opt, env in (("without layer", None, {}), ("with layer", opt_dir, layer_env)):
            with ExecutionEnvironment(HANDLER, FUNCTIONS, opt, env) as lambda_env:
                init = lambda_env.start()
                assert init.ok, init
                durations[name].append(init.duration_ms)
    return {k: statistics.median(v) for k, v in durations.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--small", type=int, default=1500, help="invocations per variant at 1 KB")
    parser.add_argument("--large", type=int, default=200, help="invocations per variant at 1 MB")
    parser.add_argument("--inits", type=int, default=15, help="cold starts per variant")
    parser.add_argument("--repeat", type=int, default=3,
                        help="repeat the four passes; the table pools them and lists each "
                             "repeat's proxy/socat ratio (the VM is shared: noise is real)")
    parser.add_argument("--block", type=int, default=20,
                        help="second pass: invocations per variant per turn (first pass: 1)")
    args = parser.parse_args()
    socat = ensure_socat()
    tmp = Path(tempfile.mkdtemp(prefix="bench-layer-"))
    opt_dir = str(extract_layer(build_layer(tmp), tmp / "opt"))
    variants = make_variants(opt_dir, tmp, socat)
    try:
        for _ in range(args.repeat):
            run_interleaved(variants, "1 KB", 1024, args.small, 1)
            run_interleaved(variants, f"1 KB/{args.block}", 1024, args.small, args.block)
            run_interleaved(variants, "1 MB", 1024 * 1024, args.large, 1)
            run_interleaved(variants, f"1 MB/{args.block}", 1024 * 1024, args.large, args.block)
        proxy_variant = next(v for v in variants if v.name == "proxy 0%")
        rss = extension_rss(proxy_variant)
    finally:
        for variant in variants:
            variant.close()
    inits = init_overhead(opt_dir, args.inits)
    print_table(variants, rss, inits, args)
    shutil.rmtree(tmp, ignore_errors=True)


def print_table(variants, rss, inits, args) -> None:
    print(f"\nchaos layer benchmark — {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, "
          f"{args.repeat} x ({args.small} x 1 KB and {args.large} x 1 MB) invocations per "
          f"variant and pass, interleaved\n")
    print("payload/N: N invocations of a variant per turn (default: turns of 1)\n")
    print(f"{'payload':8} {'variant':12} {'p50 ms':>8} {'p99 ms':>8} {'inv/s':>8} "
          f"{'p50 vs socat':>13} {'p50 vs direct':>14}")
    for label in variants[0].times:
        base = {v.name: statistics.median(v.times[label]) for v in variants}
        for v in variants:
            times = v.times[label]
            p50 = statistics.median(times)
            print(f"{label:8} {v.name:12} {p50 * 1e3:8.3f} {percentile(times, 0.99) * 1e3:8.3f} "
                  f"{len(times) / sum(times):8.0f} {p50 / base['socat']:12.2f}x "
                  f"{p50 / base['direct']:13.2f}x")
        by_name = {v.name: v.repeat_p50[label] for v in variants}
        ratios = [p / s for p, s in zip(by_name["proxy 0%"], by_name["socat"])]
        print(f"{'':8} proxy/socat p50 per repeat: " + ", ".join(f"{r:.2f}" for r in ratios)
              + f"   (median {statistics.median(ratios):.2f})")
        print()
    added = inits["with layer"] - inits["without layer"]
    print(f"extension RSS (proxy running): {rss}   (target <= 25 MB)")
    print(f"init, median of {args.inits}: without layer {inits['without layer']:.1f} ms, "
          f"with layer {inits['with layer']:.1f} ms, added {added:+.1f} ms   (target <= +60 ms)")


if __name__ == "__main__":
    main()
