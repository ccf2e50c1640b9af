"""Benchmark of the chaos layer: what it costs an invocation, a cold start and memory.

Run by hand (never by the test suite; the machine should be otherwise idle, or say it was not):

    .venv/bin/python bench/bench_layer.py [--small N] [--large N] [--inits N] [--repeat N]
                                          [--before-commit REV]

For each runtime client (awslambdaric for Python, aws-lambda-ric for Node.js), in the
project's Runtime API emulator, and all in ONE interleaved run (a block of invocations of each
variant in turn, so drift on a shared VM hits every variant alike):

  direct          the runtime talks to the Runtime API
  socat           through `socat ... nodelay`, a C relay with no logic (the floor for one
                  hop); the Go layer is attached idle, so only the hop differs from `proxy`
  Go relay        through a plain Go relay (io.Copy each way, built here with the venv's Go):
                  what Go's runtime itself costs a hop, without any HTTP
  proxy 0%        through the layer's proxy, a fault configured at 0 % of invocations
  no fault        the layer attached with no fault (the wrapper must bypass the proxy)
  idle extension  no layer, but an extension that registers and does nothing: the emulator's
                  own cost of one registered extension, which `no fault` is also compared with

each with the Go layer built from this tree ("after") and, for the Python client, the Python
layer rebuilt from git history ("before": the last commit whose extension ran `exec python3`,
or --before-commit). The Python layer is not measured under Node.js: it needs a python3 that a
Node.js function does not have. Then the Init time each layer adds (the median of per-round
differences of cold starts, the order rotated each round), each layer's extension timed from
exec to its /register call against a minimal Extensions API (the part of Init Lambda waits on
before it starts the runtime), and the extension's RSS (VmRSS, in MiB) right after init and
after the passes. Prints medians and ratios against the issue's targets, each marked met or
missed: proxy vs socat <= 1.05x at 1 KB and 1 MB; no fault vs direct <= 1.02x; init added
<= 10 ms; RSS <= 8 MB. socat missing: its column is skipped, and said so.
"""
from __future__ import annotations

import argparse
import http.server
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests"), str(REPO / "layer")]

from local_emulator.environment.runtime_api import ExecutionEnvironment  # noqa: E402
from layer_fixtures import build_layer, extract_layer  # noqa: E402

SETTINGS = json.loads((REPO / "layer" / "settings.json").read_text())
VAR = {s["constant"]: s["name"] for s in SETTINGS["settings"]}
EXEC_WRAPPER = SETTINGS["lambda_variables"]["exec_wrapper"]
WRAPPER_PATH = SETTINGS["layer"]["wrapper_path"]
FUNCTIONS = REPO / "tests" / "functions"
NODE_RUNTIME = "nodejs22.x"
SIZES = {"1 KB": 1024, "1 MB": 1024 * 1024}
TARGETS = {"proxy vs socat": 1.05, "no fault vs direct": 1.02, "init added ms": 10.0,
           "RSS MB": 8.0}
# A fault that is configured (so the proxy runs) but never applies.
FAULT_AT_0 = {VAR["FAULT_TYPE"]: "latency", VAR["LATENCY_MS"]: "1000",
              VAR["INVOCATION_PERCENTAGE"]: "0", VAR["PROXY_PORT"]: "0",
              EXEC_WRAPPER: WRAPPER_PATH}
NO_FAULT = {EXEC_WRAPPER: WRAPPER_PATH}


# --- what is measured ----------------------------------------------------------------------
@dataclass
class Client:
    """A runtime interface client (by the function's Runtime) and an echo handler."""

    name: str
    runtime: Optional[str]  # None: this interpreter's Python with awslambdaric
    task_root: str
    handler: str = "echo.handler"  # the event comes back: the payload crosses each hop both ways


