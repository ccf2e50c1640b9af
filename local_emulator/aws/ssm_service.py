"""The local twin's Automation service: executions started by API, and tracked until they end.

moto stores documents but runs no automation. An execution started by another one
(`aws:executeAwsApi` `StartAutomationExecution`, as the experiment's cancel path hands its
detach to a new execution) is not part of its parent: it runs on, and the experiment must wait
for it before it compares the functions with their snapshot. This service starts such
executions, reading the document from the embedded SSM, and `wait_all` waits for every one.
"""
from __future__ import annotations

import threading
import time
from typing import Any, Callable, Dict, List, Mapping, Optional

__all__ = ["AutomationService"]


class AutomationService:
    """Starts and tracks executions: `start(document, parameters, region)`, `wait_all()`."""

    def __init__(self, document_loader: Callable[[str, str], Any], *, clock: Any,
                 env_for: Callable[[str], Mapping[str, str]],
                 account_id: str = "123456789012") -> None:
        self.document_loader = document_loader
        self.clock = clock
        self.env_for = env_for
        self.account_id = account_id
        self.executions: List[Any] = []
        self._lock = threading.Lock()

    def start(self, document_name: str, parameters: Mapping[str, Any], region: str) -> Any:
        """StartAutomationExecution: the named document (or ARN) with API-style parameters
        (name → list of strings; a one-value list is that value)."""
        from local_emulator.aws.ssm_runner import AutomationExecution  # the runner imports us
        values: Dict[str, Any] = {}
        for name, value in parameters.items():
            values[name] = value[0] if isinstance(value, list) and len(value) == 1 else value
        document = self.document_loader(document_name, region)
        execution = AutomationExecution(document, values, clock=self.clock,
                                        script_env=self.env_for(region), region=region,
                                        account_id=self.account_id, service=self)
        with self._lock:
            self.executions.append(execution)
        return execution.start()

    def wait_all(self, timeout: Optional[float] = None) -> bool:
        """Block until every execution started here has ended (True) or `timeout` real s pass."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._lock:
                running = [e for e in self.executions if not e.done]
            if not running:
                return True
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return False
            running[0].wait(left)

    def summaries(self) -> List[Dict[str, Any]]:
        with self._lock:
            return [e.summary() for e in self.executions]
