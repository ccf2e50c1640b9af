"""The embedded AWS: a moto server on 127.0.0.1, a free port, for one run.

It runs as its own process (not moto's in-process thread) for two reasons: `deploy.sh --local`
talks to it with the AWS CLI from another process anyway, and on a 2-core machine a server
sharing our interpreter's GIL would slow the load generator and distort the latencies we
measure. Everything that talks to it gets the endpoint through `client()` or `env()`, so no
boto3 call of the run can reach real AWS by accident.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Dict, Optional

import boto3
from botocore.config import Config

from local_emulator.environment.http_server import free_port
from local_emulator.errors import MotoServerError

__all__ = ["MotoServer", "free_port", "FAKE_CREDENTIALS"]  # free_port: re-exported

# Credentials moto accepts; real ones are never needed, and never read, for a local run.
FAKE_CREDENTIALS: Dict[str, str] = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}

# Retries would hide a moto crash behind long backoffs; the emulator answers or it is broken.
_CLIENT_CONFIG = Config(retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=5,
                        read_timeout=60)



class MotoServer:
    """Start with `start()` (or `with MotoServer() as aws:`); `endpoint_url`, `client()`, `env()`."""

    def __init__(self, host: str = "127.0.0.1", port: Optional[int] = None,
                 log_path: Optional[str] = None) -> None:
        self.host = host
        self.port = port
        self.log_path = log_path
        self._process: Optional[subprocess.Popen] = None
        self._log = None

    @property
    def endpoint_url(self) -> str:
        if self.port is None:
            raise MotoServerError("the moto server is not started; call start() first")
        return f"http://{self.host}:{self.port}"

    def start(self, timeout_s: float = 30.0) -> "MotoServer":
        """Launch `python -m moto.server` and wait until it answers; raises MotoServerError."""
        if self._process is not None:
            return self
        self.port = self.port or free_port(self.host)
        self._log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        # moto's server through our entry point, which fixes its double gunzip of compressed
        # requests (PutMetricData); see moto_main.py.
        command = [sys.executable, "-m", "local_emulator.aws.moto_main", "-H", self.host, "-p", str(self.port)]
        try:
            self._process = subprocess.Popen(command, stdout=self._log, stderr=self._log,
                                             env=_server_environment(), preexec_fn=_lower_priority)
        except OSError as exc:
            raise MotoServerError(f"cannot run {' '.join(command)}: {exc}; "
                                  "install the dev requirements (make test sets them up)") from exc
        self._wait_ready(timeout_s)
        return self

    def _wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise MotoServerError(
                    f"moto server exited with code {self._process.returncode} before answering; "
                    "is moto[server] installed (it needs the `server` extra)?")
            try:
                with urllib.request.urlopen(f"{self.endpoint_url}/moto-api/data.json", timeout=2):
                    return
            except (urllib.error.URLError, OSError):
                time.sleep(0.1)
        self.stop()
        raise MotoServerError(f"moto server on {self.host}:{self.port} did not answer within "
                              f"{timeout_s:.0f} s; check that the port is free and retry")

    def reset(self) -> None:
        """Forget every resource (moto's own reset API); tests use it between cases."""
        request = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST")
        with urllib.request.urlopen(request, timeout=10):
            pass

    def client(self, service: str, region: str = "us-east-1"):
        """A boto3 client for `service` in `region` that can only reach the embedded server."""
        return boto3.session.Session(region_name=region, **_lower(FAKE_CREDENTIALS)).client(
            service, endpoint_url=self.endpoint_url, config=_CLIENT_CONFIG)

    def env(self, region: str = "us-east-1") -> Dict[str, str]:
        """Environment variables that point any AWS SDK or CLI at the embedded server.

        botocore ≥ 1.31 honours AWS_ENDPOINT_URL, so scripts run unchanged (the SSM runner
        relies on it to run the real automation handler against the emulator).
        """
        return {**FAKE_CREDENTIALS, "AWS_ENDPOINT_URL": self.endpoint_url,
                "AWS_DEFAULT_REGION": region, "AWS_REGION": region}

    def stop(self) -> None:
        """Terminate the server process; idempotent."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        if self._log not in (None, subprocess.DEVNULL):
            self._log.close()
        self._log = None

    def __enter__(self) -> "MotoServer":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()


# moto answers the run's background work (metrics, alarm evaluation, configuration reads, the
# automation's calls), never a customer request. Its CloudWatch scans every datapoint ever put
# on each GetMetricStatistics, so its CPU grows through a run; at normal priority it took the
# core the functions' runtimes needed and the post phase read slower than the steady state.
_SERVER_NICENESS = 10


def _lower_priority() -> None:
    """In the server's process, before it starts: yield the CPU to the run's own processes."""
    os.nice(_SERVER_NICENESS)


def _server_environment() -> Dict[str, str]:
    """The server's environment: fake credentials, and this repository importable (for
    `local_emulator.aws.moto_main`) from whatever directory the run was started in."""
    root = str(Path(__file__).resolve().parents[2])
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, **FAKE_CREDENTIALS, "PYTHONPATH": path}


def _lower(credentials: Dict[str, str]) -> Dict[str, str]:
    return {"aws_access_key_id": credentials["AWS_ACCESS_KEY_ID"],
            "aws_secret_access_key": credentials["AWS_SECRET_ACCESS_KEY"],
            "aws_session_token": credentials["AWS_SESSION_TOKEN"]}
