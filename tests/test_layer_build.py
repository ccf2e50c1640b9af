"""./layer/build.sh: the zip Lambda extracts under /opt, one for both architectures: two static
Go binaries, the shim that picks one with shell builtins only, and the wrapper."""
import hashlib
import os
import re
import struct
import subprocess
import threading
import time
import zipfile

import pytest

import build_zip
from chaos_layer import config as c

from layer_fixtures import REPO, build_layer, extract_layer, layer_opt_dir

EXPECTED = {"extensions/lambda-chaos-extension": 0o755, "lambda-chaos/wrapper": 0o755,
            "lambda-chaos/bin/lambda-chaos-extension-amd64": 0o755,
            "lambda-chaos/bin/lambda-chaos-extension-arm64": 0o755}
_EM = {"amd64": 62, "arm64": 183}
_PT_INTERP = 3


@pytest.fixture(scope="module")
def layer_zip(tmp_path_factory):
    return build_layer(tmp_path_factory.mktemp("build"))


def test_zip_has_the_opt_layout_with_executable_entry_points(layer_zip):
    with zipfile.ZipFile(layer_zip) as archive:
        modes = {i.filename: (i.external_attr >> 16) & 0o777 for i in archive.infolist()}
    assert modes == EXPECTED  # nothing else: no Python, nothing on the function's paths
    assert c.WRAPPER_PATH == "/opt/" + "lambda-chaos/wrapper"
    assert "extensions/" + c.EXTENSION_NAME in modes


def test_build_is_reproducible(tmp_path, layer_zip):
    assert build_layer(tmp_path).read_bytes() == layer_zip.read_bytes()


def test_two_builds_at_once_each_write_the_whole_zip(tmp_path, layer_zip):
    """A test's deploy and the user's `make experiment` may build at once: neither may rename
    the other's half-written file away, and no temporary file is left behind."""
    bins = tmp_path / "bin"
    bins.mkdir()
    with zipfile.ZipFile(layer_zip) as archive:
        for arch in build_zip.ARCHES:
            name = f"lambda-chaos-extension-{arch}"
            (bins / name).write_bytes(archive.read(f"lambda-chaos/bin/{name}"))
    out = tmp_path / "dist" / "chaos-layer.zip"
    out.parent.mkdir()
    errors = []

    def build_repeatedly():
        try:
            for _ in range(4):
                build_zip.build(REPO / "layer", out, bins)
        except Exception as exc:  # noqa: BLE001 - the test reports it
            errors.append(exc)

    builders = [threading.Thread(target=build_repeatedly) for _ in range(2)]
    for builder in builders:
        builder.start()
    for builder in builders:
        builder.join()
    assert errors == []
    assert out.read_bytes() == layer_zip.read_bytes()
    assert list(out.parent.iterdir()) == [out]
    assert out.stat().st_mode & 0o777 == 0o644


@pytest.mark.parametrize("arch", ["amd64", "arm64"])
def test_each_binary_is_a_static_elf_for_its_architecture(layer_zip, tmp_path, arch):
    with zipfile.ZipFile(layer_zip) as archive:
        data = archive.read(f"lambda-chaos/bin/lambda-chaos-extension-{arch}")
    assert data[:4] == b"\x7fELF" and data[4] == 2 and data[5] == 1  # 64-bit little-endian
    assert struct.unpack_from("<H", data, 18)[0] == _EM[arch]
    phoff = struct.unpack_from("<Q", data, 32)[0]
    phentsize, phnum = struct.unpack_from("<HH", data, 54)
    types = {struct.unpack_from("<I", data, phoff + i * phentsize)[0] for i in range(phnum)}
    assert _PT_INTERP not in types  # no dynamic loader: runs on any Lambda image


def stub_layer(tmp_path):
    """The built layer with each binary replaced by a script that prints its architecture and pid."""
    opt = extract_layer(build_layer(tmp_path), tmp_path / "opt")
    for arch in ("amd64", "arm64"):
        stub = opt / "lambda-chaos" / "bin" / f"lambda-chaos-extension-{arch}"
        stub.write_text(f'#!/bin/sh\necho {arch} $$ "$@"\n')
    return opt / "extensions" / c.EXTENSION_NAME


@pytest.mark.parametrize("shell,hosttype,arch", [("bash", "x86_64", "amd64"),
                                                 ("bash", "aarch64", "arm64"),
                                                 ("sh", None, "amd64")])
def test_the_shim_execs_the_binary_of_its_machine_without_a_process_of_its_own(
        tmp_path, shell, hosttype, arch):
    shim = stub_layer(tmp_path)
    env = {"PATH": os.environ["PATH"]}
    code = f'HOSTTYPE={hosttype}; . "$0"' if hosttype else '. "$0"'
    child = subprocess.Popen([shell, "-c", code, str(shim)], env=env, stdout=subprocess.PIPE,
                             text=True)
    out, _ = child.communicate(timeout=10)
    assert out.split() == [arch, str(child.pid)]  # same pid: exec'd, nothing forked


def test_the_shim_names_no_command_that_would_start_a_process():
    text = (REPO / "layer" / "extensions" / c.EXTENSION_NAME).read_text()
    code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    assert not re.search(r"\b(uname|arch|file|test|expr|sed|awk|grep|cat)\b|\$\(|`", code)


def test_the_layer_scripts_pass_shellcheck():
    scripts = ["layer/build.sh", "layer/wrapper", "layer/extensions/lambda-chaos-extension"]
    done = subprocess.run([str(REPO / ".venv" / "bin" / "shellcheck"), "--shell=sh",
                           *(str(REPO / s) for s in scripts)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_scripts_name_only_variables_the_configuration_defines():
    defined = {s.name for s in c.SETTINGS}
    for script in ("layer/wrapper", "layer/extensions/lambda-chaos-extension"):
        used = set(re.findall(r"\bCHAOS_[A-Z_]+", (REPO / script).read_text()))
        assert used <= defined, f"{script} uses undefined {used - defined}"


def test_wrapper_reads_the_ready_file_the_extension_writes():
    text = (REPO / "layer" / "wrapper").read_text()
    assert c.ready_file("${AWS_LAMBDA_RUNTIME_API:-}") in text


def test_the_go_code_names_no_variable_itself():
    """Variables are named once, in settings.json; the Go code uses their constant keys."""
    for path in (REPO / "layer").rglob("*.go"):
        if path.name.endswith("_test.go"):
            continue
        assert not re.search(r'"CHAOS_[A-Z_]+"', path.read_text()), path


def test_the_binary_starts_and_exits_fast_enough_to_count_for_nothing_at_init():
    """Not a timing assertion: a smoke test that the host's binary runs at all outside Lambda
    (it says what is missing and exits 1)."""
    binary = layer_opt_dir() / "lambda-chaos" / "bin"
    arch = "arm64" if os.uname().machine == "aarch64" else "amd64"
    done = subprocess.run([str(binary / f"lambda-chaos-extension-{arch}")], env={},
                          capture_output=True, text=True, timeout=10)
    assert done.returncode == 1 and c.RUNTIME_API in done.stdout
