"""The same function twice, direct and behind the chaos layer's proxy with a fault at 0 %: what
the pass-through tests of every runtime client compare, byte for byte."""
from __future__ import annotations

import json
import uuid
from typing import Dict, List, Optional, Tuple, Union

from chaos_layer import config as c
from local_emulator.environment.runtime_api import ExecutionEnvironment, InvokeResult


class Pairs:
    """Per handler, a direct environment and one behind the proxy (fault at 0 %), kept warm."""

    def __init__(self, opt_dir: str, task_root: str, runtime: Optional[str] = None) -> None:
        self.opt_dir, self.task_root, self.runtime = opt_dir, str(task_root), runtime
        self.envs: Dict[str, Tuple[ExecutionEnvironment, ExecutionEnvironment]] = {}

    def invoke_both(self, handler: str, event: Union[bytes, dict]) -> List[InvokeResult]:
        """[direct, proxied] results of one event (a dict is sent as JSON) with one request id."""
        if handler not in self.envs:
            chaos = {c.EXEC_WRAPPER: c.WRAPPER_PATH, c.PROXY_PORT: "0", c.FAULT_TYPE: "error",
                     c.PREVENT_EXECUTION: "true", c.INVOCATION_PERCENTAGE: "0"}
            self.envs[handler] = tuple(  # type: ignore[assignment]
                ExecutionEnvironment(handler, self.task_root, layer, env, timeout_s=30,
                                     runtime=self.runtime, init_timeout_s=30.0)
                for layer, env in ((None, {}), (self.opt_dir, chaos)))
        payload = event if isinstance(event, bytes) else json.dumps(event, ensure_ascii=False).encode()
        request_id = str(uuid.uuid4())  # the same id, so even error payloads compare equal
        return [lambda_env.invoke(payload, request_id) for lambda_env in self.envs[handler]]

    def close(self) -> None:
        for pair in self.envs.values():
            for lambda_env in pair:
                lambda_env.shutdown()


def same(direct: InvokeResult, proxied: InvokeResult) -> InvokeResult:
    """Assert the proxied result is the direct one, and that it really crossed the proxy."""
    assert (direct.status, direct.error_type, direct.payload, direct.response_mode) == (
        proxied.status, proxied.error_type, proxied.payload, proxied.response_mode)
    assert proxied.client_address != direct.client_address
    return proxied
