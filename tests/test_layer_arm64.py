"""arm64 rests on a run: the arm64 binary's Go unit tests, the proxy's black-box cases and the
extension itself (in the emulator, in front of the real awslambdaric) run under qemu user-mode
emulation (Debian's qemu-user-static, which .ci/run installs as root).

Where qemu is absent these tests are skipped and the reason names the package to install
(`pytest -rs` shows it). The ELF check needs no qemu and always runs.
"""
from __future__ import annotations

import inspect
import json
import shutil
import struct
import subprocess
from pathlib import Path
from typing import List, Optional, Sequence

import pytest

import layer_fixtures
from local_emulator.environment import runtimes
from local_emulator.environment.runtime_api import ExecutionEnvironment
import test_proxy
from layer_fixtures import REPO, ProxyProcess
from test_layer_go import LAYER, VENV_GO, go_env
from test_proxy import start_proxy, upstream  # noqa: F401  (fixtures of the reused cases)

QEMU = shutil.which("qemu-aarch64-static")
needs_qemu = pytest.mark.skipif(
    QEMU is None, reason="qemu-aarch64-static not found: install Debian's qemu-user-static "
                         "(apt-get install -y qemu-user-static; .ci/run does it as root) to run "
                         "the arm64 binary's tests")


SETTINGS = json.loads((REPO / "layer" / "settings.json").read_text())
VAR = {s["constant"]: s["name"] for s in SETTINGS["settings"]}
FUNCTIONS = REPO / "tests" / "functions"
NODE = "nodejs22.x"
_EM_AARCH64, _PT_INTERP = 183, 3


def elf_machine_and_loader(path: Path):
    """(e_machine, whether the file asks for a dynamic loader: a PT_INTERP program header)."""
    data = path.read_bytes()
    assert data[:4] == b"\x7fELF", f"{path} is not an ELF file"
    assert data[4] == 2 and data[5] == 1, f"{path} is not 64-bit little-endian"
    machine = struct.unpack_from("<H", data, 18)[0]
    phoff = struct.unpack_from("<Q", data, 32)[0]
    phentsize, phnum = struct.unpack_from("<HH", data, 54)
    types = {struct.unpack_from("<I", data, phoff + i * phentsize)[0] for i in range(phnum)}
    return machine, _PT_INTERP in types


@pytest.fixture(scope="module")
def arm64_binary() -> Path:
    """The arm64 binary as ./layer/build.sh ships it in the layer zip (built once a session)."""
    return layer_fixtures.layer_binary("arm64")


@pytest.fixture
def on_arm64(arm64_binary, monkeypatch) -> List[ProxyProcess]:
    """test_proxy's start_proxy runs the arm64 binary through qemu; returns what it started.

    The hook is here, not in layer_fixtures: ProxyProcess runs layer_binary() (the host's) with
    a command in front, so both are pointed at arm64 and qemu for this test only.
    """
    monkeypatch.setattr(layer_fixtures, "layer_binary", lambda arch="arm64": arm64_binary)
    started: List[ProxyProcess] = []

    def through_qemu(env, command=()):
        started.append(ProxyProcess(env, command=[QEMU, *command]))
        return started[-1]

    monkeypatch.setattr(test_proxy, "ProxyProcess", through_qemu)
    return started


def test_arm64_binary_is_a_static_aarch64_executable(arm64_binary):
    machine, loader = elf_machine_and_loader(arm64_binary)
    assert machine == _EM_AARCH64, f"e_machine {machine}, not AArch64 ({_EM_AARCH64})"
    assert not loader, "the arm64 binary asks for a dynamic loader: build it with CGO_ENABLED=0"