@dataclass
class Variant:
    client: str
    name: str
    env: ExecutionEnvironment
    helper: Optional[subprocess.Popen] = None
    times: Dict[str, List[float]] = field(default_factory=dict)
    repeat_p50: Dict[str, List[float]] = field(default_factory=dict)

    def close(self) -> None:
        self.env.shutdown()
        if self.helper is not None:
            self.helper.terminate()
            self.helper.wait()


def python_client() -> Client:
    return Client("Python (awslambdaric)", None, str(FUNCTIONS))


def node_client() -> Client:
    """aws-lambda-ric with the Node.js echo handler; SystemExit naming what is missing."""
    from local_emulator.environment import runtimes

    try:
        runtimes.resolve(NODE_RUNTIME)
    except runtimes.UnsupportedRuntimeError as exc:
        raise SystemExit(str(exc))
    return Client("Node.js (aws-lambda-ric)", NODE_RUNTIME, str(FUNCTIONS / "node"))


def environment(client: Client, opt_dir: Optional[str],
                env: Dict[str, str]) -> ExecutionEnvironment:
    return ExecutionEnvironment(client.handler, client.task_root, opt_dir, env, timeout_s=60,
                                runtime=client.runtime, init_timeout_s=30)


# --- set-up --------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def relay_variant(client: Client, name: str, opt_dir: str, tmp: Path,
                  command: Callable[[str, str], List[str]]) -> Variant:
    """The runtime through a plain TCP relay: `command(listen, upstream)` starts it."""
    port = free_port()
    wrapper = tmp / f"via-relay-{port}"
    wrapper.write_text(f'#!/bin/sh\nexport AWS_LAMBDA_RUNTIME_API=127.0.0.1:{port}\nexec "$@"\n')
    wrapper.chmod(0o755)
    # The Go layer is attached here too, idle, so that only the hop differs from `proxy 0%`
    # (an extension process beside the runtime, as with the proxy).
    env = environment(client, opt_dir, {EXEC_WRAPPER: str(wrapper)})
    relay = subprocess.Popen(command(f"127.0.0.1:{port}", env.runtime_api_address))
    wait_for_port(port)
    return Variant(client.name, name, env, relay)


def socat_command(socat: str) -> Callable[[str, str], List[str]]:
    def command(listen: str, upstream: str) -> List[str]:
        return [socat, f"TCP-LISTEN:{listen.rpartition(':')[2]},bind=127.0.0.1,reuseaddr,fork,"
                       f"nodelay", f"TCP:{upstream},nodelay"]
    return command


_GO_RELAY = """// io.Copy each way: Go's own floor for one hop, without any HTTP.
package main

import (
	"io"
	"net"
	"os"
)

func main() {
	ln, err := net.Listen("tcp", os.Args[1])
	if err != nil {
		panic(err)
	}
	for {
		down, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer down.Close()
			up, err := net.Dial("tcp", os.Args[2])
			if err != nil {
				return
			}
			go func() { io.Copy(up, down); up.Close() }()
			io.Copy(down, up)
		}()
	}
}
"""


def build_go_relay(tmp: Path) -> Optional[str]:
    """Build the plain Go relay with the venv's Go; None (and why, on stderr) if it cannot."""
    src = tmp / "go-relay"
    src.mkdir()
    (src / "go.mod").write_text("module gorelay\n\ngo 1.23\n")
    (src / "main.go").write_text(_GO_RELAY)
    go = shutil.which("go", path=str(REPO / ".venv" / "bin")) or shutil.which("go")
    if go is None:
        return None
    env = {**os.environ, "CGO_ENABLED": "0", "GOTOOLCHAIN": "local", "GOPROXY": "off",
           "GOFLAGS": ""}
    done = subprocess.run([go, "build", "-o", "go-relay", "."], cwd=src, env=env,
                          capture_output=True, text=True)
    return str(src / "go-relay") if done.returncode == 0 else None


