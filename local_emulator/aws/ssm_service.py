"""The local twin's Automation service: executions started by API, and tracked until they end.

moto stores documents but runs no automation. An execution started by another one
(`aws:executeAwsApi` `StartAutomationExecution`, as the experiment's cancel path hands its
detach to a new execution) is not part of its parent: it runs on, and the experiment must wait
for it before it compares the functions with their snapshot. This service starts such
executions, reading the document from the embedded SSM, and `wait_all` waits for every one.

Multi-account and multi-Region runs (`TargetLocations`, documented): one child execution per
account and Region, each with the credentials of `ExecutionRoleName` assumed in that account
(moto keys the account off an assumed role's credentials, so the child's scripts act in that
account); at most `TargetLocationMaxConcurrency` at once; once more than
`TargetLocationMaxErrors` have failed no further location starts, the running ones finish.
Inferred (not documented): cancelling the parent cancels every running child.
"""
from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Mapping, Optional

DEFAULT_EXECUTION_ROLE = "AWS-SystemsManager-AutomationExecutionRole"  # SSM's default name

__all__ = ["AutomationService", "LocationsRun"]


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

    def start(self, document_name: str, parameters: Mapping[str, Any], region: str,
              env: Optional[Mapping[str, str]] = None, account_id: str = "") -> Any:
        """StartAutomationExecution: the named document (or ARN) with API-style parameters
        (name → list of strings; a one-value list is that value)."""
        from local_emulator.aws.ssm_runner import AutomationExecution  # the runner imports us
        values = _api_values(parameters)
        document = self.document_loader(document_name, region)
        execution = AutomationExecution(document, values, clock=self.clock,
                                        script_env=env or self.env_for(region), region=region,
                                        account_id=account_id or self.account_id, service=self)
        with self._lock:
            self.executions.append(execution)
        return execution.start()

    # --- TargetLocations ------------------------------------------------------------------
    def locations(self, target_locations: List[Mapping[str, Any]]) -> List[Dict[str, Any]]:
        """Every (account, Region) of the TargetLocations, with its role and thresholds."""
        found = []
        for where in target_locations:
            accounts = _listed(where.get("Accounts")) or [self.account_id]
            excluded = set(_listed(where.get("ExcludeAccounts")))
            for account in accounts:
                if account in excluded:
                    continue
                for region in _listed(where.get("Regions")):
                    found.append({"Account": account, "Region": region,
                                  "Role": where.get("ExecutionRoleName") or DEFAULT_EXECUTION_ROLE,
                                  "MaxConcurrency": where.get("TargetLocationMaxConcurrency") or "1",
                                  "MaxErrors": where.get("TargetLocationMaxErrors") or "0"})
        return found

    def location_env(self, location: Mapping[str, Any]) -> Dict[str, str]:
        """The environment of a child in `location`: the execution role assumed there."""
        import boto3  # the emulator's own dependency; the service is used only with it
        base = dict(self.env_for(location["Region"]))
        role = f"arn:aws:iam::{location['Account']}:role/{location['Role']}"
        session = _session_of(base, location["Region"])
        credentials = boto3.client("sts", **session).assume_role(
            RoleArn=role, RoleSessionName="lambda-chaos-automation")["Credentials"]
        assumed = dict(session, aws_access_key_id=credentials["AccessKeyId"],
                       aws_secret_access_key=credentials["SecretAccessKey"],
                       aws_session_token=credentials["SessionToken"])
        iam = boto3.client("iam", **assumed)
        try:
            iam.get_role(RoleName=location["Role"])
        except iam.exceptions.NoSuchEntityException:
            raise LookupError(f"account {location['Account']} has no role {location['Role']}: "
                              "deploy the target stack there (deploy.sh --target-stack "
                              "--central-account ...), or pass its ExecutionRoleName") from None
        return dict(base, AWS_ACCESS_KEY_ID=credentials["AccessKeyId"],
                    AWS_SECRET_ACCESS_KEY=credentials["SecretAccessKey"],
                    AWS_SESSION_TOKEN=credentials["SessionToken"],
                    AWS_REGION=location["Region"], AWS_DEFAULT_REGION=location["Region"])

    def check_shared(self, document_name: str, document_region: str, account: str) -> None:
        """A document of this (central) account runs in another account only once it is shared
        with that account (ModifyDocumentPermission, PermissionType Share), as SSM requires of a
        custom runbook used by another account; refused in words with the command that shares it."""
        owner, region, name = _document_home(document_name, self.account_id, document_region)
        if account == owner or owner != self.account_id:
            return  # the caller's own document, or another owner's: its own sharing applies
        import boto3  # the emulator's own dependency; the service is used only with it
        ssm = boto3.client("ssm", **_session_of(self.env_for(region), region))
        shared = ssm.describe_document_permission(Name=name, PermissionType="Share")
        if account not in shared.get("AccountIds", []) and "all" not in shared.get("AccountIds", []):
            raise LookupError(f"document {name} of account {owner} ({region}) is not shared with "
                              f"account {account}, so it cannot run there: share it with aws ssm "
                              f"modify-document-permission --name {name} --permission-type Share "
                              f"--account-ids-to-add {account} --region {region} (deploy.sh "
                              "--target-accounts does), then start the experiment again")

    def start_location(self, document_name: str, parameters: Mapping[str, Any],
                       location: Dict[str, Any], document_region: str) -> Dict[str, Any]:
        """Start one location's child; a location that cannot start is a failed location.
        A location with an `Env` runs with it (the caller's own account and Region: an
        aws:executeAutomation without TargetLocations); any other assumes its execution role."""
        record = dict(location, ExecutionId="", Status="Pending", Failure="", execution=None)
        record.pop("Env", None)
        try:
            env = (location["Env"] or self.env_for(location["Region"])) if "Env" in location \
                else self.location_env(location)
            document = self.document_loader(document_name, document_region)
            self.check_shared(document_name, document_region, location["Account"])
        except Exception as exc:  # noqa: BLE001 - the location fails, with the reason
            record.update(Status="Failed", Failure=str(exc))
            return record
        from local_emulator.aws.ssm_runner import AutomationExecution
        execution = AutomationExecution(document, _api_values(parameters), clock=self.clock, script_env=env,
                                        region=location["Region"],
                                        account_id=location["Account"], service=self)
        with self._lock:
            self.executions.append(execution)
        record.update(ExecutionId=execution.execution_id, Status="InProgress",
                      execution=execution.start())
        return record

    def run_locations(self, document_name: str, parameters: Mapping[str, Any],
                      target_locations: List[Mapping[str, Any]], document_region: str,
                      cancel: threading.Event, wait: bool = True) -> "LocationsRun":
        """Run the document in every location, as TargetLocations does; with `wait`, until
        each ends (a set `cancel` cancels the running ones)."""
        return self._run(document_name, parameters, self.locations(target_locations),
                         document_region, cancel, wait)

    def run_here(self, document_name: str, parameters: Mapping[str, Any], region: str,
                 account_id: str, env: Mapping[str, str], cancel: threading.Event) -> "LocationsRun":
        """One child in the caller's own account and Region, with the caller's credentials:
        aws:executeAutomation without TargetLocations. No error may pass."""
        here = {"Account": account_id, "Region": region, "Role": "", "MaxConcurrency": "1",
                "MaxErrors": "0", "Env": dict(env)}
        return self._run(document_name, parameters, [here], region, cancel, wait=True)

    def _run(self, document_name: str, parameters: Mapping[str, Any], queue: List[Dict[str, Any]],
             document_region: str, cancel: threading.Event, wait: bool) -> "LocationsRun":
        """Start the queued locations, at most MaxConcurrency at once, none once more than
        MaxErrors have failed or `cancel` is set; with `wait`, until every started one ends."""
        if not queue:
            return LocationsRun([], 0)
        limit = _threshold(queue[0]["MaxConcurrency"], len(queue), at_least=1)
        errors = _threshold(queue[0]["MaxErrors"], len(queue), at_least=0)
        done: List[Dict[str, Any]] = []
        running: List[Dict[str, Any]] = []
        while queue or (running and wait):
            failed = sum(1 for r in done + running if r["Status"] in _FAILED)
            while queue and (len(running) < limit or not wait) and \
                    failed <= errors and not cancel.is_set():
                running.append(self.start_location(document_name, parameters, queue.pop(0),
                                                   document_region))
            if not wait:
                done, running = done + running, []
                break
            if cancel.is_set() or failed > errors:
                queue = []  # no further location starts
            if cancel.is_set():
                for record in running:
                    if record["execution"] is not None:
                        record["execution"].cancel()
            for record in list(running):
                execution = record["execution"]
                if execution is None or execution.wait(0.05):
                    if execution is not None:
                        record.update(Status=execution.status, Failure=execution.failure_message)
                    running.remove(record)
                    done.append(record)
        return LocationsRun([{k: v for k, v in r.items() if k != "execution"} for r in done], errors)

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

    def location_summaries(self) -> List[Dict[str, Any]]:
        """Account, Region and status of every execution: the report's per-location view."""
        with self._lock:
            return [{"Account": e.account_id, "Region": e.region, "Document": e.document.name,
                     "ExecutionId": e.execution_id, "Status": e.status} for e in self.executions]

    def summaries(self) -> List[Dict[str, Any]]:
        with self._lock:
            return [e.summary() for e in self.executions]


