"""Helpers for tests/test_deploy.py: a moto server of our own, a fake `aws` that records calls,
and a runner for deploy.sh with a clean environment."""
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

FAKE_AWS = """#!/bin/sh
# Records each call; answers sts like a working account, fails anything else.
echo "$@" >> "{log}"
case "$*" in
  *"sts get-caller-identity"*) {sts} ;;
  *) echo "fake aws: no AWS here" >&2; exit 255 ;;
esac
"""


def fake_aws(tmp_path, sts="echo 123456789012"):
    """A fake aws CLI and the file it logs its calls to."""
    log = tmp_path / "aws-calls.log"
    log.write_text("")
    script = tmp_path / "aws"
    script.write_text(FAKE_AWS.format(log=log, sts=sts))
    script.chmod(0o755)
    return script, log


def run_deploy(args, env_extra=None, cwd=ROOT, script=None, timeout=240):
    env = {"PATH": f"{BIN}:/usr/bin:/bin", "HOME": os.environ.get("HOME", "/tmp"),
           "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull}
    env.update(env_extra or {})
    return subprocess.run([str(script or ROOT / "deploy.sh"), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class MotoServer:
    """`moto_server` on a free port, for one test module; stopped by its own pid."""

    def __init__(self):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen([str(BIN / "moto_server"), "-p", str(self.port)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("moto_server did not start in 30 s")

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
