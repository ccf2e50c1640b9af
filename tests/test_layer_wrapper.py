"""The exec wrapper (layer/wrapper): proxy only when the extension says it is ready, else untouched.

Run from an extracted build, as Lambda runs it, with a target command that prints what it got.
"""
import os
import subprocess
import uuid

import pytest

from chaos_layer import config as c

from layer_fixtures import build_layer, extract_layer

PRINT = ["sh", "-c", 'printf "%s\\n" "$AWS_LAMBDA_RUNTIME_API" "$@"', "runtime", "arg one", "two"]


@pytest.fixture(scope="module")
def opt_dir(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("layer")
    return extract_layer(build_layer(tmp), tmp / "opt")


@pytest.fixture
def runtime_api():
    address = f"127.0.0.1:{uuid.uuid4().int % 50000 + 10000}-{uuid.uuid4().hex[:6]}"
    yield address
    if os.path.exists(c.ready_file(address)):
        os.unlink(c.ready_file(address))


def run(opt_dir, env, command=PRINT):
    wrapper = str(opt_dir / "lambda-chaos" / "wrapper")
    full_env = {"PATH": os.environ["PATH"], **env}
    done = subprocess.run([wrapper, *command], env=full_env, capture_output=True, text=True,
                          timeout=10)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def write_ready(runtime_api, port, pid):
    with open(c.ready_file(runtime_api), "w") as handle:
        handle.write(f"{port} {pid}\n")


def test_no_fault_execs_the_runtime_untouched(opt_dir, runtime_api):
    write_ready(runtime_api, 9140, os.getpid())  # even a ready file is ignored without a fault
    assert run(opt_dir, {c.RUNTIME_API: runtime_api}) == [runtime_api, "arg one", "two"]


def test_fault_with_live_proxy_points_the_runtime_at_it(opt_dir, runtime_api):
    write_ready(runtime_api, 9555, os.getpid())
    env = {c.RUNTIME_API: runtime_api, c.FAULT_TYPE: "latency"}
    assert run(opt_dir, env) == ["127.0.0.1:9555", "arg one", "two"]


def test_proxy_not_up_means_the_runtime_talks_to_lambda_directly(opt_dir, runtime_api):
    env = {c.RUNTIME_API: runtime_api, c.FAULT_TYPE: "latency"}
    assert run(opt_dir, env)[0] == runtime_api


def test_ready_file_of_a_dead_extension_is_ignored(opt_dir, runtime_api):
    dead = subprocess.Popen(["true"])
    dead.wait()
    write_ready(runtime_api, 9555, dead.pid)
    env = {c.RUNTIME_API: runtime_api, c.FAULT_TYPE: "latency"}
    assert run(opt_dir, env)[0] == runtime_api


def test_original_exec_wrapper_still_runs_with_the_same_arguments(opt_dir, runtime_api, tmp_path):
    marker = tmp_path / "marker"
    original = tmp_path / "otel-wrapper"
    original.write_text(f'#!/bin/sh\necho "$@" > {marker}\nexec "$@"\n')
    original.chmod(0o755)
    write_ready(runtime_api, 9555, os.getpid())
    env = {c.RUNTIME_API: runtime_api, c.FAULT_TYPE: "error",
           c.ORIGINAL_EXEC_WRAPPER: str(original)}
    assert run(opt_dir, env) == ["127.0.0.1:9555", "arg one", "two"]
    assert marker.read_text().startswith("sh -c")


def test_original_wrapper_under_opt_is_found_in_the_same_layer_root(opt_dir, runtime_api):
    other_layer = opt_dir / "otel"
    other_layer.mkdir(exist_ok=True)
    (other_layer / "wrapper").write_text('#!/bin/sh\necho chained\nexec "$@"\n')
    (other_layer / "wrapper").chmod(0o755)
    env = {c.RUNTIME_API: runtime_api, c.ORIGINAL_EXEC_WRAPPER: "/opt/otel/wrapper"}
    assert run(opt_dir, env) == ["chained", runtime_api, "arg one", "two"]


@pytest.mark.parametrize("itself", [c.WRAPPER_PATH, "SELF"])
def test_original_wrapper_naming_the_chaos_wrapper_itself_does_not_loop(opt_dir, runtime_api, itself):
    if itself == "SELF":
        itself = str(opt_dir / "lambda-chaos" / "wrapper")
    env = {c.RUNTIME_API: runtime_api, c.ORIGINAL_EXEC_WRAPPER: itself}
    assert run(opt_dir, env) == [runtime_api, "arg one", "two"]
