"""Running the user's own `deploy.sh` against the embedded AWS, its output kept in a log.

The same script deploys to a real account; here it gets the emulator's endpoint and the
credentials of the account it acts in, with the venv's `aws` CLI and python first on its PATH.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Mapping, Sequence

from local_emulator.errors import DeployError

__all__ = ["run_deploy_script", "DEPLOY_SCRIPT"]

DEPLOY_SCRIPT = Path(__file__).resolve().parents[2] / "deploy.sh"


def run_deploy_script(arguments: Sequence[str], env: Mapping[str, str], log: Path, label: str,
                      timeout_s: float) -> None:
    """`deploy.sh ARGUMENTS` with `env` over this process's environment, its output in `log`;
    raises DeployError naming `label` (e.g. "for us-east-1") and the end of the log."""
    bin_dir = str(Path(sys.executable).parent)  # the venv's aws CLI and python come first
    process_env = {**os.environ, **env, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", "")}
    with open(log, "wb") as handle:
        try:
            done = subprocess.run([str(DEPLOY_SCRIPT), *arguments], cwd=DEPLOY_SCRIPT.parent,
                                  stdout=handle, stderr=subprocess.STDOUT, env=process_env,
                                  timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise DeployError(f"deploy.sh {label} did not finish in {timeout_s:.0f} s; "
                              f"see {log}") from None
    if done.returncode != 0:
        tail = Path(log).read_text(errors="replace")[-1500:]
        raise DeployError(f"deploy.sh {label} failed (exit {done.returncode}); "
                          f"the end of {log}:\n{tail}")