def wait_for_port(port: int, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


_IDLE_EXTENSION = """import http.client, json, os
host, port = os.environ["AWS_LAMBDA_RUNTIME_API"].rsplit(":", 1)
api = http.client.HTTPConnection(host, int(port))
api.request("POST", "/2020-01-01/extension/register", b'{"events": ["SHUTDOWN"]}',
            {"Lambda-Extension-Name": "idle-control"})
answer = api.getresponse()
answer.read()
headers = {"Lambda-Extension-Identifier": answer.getheader("Lambda-Extension-Identifier")}
while True:
    api.request("GET", "/2020-01-01/extension/event/next", headers=headers)
    if json.loads(api.getresponse().read()).get("eventType") == "SHUTDOWN":
        break
"""


def idle_extension_opt(tmp: Path) -> str:
    """An /opt holding one extension that registers for SHUTDOWN only and does nothing: what the
    layer without a fault is, minus the layer: `no fault` is also compared with this, so what
    the layer costs is told apart from what any registered extension costs in the emulator
    (since lambda_apis wakes a SHUTDOWN-only extension for nothing else, as Lambda, ~nothing)."""
    folder = tmp / "idle-opt" / "extensions"
    folder.mkdir(parents=True)
    (tmp / "idle-opt" / "idle_control.py").write_text(_IDLE_EXTENSION)
    shim = folder / "idle-control"  # sh, then this Python by its path: no python3 on PATH needed
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -I -S "${{0%/*}}/../idle_control.py"\n')
    shim.chmod(0o755)
    return str(tmp / "idle-opt")


def make_variants(clients: Sequence[Client], layers: Dict[str, str], tmp: Path,
                  socat: Optional[str], go_relay: Optional[str]) -> List[Variant]:
    """Every (client, way) pair, each initialised; `layers` maps a layer's name to its /opt."""
    variants = []
    idle_opt = idle_extension_opt(tmp)
    for client in clients:
        variants.append(Variant(client.name, "direct", environment(client, None, {})))
        variants.append(Variant(client.name, "idle extension", environment(client, idle_opt, {})))
        if socat:
            variants.append(relay_variant(client, "socat", layers["Go"], tmp,
                                          socat_command(socat)))
        if go_relay:
            variants.append(relay_variant(client, "Go relay", layers["Go"], tmp,
                                          lambda listen, up: [go_relay, listen, up]))
        for layer, opt_dir in layers.items():
            if layer != "Go" and not client.name.startswith("Python"):
                continue  # the Python layer needs python3: not there for another runtime
            variants.append(Variant(client.name, f"proxy 0% {layer}",
                                    environment(client, opt_dir, FAULT_AT_0)))
            variants.append(Variant(client.name, f"no fault {layer}",
                                    environment(client, opt_dir, NO_FAULT)))
    for variant in variants:
        init = variant.env.start()
        if not init.ok:
            raise SystemExit(f"{variant.client} / {variant.name}: init failed: {init.error}\n"
                             f"{variant.env.logs()[-2000:]}")
    return variants


def python_layer_commit(before: Optional[str]) -> str:
    """The commit whose layer is the Python one: --before-commit, else found in history."""
    if before:
        return git("rev-parse", "--verify", f"{before}^{{commit}}")
    shim = "layer/extensions/lambda-chaos-extension"
    if "exec python3" in git("show", f"HEAD:{shim}"):
        return git("rev-parse", "HEAD")
    changed = git("log", "-1", "--format=%H", "-S", "exec python3", "--", shim)
    return git("rev-parse", f"{changed}^")  # the commit that dropped python3, minus one


def git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(REPO), *args], check=True, capture_output=True,
                          text=True).stdout.strip()


