"""./layer/build.sh: the zip Lambda extracts under /opt, runnable on every Python runtime 3.9+."""
import ast
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from chaos_layer import config as c

from layer_fixtures import REPO, FakeRuntimeApi, RawClient, build_layer, extract_layer

EXPECTED = {"extensions/lambda-chaos-extension": 0o755, "lambda-chaos/wrapper": 0o755}
PYTHONS = [f"/root/.pyenv/versions/{v}/bin/python3" for v in
           ("3.9.18", "3.10.13", "3.11.7", "3.12.1", "3.13.0")]


@pytest.fixture(scope="module")
def layer_zip(tmp_path_factory):
    return build_layer(tmp_path_factory.mktemp("build"))


def test_zip_has_the_opt_layout_with_executable_entry_points(layer_zip):
    with zipfile.ZipFile(layer_zip) as archive:
        modes = {i.filename: (i.external_attr >> 16) & 0o777 for i in archive.infolist()}
    for name, mode in EXPECTED.items():
        assert modes[name] == mode
    assert "lambda-chaos/chaos_layer/extension.py" in modes
    assert c.WRAPPER_PATH == "/opt/" + "lambda-chaos/wrapper"
    assert "extensions/" + c.EXTENSION_NAME in modes
    assert not any(n.startswith("python/") for n in modes)  # never on the function's sys.path


def test_build_is_reproducible(tmp_path, layer_zip):
    assert build_layer(tmp_path).read_bytes() == layer_zip.read_bytes()


def test_layer_code_imports_nothing_outside_the_standard_library(layer_zip):
    with zipfile.ZipFile(layer_zip) as archive:
        sources = {n: archive.read(n) for n in archive.namelist() if n.endswith(".py")}
    for name, source in sources.items():
        for node in ast.walk(ast.parse(source, name, feature_version=(3, 9))):
            modules = []
            if isinstance(node, ast.Import):
                modules = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                modules = [node.module]
            for module in modules:
                top = module.split(".")[0]
                assert top in sys.stdlib_module_names or top == "__future__" or \
                    top == "chaos_layer", f"{name} imports {module}"


@pytest.mark.parametrize("python", PYTHONS, ids=lambda p: p.split("/")[4])
def test_every_module_imports_on_each_lambda_python(python, layer_zip, tmp_path):
    if not Path(python).exists():
        pytest.skip(f"{python} not installed")
    root = extract_layer(layer_zip, tmp_path / "opt") / "lambda-chaos"
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import chaos_layer.extension, "
            "chaos_layer.proxy, chaos_layer.faults, chaos_layer.metrics, chaos_layer.wire")
    subprocess.run([python, "-I", "-S", "-c", code, str(root)], check=True, timeout=30)


def test_scripts_name_only_variables_the_configuration_defines():
    defined = {s.name for s in c.SETTINGS}
    for script in ("layer/wrapper", "layer/extensions/lambda-chaos-extension"):
        used = set(re.findall(r"\bCHAOS_[A-Z_]+", (REPO / script).read_text()))
        assert used <= defined, f"{script} uses undefined {used - defined}"


def test_wrapper_reads_the_ready_file_the_extension_writes():
    text = (REPO / "layer" / "wrapper").read_text()
    assert c.ready_file("${AWS_LAMBDA_RUNTIME_API:-}") in text


def test_cold_start_imports_stay_light(layer_zip, tmp_path):
    """typing, json, dataclasses and re cost ~15 ms per cold start; the extension avoids them
    until after it has registered (the init target is +60 ms for the whole layer)."""
    root = extract_layer(layer_zip, tmp_path / "opt") / "lambda-chaos"
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import chaos_layer.extension; "
            "print(' '.join(sorted(sys.modules)))")
    done = subprocess.run([sys.executable, "-I", "-S", "-c", code, str(root)], check=True,
                          capture_output=True, text=True, timeout=30)
    loaded = set(done.stdout.split())
    assert loaded.isdisjoint({"typing", "json", "dataclasses", "re", "http.client"}), loaded


@pytest.mark.parametrize("python", PYTHONS, ids=lambda p: p.split("/")[4])
def test_proxy_injects_a_fault_on_each_lambda_python(python, layer_zip, tmp_path):
    """Not just importable: the proxy relays and injects on every supported interpreter."""
    if not Path(python).exists():
        pytest.skip(f"{python} not installed")
    root = extract_layer(layer_zip, tmp_path / "opt") / "lambda-chaos"
    upstream = FakeRuntimeApi()
    upstream.add_event("r1", b'{"n": 1}')
    code = ("import sys; sys.path.insert(0, sys.argv[1])\n"
            "from chaos_layer.config import FaultConfig\nfrom chaos_layer.proxy import Proxy\n"
            "cfg = FaultConfig.from_environ({'CHAOS_FAULT_TYPE': 'response', "
            "'CHAOS_RESPONSE_STATUS_CODE': '418', 'CHAOS_LATENCY_MS': '1'})\n"
            "p = Proxy(cfg, sys.argv[2], 0); print(p.start(), flush=True); sys.stdin.read()")
    child = subprocess.Popen([python, "-I", "-S", "-c", code, str(root), upstream.address],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        client = RawClient(int(child.stdout.readline()))
        _, event = client.exchange(b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\n\r\n")
        assert event == b'{"n": 1}'
        client.exchange(b"POST /2018-06-01/runtime/invocation/r1/response HTTP/1.1\r\n"
                        b"Content-Length: 4\r\n\r\n\"ok\"", b"POST")
        [result] = upstream.results()
        assert result.path.endswith(b"/r1/response") and b'"statusCode": 418' in result.body
    finally:
        child.kill()
        child.wait()
        upstream.close()
