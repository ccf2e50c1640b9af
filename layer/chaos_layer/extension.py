"""The external extension: starts the proxy, then lives as long as the execution environment.

`main()` only wires; every decision lives in config, faults and proxy.
"""
from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs ~3 ms per cold start

from . import metrics, wire
from .config import (EXTENSION_NAME, RUNTIME_API, FaultConfig, format_utc_time, ready_file)
from .proxy import Proxy

if TYPE_CHECKING:
    from typing import Mapping, Optional

__all__ = ["main"]

_API = "/2020-01-01/extension"


def main(environ: Optional[Mapping[str, str]] = None) -> int:
    """Run the extension until SHUTDOWN.

    1. Read the configuration once; each bad value is one log line and means no fault.
    2. If a fault is configured and not expired, start the proxy on 127.0.0.1. If the port
       cannot be bound, say so and carry on without it: the function must still start.
    3. Write the ready file ("<port> <pid>") that tells the wrapper the proxy is up — before
       registering, because Lambda starts the runtime only once every extension registered.
    4. Register for SHUTDOWN only: with no INVOKE events the extension costs nothing per call.
    5. Block on /event/next until SHUTDOWN, remove the ready file, exit 0.
    """
    environ = os.environ if environ is None else environ
    runtime_api = environ.get(RUNTIME_API, "")
    if not runtime_api:
        metrics.log(f"{RUNTIME_API} is not set: this extension runs only inside Lambda "
                    "(or the local emulator)")
        return 1
    ready = ready_file(runtime_api)
    _remove(ready)  # a file left by an earlier environment must not point at a dead proxy
    cfg = FaultConfig.from_environ(environ)
    for problem in cfg.problems:
        metrics.log(problem)
    proxy = _start_proxy(cfg, environ)
    if proxy is not None:
        _write_ready(ready, proxy.port)
    try:
        extension_id = _register(runtime_api)
        if proxy is not None:
            proxy.prepare()  # the runtime is starting now: warm up off the cold-start path
        _wait_for_shutdown(runtime_api, extension_id)
    finally:
        _remove(ready)
    return 0


def _start_proxy(cfg: FaultConfig, environ: Mapping[str, str]) -> Optional[Proxy]:
    if cfg.fault_type is None:
        return None
    if not cfg.active():
        metrics.log(f"fault {cfg.fault_type} expired at {format_utc_time(cfg.expires_at)}; "
                    "passing everything through")
        return None
    try:  # an upstream that does not answer would turn every call into a 502: bypass instead
        wire.connect(cfg.upstream, timeout=1.0).close()
    except (OSError, ValueError) as exc:
        metrics.log(f"the Runtime API at {cfg.upstream} does not answer ({exc}); no fault is "
                    "injected. Check CHAOS_UPSTREAM_RUNTIME_API.")
        return None
    proxy = Proxy(cfg, cfg.upstream, cfg.proxy_port,
                  function_name=environ.get("AWS_LAMBDA_FUNCTION_NAME", ""),
                  task_root=environ.get("LAMBDA_TASK_ROOT", ""))
    try:
        proxy.start()
    except OSError as exc:
        metrics.log(f"cannot listen on 127.0.0.1:{cfg.proxy_port} ({exc.strerror or exc}); "
                    "no fault is injected. Set CHAOS_PROXY_PORT to a free port.")
        return None
    metrics.log(f"proxy on 127.0.0.1:{proxy.port} -> {cfg.upstream}: {cfg.fault_type} at "
                f"{cfg.percentage:g}% of invocations")
    return proxy


def _write_ready(path: str, port: int) -> None:
    tmp = f"{path}.{os.getpid()}"
    try:
        with open(tmp, "w") as handle:
            handle.write(f"{port} {os.getpid()}\n")
        os.replace(tmp, path)  # atomic: the wrapper never reads half a file
    except OSError as exc:
        metrics.log(f"cannot write {path} ({exc}); the runtime will bypass the proxy")


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _register(runtime_api: str) -> str:
    status, head, body = wire.request(
        runtime_api, "POST", f"{_API}/register", b'{"events": ["SHUTDOWN"]}',
        {"Lambda-Extension-Name": EXTENSION_NAME, "Content-Type": "application/json"})
    extension_id = wire.header(head, head.lower(), b"lambda-extension-identifier")
    if status != 200 or not extension_id:
        raise RuntimeError(f"Extensions API register answered {status}: {body[:200]!r}")
    return extension_id.decode("latin-1")


def _wait_for_shutdown(runtime_api: str, extension_id: str) -> None:
    import json  # after registering: off the cold-start path

    while True:
        status, _, body = wire.request(runtime_api, "GET", f"{_API}/event/next",
                                       headers={"Lambda-Extension-Identifier": extension_id})
        if status != 200:
            raise RuntimeError(f"Extensions API event/next answered {status}: {body[:200]!r}")
        if json.loads(body or b"{}").get("eventType") == "SHUTDOWN":
            return


if __name__ == "__main__":
    sys.exit(main())