def build_python_layer(commit: str, tmp: Path) -> Path:
    """That commit's layer/ (sources and build.sh) built and extracted like Lambda does."""
    src = tmp / "python-layer-src"
    archive = subprocess.run(["git", "-C", str(REPO), "archive", "--format=tar", commit, "layer"],
                             check=True, capture_output=True).stdout
    tar_path = tmp / "python-layer.tar"
    tar_path.write_bytes(archive)
    with tarfile.open(tar_path) as tar:
        tar.extractall(src)
    out = tmp / "python-layer.zip"
    subprocess.run(["sh", str(src / "layer" / "build.sh"), str(out)], check=True,
                   capture_output=True, env={**os.environ, "PYTHON": sys.executable})
    return extract_layer(out, tmp / "python-opt")


# --- measuring -----------------------------------------------------------------------------
def invoke_timed(variant: Variant, event: bytes, size: int) -> float:
    started = time.perf_counter()
    result = variant.env.invoke(event)
    elapsed = time.perf_counter() - started
    if result.status != "success" or len(result.payload) < size:  # the echo came back whole
        raise SystemExit(f"{variant.client} / {variant.name}: {result.status} "
                         f"{result.payload[:200]!r}")
    return elapsed


def run_interleaved(variants: Sequence[Variant], label: str, rounds: int, block: int,
                    warmup: int = 10) -> None:
    """`block` invocations of each variant in turn until each has `rounds` (after warm-up)."""
    event = json.dumps({"body": "x" * SIZES[label]}).encode()
    for variant in variants:
        variant.times.setdefault(label, [])
        for _ in range(warmup):
            invoke_timed(variant, event, SIZES[label])
    for done in range(0, rounds, block):
        for variant in variants:
            for _ in range(min(block, rounds - done)):
                variant.times[label].append(invoke_timed(variant, event, SIZES[label]))
    for variant in variants:  # this repeat's median, to show the spread between repeats
        variant.repeat_p50.setdefault(label, []).append(
            statistics.median(variant.times[label][-rounds:]))


def extension_memory(env: ExecutionEnvironment) -> Optional[Dict[str, float]]:
    """VmRSS, VmHWM (peak), RssAnon and RssFile in MiB of this environment's chaos extension."""
    address = f"AWS_LAMBDA_RUNTIME_API={env.runtime_api_address}".encode()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
            environ = (proc / "environ").read_bytes().split(b"\0")
            status = (proc / "status").read_text()
        except OSError:
            continue
        if b"lambda-chaos" in cmdline and address in environ:
            fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
            return {k: int(fields[k].split()[0]) / 1024
                    for k in ("VmRSS", "VmHWM", "RssAnon", "RssFile")}
    return None


def init_durations(clients: Sequence[Client], layers: Dict[str, str],
                   samples: int) -> Dict[tuple, List[float]]:
    """Init durations per (client, way): each round one cold start of every way, in an order
    rotated round by round, so sample i of each way is taken at about the same time."""
    ways = [("without layer", None)] + [(f"fault 0% {name}", opt) for name, opt in layers.items()]
    durations: Dict[tuple, List[float]] = {}
    for round_ in range(samples):
        for client in clients:
            mine = [(w, o) for w, o in ways
                    if not (w.endswith("Python") and not client.name.startswith("Python"))]
            shift = round_ % len(mine)
            for way, opt_dir in mine[shift:] + mine[:shift]:
                with environment(client, opt_dir, FAULT_AT_0 if opt_dir else {}) as env:
                    init = env.start()
                    if not init.ok:
                        raise SystemExit(f"{client.name} / {way}: init failed: {init.error}")
                    durations.setdefault((client.name, way), []).append(init.duration_ms)
    return durations