_FAILED = ("Failed", "Cancelled", "TimedOut")


@dataclass
class LocationsRun:
    """What a run over locations did: one record per location started (Account, Region,
    ExecutionId, Status, Failure), and how many of them may fail (TargetLocationMaxErrors)."""

    records: List[Dict[str, Any]]
    max_errors: int

    @property
    def failed(self) -> List[Dict[str, Any]]:
        return [r for r in self.records if r["Status"] != "Success"]

    @property
    def status(self) -> str:
        """The aws:executeAutomation step's verdict: Failed once more locations failed than
        TargetLocationMaxErrors allows."""
        return "Failed" if len(self.failed) > self.max_errors else "Success"


def _api_values(parameters: Mapping[str, Any]) -> Dict[str, Any]:
    """StartAutomationExecution's name → list of strings, as the document's values: a
    one-value list is that value (resolve_parameters then types it)."""
    return {name: value[0] if isinstance(value, list) and len(value) == 1 else value
            for name, value in parameters.items()}


def _session_of(env: Mapping[str, str], region: str) -> Dict[str, Any]:
    """boto3 client arguments acting with the credentials and endpoint of `env` (the central
    account's, as env_for gives them) in `region`."""
    return dict(aws_access_key_id=env.get("AWS_ACCESS_KEY_ID", "testing"),
                aws_secret_access_key=env.get("AWS_SECRET_ACCESS_KEY", "testing"),
                region_name=region, endpoint_url=env.get("AWS_ENDPOINT_URL"))


def _document_home(document: str, caller_account: str, caller_region: str):
    """(owner account, Region, name) of a document given by ARN
    (arn:aws:ssm:REGION:ACCOUNT:document/NAME) or by name (the caller's own)."""
    if document.startswith("arn:"):
        parts = document.split(":", 5)
        return parts[4], parts[3], parts[5].split("/", 1)[-1]
    return caller_account, caller_region, document


def _listed(value: Any) -> List[str]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return [str(v) for v in value]


def _threshold(value: Any, total: int, at_least: int) -> int:
    """A TargetLocationMaxConcurrency/MaxErrors value: a number, or a percentage of `total`."""
    text = str(value).strip()
    if text.endswith("%"):
        return max(at_least, math.floor(total * float(text[:-1]) / 100))
    return max(at_least, int(text))