@needs_qemu
def test_go_unit_tests_pass_for_arm64_under_qemu(tmp_path):
    """`go test ./...` for GOARCH=arm64, every test binary run by qemu (and seen to be)."""
    ran = tmp_path / "ran"
    exec_wrapper = tmp_path / "qemu-exec"
    exec_wrapper.write_text('#!/bin/sh\nod -An -j18 -N2 -tu2 "$1" >> "%s"\n'
                            'exec "%s" "$@"\n' % (ran, QEMU))
    exec_wrapper.chmod(0o755)
    env = {**go_env(), "GOARCH": "arm64"}
    listed = subprocess.run([str(VENV_GO), "list", "-f", "{{if or .TestGoFiles .XTestGoFiles}}"
                             "{{.ImportPath}}{{end}}", "./..."], cwd=LAYER, env=env,
                            capture_output=True, text=True, check=True).stdout.split()
    result = subprocess.run([str(VENV_GO), "test", "-count=1", "-exec", str(exec_wrapper),
                             "./..."], cwd=LAYER, env=env, capture_output=True, text=True,
                            timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr
    machines = ran.read_text().split() if ran.exists() else []
    assert listed and len(machines) == len(listed), (listed, machines, result.stdout)
    assert set(machines) == {str(_EM_AARCH64)}  # each test binary was an arm64 one


# The proxy's black-box specification (tests/test_proxy.py), a representative set of it, run
# again against the arm64 binary: (test, its parameters).
ARM64_CASES = [
    ("test_event_and_response_pass_through_byte_for_byte_at_size", {"size": 0}),
    ("test_event_and_response_pass_through_byte_for_byte_at_size", {"size": 1024 * 1024}),
    ("test_event_and_response_pass_through_byte_for_byte_at_size", {"size": 6 * 1024 * 1024}),
    ("test_streamed_chunked_response_and_trailers_pass_through_byte_for_byte", {}),
    ("test_expect_100_continue_is_relayed_before_the_body_is_sent", {}),
    ("test_latency_really_delays_delivery", {}),
    ("test_error_after_execution_discards_the_handler_result", {}),
    ("test_response_fault_answers_in_api_gateway_proxy_format", {"prevent": True}),
    ("test_a_bad_value_means_no_fault_and_one_line_naming_variable_and_value", {}),
    ("test_upstream_down_is_a_502_that_names_the_upstream", {}),
    ("test_invocations_in_flight_at_once_are_each_decided_and_matched_by_request_id", {}),
]


@needs_qemu
@pytest.mark.parametrize("name, params", ARM64_CASES,
                         ids=[f"{n[5:]}{''.join(f'-{v}' for v in p.values())}"
                              for n, p in ARM64_CASES])
def test_proxy_case_holds_for_the_arm64_binary_under_qemu(name, params, on_arm64, request):
    case = getattr(test_proxy, name)
    fixtures = {arg: request.getfixturevalue(arg)
                for arg in inspect.signature(case).parameters if arg not in params}
    case(**fixtures, **params)
    assert on_arm64, f"{name} started no proxy"
    for proxy in on_arm64:  # each was the arm64 binary, run by qemu
        assert proxy.proc.args[:2] == [QEMU, str(layer_fixtures.layer_binary())]


@pytest.fixture(scope="module")
def arm64_opt_dir(tmp_path_factory) -> Path:
    """The built layer with only its arm64 binary, the shim running it through qemu."""
    opt = tmp_path_factory.mktemp("arm64-opt") / "opt"
    shutil.copytree(layer_fixtures.layer_opt_dir(), opt)
    for binary in (opt / "lambda-chaos" / "bin").iterdir():
        if binary.name != "lambda-chaos-extension-arm64":
            binary.unlink()  # nothing but arm64 code can answer
    shim = opt / "extensions" / "lambda-chaos-extension"
    shim.write_text('#!/bin/sh\nexec "%s" "${0%%/*}/../lambda-chaos/bin/'
                    'lambda-chaos-extension-arm64" "$@"\n' % QEMU)
    return opt


def _arm64_function(opt: Path, runtime: Optional[str] = None, **chaos: str) -> ExecutionEnvironment:
    env = {SETTINGS["lambda_variables"]["exec_wrapper"]: SETTINGS["layer"]["wrapper_path"],
           VAR["PROXY_PORT"]: "0", **{VAR[k]: v for k, v in chaos.items()}}
    task_root = FUNCTIONS / "node" if runtime else FUNCTIONS
    return ExecutionEnvironment("echo.handler", str(task_root), str(opt), env, timeout_s=30,
                                init_timeout_s=60, runtime=runtime)


def _node_missing() -> Optional[str]:
    try:
        runtimes.resolve(NODE)
    except runtimes.UnsupportedRuntimeError as missing:
        return str(missing)
    return None


CLIENTS = [pytest.param(None, id="awslambdaric"),
           pytest.param(NODE, id="aws-lambda-ric", marks=pytest.mark.skipif(
               _node_missing() is not None, reason=str(_node_missing())))]


@needs_qemu
@pytest.mark.parametrize("runtime", CLIENTS)
def test_arm64_extension_carries_real_invocations_byte_for_byte(arm64_opt_dir, runtime):
    event = json.dumps({"body": "é" * (512 * 1024)}, ensure_ascii=False).encode()
    with _arm64_function(arm64_opt_dir, runtime, FAULT_TYPE="latency",
                         INVOCATION_PERCENTAGE="0") as env:
        init = env.start()
        assert init.ok, (init, env.logs())
        results = [env.invoke(event) for _ in range(2)]
        via = [env.client_process(r.client_address) for r in results]
    assert [r.status for r in results] == ["success"] * 2, env.logs()
    assert all(json.loads(r.payload) == json.loads(event) for r in results)
    assert via == ["lambda-chaos-extension"] * 2  # each answer came through the arm64 proxy


@needs_qemu
def test_arm64_extension_injects_an_error_and_shuts_down_cleanly(arm64_opt_dir):
    with _arm64_function(arm64_opt_dir, FAULT_TYPE="error", ERROR_TYPE="ArmInjected") as env:
        result = env.invoke(b'{"a": 1}')
        ready = Path(SETTINGS["layer"]["ready_file_pattern"].format(
            runtime_api=env.runtime_api_address))
        assert ready.exists()  # the arm64 proxy is up and told the wrapper so
    assert (result.status, result.error_type) == ("error", "ArmInjected"), env.logs()
    assert not ready.exists(), env.logs()  # removed on SHUTDOWN: the extension exited cleanly


def _run_ci_with_stubs(tmp_path: Path, uid: int, apt_status: int,
                       there: Sequence[str] = ()) -> List[str]:
    """.ci/run with id, apt-get and make replaced by stubs that log; returns the log."""
    bin_dir, log = tmp_path / "bin", tmp_path / "log"
    bin_dir.mkdir()
    stubs = {"id": f"echo {uid}", "apt-get": f'echo "apt-get $*" >> {log}; exit {apt_status}',
             "make": f'echo "make $*" >> {log}'}
    for command in there:  # already installed
        stubs[command] = "exit 0"
    for name, body in stubs.items():
        (bin_dir / name).write_text(f"#!/bin/sh\n{body}\n")
        (bin_dir / name).chmod(0o755)
    (bin_dir / "dirname").symlink_to(shutil.which("dirname"))
    subprocess.run(["/bin/bash", str(REPO / ".ci" / "run")], env={"PATH": str(bin_dir)},
                   check=True, capture_output=True)
    return log.read_text().splitlines()


def test_ci_as_root_installs_qemu_user_static_and_chromium_before_make_test(tmp_path):
    log = _run_ci_with_stubs(tmp_path, uid=0, apt_status=0)
    assert log == ["apt-get install -y -qq qemu-user-static", "apt-get install -y -qq chromium",
                   "make test"]


def test_ci_goes_on_to_make_test_when_qemu_cannot_be_installed(tmp_path):
    log = _run_ci_with_stubs(tmp_path, uid=0, apt_status=100)
    assert log[-1] == "make test" and log[0].endswith("qemu-user-static")
    assert any(line.endswith("install -y -qq chromium") for line in log)


def test_ci_with_qemu_and_chromium_already_there_installs_nothing(tmp_path):
    assert _run_ci_with_stubs(tmp_path, uid=0, apt_status=0,
                              there=("qemu-aarch64-static", "chromium")) == ["make test"]


def test_ci_not_root_installs_nothing(tmp_path):
    assert _run_ci_with_stubs(tmp_path, uid=1000, apt_status=0) == ["make test"]