class _ExtensionsApi(http.server.BaseHTTPRequestHandler):
    """Just enough Extensions API to time a registration: register, then SHUTDOWN at once."""

    protocol_version = "HTTP/1.1"
    registered_at: Optional[float] = None

    def do_POST(self) -> None:  # /2020-01-01/extension/register
        type(self).registered_at = time.perf_counter()
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._answer(b'{"functionName":"fn","functionVersion":"$LATEST","handler":"h"}',
                     {"Lambda-Extension-Identifier": "id-1"})

    def do_GET(self) -> None:  # /2020-01-01/extension/event/next
        self._answer(b'{"eventType":"SHUTDOWN","shutdownReason":"spindown","deadlineMs":0}', {})

    def _answer(self, body: bytes, headers: Dict[str, str]) -> None:
        self.send_response(200)
        for name, value in {**headers, "Content-Length": str(len(body))}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


def registration_ms(layers: Dict[str, str], samples: int) -> Dict[str, List[float]]:
    """Per layer, exec of its extension (fault configured) to its /register call, in ms: the
    part of Init that Lambda spends waiting before it may start the runtime."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _ExtensionsApi)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    address = "127.0.0.1:%d" % server.server_address[1]
    env = {"PATH": f"{os.path.dirname(sys.executable)}:/usr/bin:/bin",
           "AWS_LAMBDA_RUNTIME_API": address, **FAULT_AT_0}
    times: Dict[str, List[float]] = {}
    try:
        for _ in range(samples):
            for layer, opt_dir in layers.items():
                _ExtensionsApi.registered_at = None
                started = time.perf_counter()
                subprocess.run([os.path.join(opt_dir, "extensions", "lambda-chaos-extension")],
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               timeout=30)
                if _ExtensionsApi.registered_at is not None:
                    times.setdefault(layer, []).append(
                        (_ExtensionsApi.registered_at - started) * 1e3)
    finally:
        server.shutdown()
    return times


def init_added(inits: Dict[tuple, List[float]], client: str, way: str) -> Optional[List[float]]:
    """Per round, Init with the layer minus Init without it, sorted (None: way not measured)."""
    if (client, way) not in inits:
        return None
    return sorted(w - b for w, b in zip(inits[(client, way)], inits[(client, "without layer")]))


# --- report --------------------------------------------------------------------------------
def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def verdict(value: Optional[float], target: float) -> str:
    if value is None:
        return "n/a"
    return "met" if value <= target else "MISSED"


def print_invocations(variants: Sequence[Variant]) -> Dict[tuple, float]:
    """The per-invocation table; returns {(client, size, variant): pooled p50 in s}."""
    p50 = {}
    print(f"{'client':25} {'size':5} {'variant':18} {'p50 ms':>8} {'p99 ms':>8} {'inv/s':>7} "
          f"{'vs socat':>9} {'vs direct':>10}  p50 per repeat (ms)")
    for client in dict.fromkeys(v.client for v in variants):
        mine = [v for v in variants if v.client == client]
        for label in SIZES:
            for v in mine:
                p50[(client, label, v.name)] = statistics.median(v.times[label])
            socat = p50.get((client, label, "socat"))
            direct = p50[(client, label, "direct")]
            for v in mine:
                mid = p50[(client, label, v.name)]
                times = v.times[label]
                vs_socat = f"{mid / socat:8.3f}x" if socat else f"{'n/a':>9}"
                repeats = ", ".join(f"{r * 1e3:.2f}" for r in v.repeat_p50[label])
                print(f"{client:25} {label:5} {v.name:18} {mid * 1e3:8.3f} "
                      f"{percentile(times, 0.99) * 1e3:8.3f} {len(times) / sum(times):7.0f} "
                      f"{vs_socat} {mid / direct:9.3f}x  {repeats}")
            print()
    return p50


def summary_rows(clients: Sequence[Client], layers: Sequence[str], p50: Dict[tuple, float],
                 inits: Dict[tuple, List[float]], memory: Dict[tuple, Optional[Dict[str, float]]]):
    """(figure, target text, {layer: (value text, value or None)}) per row of the summary."""
    rows = []
    for client in clients:
        c = client.name
        for label in SIZES:
            socat = p50.get((c, label, "socat"))
            cells = {layer: ratio(p50.get((c, label, f"proxy 0% {layer}")), socat)
                     for layer in layers}
            rows.append((f"{c}: proxy vs socat, {label}", "<= 1.05x", "proxy vs socat", cells))
            go_relay = p50.get((c, label, "Go relay"))
            if go_relay:
                rows.append((f"{c}:   Go relay (no HTTP) vs socat, {label}", "<= 1.05x",
                             "proxy vs socat", {layer: ratio(go_relay, socat) if layer == "Go"
                                               else ("n/a", None) for layer in layers}))
        for label in SIZES:
            direct = p50[(c, label, "direct")]
            cells = {layer: ratio(p50.get((c, label, f"no fault {layer}")), direct)
                     for layer in layers}
            rows.append((f"{c}: no fault vs direct, {label}", "<= 1.02x", "no fault vs direct",
                         cells))
            idle = p50[(c, label, "idle extension")]
            cells = {layer: ratio(p50.get((c, label, f"no fault {layer}")), idle)
                     for layer in layers}
            rows.append((f"{c}:   same vs an idle extension, {label}", "<= 1.02x",
                         "no fault vs direct", cells))
        base = statistics.median(inits[(c, "without layer")])
        cells = {}
        for layer in layers:
            added = init_added(inits, c, f"fault 0% {layer}")
            mid = statistics.median(added) if added else None
            cells[layer] = ((f"{mid:+.1f} ms (IQR {percentile(added, 0.25):+.0f}.."
                             f"{percentile(added, 0.75):+.0f})", mid) if added else ("n/a", None))
        rows.append((f"{c}: init added (median {base:.0f} ms without)", "<= +10 ms",
                     "init added ms", cells))
        for when in ("after init", "after the passes"):
            cells = {}
            for layer in layers:
                mem = memory.get((c, layer, when))
                cells[layer] = ((f"{mem['VmRSS']:.1f} (peak {mem['VmHWM']:.1f}; anon "
                                 f"{mem['RssAnon']:.1f})", mem["VmRSS"]) if mem else ("n/a", None))
            rows.append((f"{c}: extension RSS MiB, {when}", "<= 8 MiB", "RSS MB", cells))
    return rows


def ratio(value: Optional[float], base: Optional[float]):
    if value is None or not base:
        return ("n/a", None)
    return (f"{value / base:.3f}x", value / base)


def print_summary(rows, layers: Sequence[str]) -> None:
    heads = [f"{layer} layer" + (" (after)" if layer == "Go" else " (before)") for layer in layers]
    print(f"{'figure':68} {'target':10} " + " ".join(f"{h:34}" for h in heads))
    for figure, target_text, target_key, cells in rows:
        line = f"{figure:68} {target_text:10} "
        for layer in layers:
            text, value = cells[layer]
            mark = verdict(value, TARGETS[target_key]) if text != "n/a" else ""
            line += f"{text + ' ' + mark:34} "
        print(line.rstrip())


# --- main ----------------------------------------------------------------------------------
def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--small", type=int, default=1000,
                        help="invocations per variant at 1 KB")
    parser.add_argument("--large", type=int, default=100,
                        help="invocations per variant at 1 MB")
    parser.add_argument("--block", type=int, default=10,
                        help="invocations of a variant per turn of the interleaving")
    parser.add_argument("--repeat", type=int, default=3,
                        help="passes over both sizes; the tables pool them and list each "
                             "pass's p50")
    parser.add_argument("--inits", type=int, default=30, help="cold starts per client and way")
    parser.add_argument("--before-commit", metavar="REV",
                        help="the commit whose layer/ is the Python layer (default: the last one "
                             "whose extension ran `exec python3`)")
    parser.add_argument("--no-node", action="store_true", help="skip the Node.js client")
    return parser.parse_args(argv)


def prepare(args: argparse.Namespace, tmp: Path):
    """(layers {name: opt dir}, clients, relays {name: path or None}, notes for the header)."""
    layers = {"Go": str(extract_layer(build_layer(tmp), tmp / "go-opt"))}
    commit = python_layer_commit(args.before_commit)
    layers["Python"] = str(build_python_layer(commit, tmp))
    notes = [f"Python layer (before): layer/ at {commit[:12]}"]
    clients = [python_client()]
    if not args.no_node:
        try:
            clients.append(node_client())
        except SystemExit as exc:
            notes.append(f"Node.js client skipped: {exc}")
    socat = shutil.which("socat")
    if not socat:
        notes.append("socat column skipped: socat not found (apt-get install socat)")
    relays = {"socat": socat, "Go relay": build_go_relay(tmp)}
    if not relays["Go relay"]:
        notes.append("Go relay column skipped: it did not build with the venv's Go")
    return layers, clients, relays, notes


def measure_invocations(clients, layers, tmp: Path, relays: Dict[str, Optional[str]],
                        args: argparse.Namespace):
    """The interleaved passes; returns the variants (with their times) and the extension's
    memory {(client, layer, "after init" | "after the passes"): figures}."""
    variants = make_variants(clients, layers, tmp, relays["socat"], relays["Go relay"])
    proxies = [v for v in variants if v.name.startswith("proxy 0%")]
    memory = {}
    try:
        memory.update({(v.client, v.name.rsplit(" ", 1)[1], "after init"):
                       extension_memory(v.env) for v in proxies})
        for _ in range(args.repeat):
            run_interleaved(variants, "1 KB", args.small, args.block)
            run_interleaved(variants, "1 MB", args.large, args.block)
        memory.update({(v.client, v.name.rsplit(" ", 1)[1], "after the passes"):
                       extension_memory(v.env) for v in proxies})
    finally:
        for variant in variants:
            variant.close()
    return variants, memory


def print_inits(inits: Dict[tuple, List[float]], registrations: Dict[str, List[float]]) -> None:
    print("init (Init duration, fault configured at 0 %): median, p25..p75; init added below is "
          "the median of the per-round differences")
    for (client, way), values in inits.items():
        print(f"  {client:25} {way:16} {statistics.median(values):8.1f} ms   "
              f"{percentile(values, 0.25):.0f}..{percentile(values, 0.75):.0f}")
    print("extension exec to /register, fault configured (outside the emulator; Lambda starts "
          "the runtime only after this):")
    for layer, values in registrations.items():
        print(f"  {layer + ' layer':16} median {statistics.median(values):6.1f} ms   "
              f"p25..p75 {percentile(values, 0.25):.1f}..{percentile(values, 0.75):.1f}")
    print()


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Build both layers, time invocations, then cold starts; print each table as it is done."""
    args = parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="bench-layer-"))
    try:
        layers, clients, relays, notes = prepare(args, tmp)
        print(f"\nchaos layer benchmark — {os.cpu_count()} CPUs, Python "
              f"{sys.version.split()[0]}; "
              f"{args.repeat} passes x ({args.small} x 1 KB + {args.large} x 1 MB) invocations "
              f"per variant, interleaved in blocks of {args.block}; {args.inits} cold starts per "
              f"way")
        for note in notes:
            print(f"  {note}")
        print(flush=True)
        variants, memory = measure_invocations(clients, layers, tmp, relays, args)
        p50 = print_invocations(variants)
        sys.stdout.flush()
        inits = init_durations(clients, layers, args.inits)
        registrations = registration_ms(layers, args.inits)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print_inits(inits, registrations)
    rows = summary_rows(clients, list(layers), p50, inits, memory)
    rows.append(("extension exec to /register (Init's share Lambda waits on)", "<= +10 ms",
                 "init added ms", {layer: (f"{statistics.median(v):.1f} ms", statistics.median(v))
                                   for layer, v in registrations.items()}))
    print_summary(rows, list(layers))


if __name__ == "__main__":
    main()
