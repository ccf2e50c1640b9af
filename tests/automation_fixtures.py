"""Realistic Lambda functions on moto, and the parts of Lambda that moto does not model.

`MotoGaps` adds, through botocore event hooks on the client the automation uses (so boto3's
waiters see them too), what the real Lambda API does and moto 5.2 does not:
- `RevisionId` on functions and aliases, and `PreconditionFailedException` for a stale one;
- `LastUpdateStatus: InProgress` for the next `in_progress_polls` reads after an update, and
  `ResourceConflictException` for an update or publish while one is in progress;
- `PublishVersion` with nothing changed since the last publish returns that version;
- the 5-layer and 4 KB environment limits; deleting a version an alias points at is refused.
It also records every call (for counting) and can make the k-th call fail or "crash".
"""
from __future__ import annotations

import io
import json
import threading
import uuid
import zipfile
from types import SimpleNamespace
from typing import Any, Callable, Dict, List, Optional, Tuple

import boto3

import automation_handler as ah
from chaos_layer import config

REGION = "us-east-1"
ACCOUNT = "123456789012"
OWN_WRAPPER = "/opt/otel-instrument"


class SimulatedCrash(BaseException):
    """The automation's process dies between two AWS calls (not an Exception: nothing in the
    automation may catch it, exactly as with a killed process)."""


def code_zip(body: str = "def handler(event, context):\n    return {'ok': True}\n") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", body)
    return buffer.getvalue()


def _function_key(name: str) -> str:
    return name.split(":")[6] if name.startswith("arn:") else name


def _error(status: int, code: str, message: str) -> Tuple[Any, Dict[str, Any]]:
    return (SimpleNamespace(status_code=status, headers={}),
            {"Error": {"Code": code, "Message": message},
             "ResponseMetadata": {"HTTPStatusCode": status}})


class MotoGaps:
    """Hooks on one Lambda client that make moto behave like Lambda where the automation's
    correctness depends on it (see the module docstring)."""

    def __init__(self, client: Any, in_progress_polls: int = 1):
        self.client = client
        self.raw = boto3.client("lambda", region_name=client.meta.region_name)  # unhooked
        self.in_progress_polls = in_progress_polls
        self.revisions: Dict[str, str] = {}
        self.alias_revisions: Dict[Tuple[str, str], str] = {}
        self.pending: Dict[str, int] = {}
        self.published: Dict[str, Tuple[str, str]] = {}
        self.calls: List[Tuple[str, Dict[str, Any]]] = []
        self.fail_at: Optional[Tuple[int, str]] = None
        self.before_update: Optional[Callable[[str], None]] = None
        self._lock = threading.RLock()
        events = client.meta.events
        events.register("before-parameter-build.lambda", self._before)
        events.register("before-call.lambda", self._short_circuit)
        events.register("after-call.lambda", self._after)

    # -- bookkeeping a test may use ------------------------------------------------------------
    def revision(self, function: str) -> str:
        with self._lock:
            return self.revisions.setdefault(_function_key(function), str(uuid.uuid4()))

    def touch(self, function: str) -> None:
        """Someone else changed the function: its RevisionId moves on."""
        with self._lock:
            self.revisions[_function_key(function)] = str(uuid.uuid4())

    def operations(self) -> List[str]:
        return [op for op, _ in self.calls]

    # -- hooks ----------------------------------------------------------------------------------
    def _before(self, params: Dict[str, Any], model: Any, context: Dict[str, Any], **_: Any):
        op = model.name
        with self._lock:
            self.calls.append((op, dict(params)))
            k = len(self.calls)
            if self.fail_at and self.fail_at[0] == k:
                kind = self.fail_at[1]
                if kind == "crash":
                    raise SimulatedCrash(f"crash before call {k} ({op})")
                context["gap"] = (_error(429, "TooManyRequestsException", "Rate exceeded")
                                  if kind == "throttle" else
                                  _error(409, "ResourceConflictException",
                                         "The operation cannot be performed at this time."))
                return
            context["gap"] = self._check(op, params)
        if op == "UpdateFunctionConfiguration" and self.before_update and not context["gap"]:
            hook, self.before_update = self.before_update, None
            hook(_function_key(params["FunctionName"]))
            with self._lock:
                context["gap"] = self._check(op, params)

    def _check(self, op: str, params: Dict[str, Any]):
        fn = _function_key(params.get("FunctionName", ""))
        if op in ("UpdateFunctionConfiguration", "PublishVersion") and self.pending.get(fn):
            return _error(409, "ResourceConflictException",
                          f"The operation cannot be performed at this time. An update is in "
                          f"progress for resource: {fn}")
        if op == "UpdateFunctionConfiguration":
            if params.get("RevisionId") and params["RevisionId"] != self.revision(fn):
                return _error(412, "PreconditionFailedException",
                              "The Revision Id provided does not match the latest Revision Id.")
            if len(params.get("Layers") or []) > ah.MAX_LAYERS:
                return _error(400, "InvalidParameterValueException",
                              "Cannot reference more than 5 layers.")
            variables = (params.get("Environment") or {}).get("Variables")
            if variables is not None and ah.environment_size(variables) > 4096:
                return _error(400, "InvalidParameterValueException",
                              "Lambda was unable to configure your environment variables "
                              "because the environment variables you have provided exceeded "
                              "the 4KB limit.")
        if op == "PublishVersion":
            fingerprint = self._fingerprint(fn)
            last = self.published.get(fn)
            if last and last[0] == fingerprint:
                existing = self.raw.get_function_configuration(FunctionName=fn,
                                                               Qualifier=last[1])
                return (SimpleNamespace(status_code=201, headers={}), existing)
        if op == "UpdateAlias":
            key = (fn, params["Name"])
            if params.get("RevisionId") and params["RevisionId"] != self.alias_revisions.get(key):
                return _error(412, "PreconditionFailedException",
                              "The Revision Id provided does not match the latest Revision Id.")
        if op == "DeleteFunction" and params.get("Qualifier"):
            for alias in self.raw.list_aliases(FunctionName=fn)["Aliases"]:
                if alias["FunctionVersion"] == params["Qualifier"]:
                    return _error(409, "ResourceConflictException",
                                  f"Unable to delete version because the following aliases "
                                  f"reference it: [{alias['Name']}]")
        return None

    def _fingerprint(self, fn: str) -> str:
        config = self.raw.get_function_configuration(FunctionName=fn)
        keep = {k: config.get(k) for k in ("Layers", "Environment", "Runtime", "Handler",
                                           "MemorySize", "Timeout", "CodeSha256")}
        return json.dumps(keep, sort_keys=True, default=str)

    def _short_circuit(self, context: Dict[str, Any], **_: Any):
        return context.pop("gap", None)

    def _after(self, http_response: Any, parsed: Dict[str, Any], model: Any,
               context: Dict[str, Any], **_: Any) -> None:
        if http_response.status_code >= 300:
            return
        op = model.name
        with self._lock:
            if op in ("CreateFunction", "UpdateFunctionConfiguration"):
                fn = _function_key(parsed["FunctionName"])
                if op == "UpdateFunctionConfiguration":
                    self.touch(fn)
                    if self.in_progress_polls:
                        self.pending[fn] = self.in_progress_polls
                        parsed["LastUpdateStatus"] = "InProgress"
                parsed["RevisionId"] = self.revision(fn)
            elif op in ("GetFunctionConfiguration", "GetFunction"):
                config = parsed.get("Configuration", parsed)
                if config.get("Version") == "$LATEST":
                    fn = _function_key(config["FunctionName"])
                    config["RevisionId"] = self.revision(fn)
                    if self.pending.get(fn):
                        self.pending[fn] -= 1
                        config["LastUpdateStatus"] = "InProgress"
                    else:
                        config["LastUpdateStatus"] = "Successful"
            elif op == "PublishVersion":
                fn = _function_key(parsed["FunctionName"])
                self.published[fn] = (self._fingerprint(fn), parsed["Version"])
                parsed.setdefault("State", "Active")
            elif op in ("CreateAlias", "UpdateAlias", "GetAlias"):
                fn = _function_key(parsed["AliasArn"].split(":")[6])
                key = (fn, parsed["Name"])
                if op != "GetAlias" or key not in self.alias_revisions:
                    self.alias_revisions[key] = str(uuid.uuid4())
                parsed["RevisionId"] = self.alias_revisions[key]


# --- Building realistic functions ---------------------------------------------------------------

def role_arn() -> str:
    iam = boto3.client("iam", region_name=REGION)
    try:
        return iam.get_role(RoleName="fn-role")["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        return iam.create_role(RoleName="fn-role", AssumeRolePolicyDocument="{}")["Role"]["Arn"]


def publish_layer(client: Any, name: str, runtimes=config.COMPATIBLE_RUNTIMES,
                  architectures=config.ARCHITECTURES) -> str:
    """A layer version listing, unless told otherwise, what the stack's chaos layer lists."""
    kwargs: Dict[str, Any] = {"LayerName": name, "Content": {"ZipFile": code_zip()}}
    if runtimes:
        kwargs["CompatibleRuntimes"] = list(runtimes)
    if architectures:
        kwargs["CompatibleArchitectures"] = list(architectures)
    return client.publish_layer_version(**kwargs)["LayerVersionArn"]


def make_function(client: Any, name: str, *, layers: List[str] = (), env: Dict[str, str] = None,
                  wrapper: Optional[str] = OWN_WRAPPER, runtime: str = "python3.12",
                  architecture: str = "x86_64", alias: Optional[str] = "live",
                  weights: Optional[Dict[str, float]] = None, tags: Dict[str, str] = None
                  ) -> str:
    """A function as teams run them: its own layers, variables and exec wrapper, two published
    versions and an alias sending 10 % of traffic to the older one (unless told otherwise)."""
    variables = dict(env if env is not None else {"TABLE_NAME": "orders", "LOG_LEVEL": "INFO",
                                                   "POWERTOOLS_SERVICE_NAME": name})
    if wrapper:
        variables["AWS_LAMBDA_EXEC_WRAPPER"] = wrapper
    client.create_function(
        FunctionName=name, Runtime=runtime, Role=role_arn(), Handler="app.handler",
        Code={"ZipFile": code_zip()}, Layers=list(layers), Architectures=[architecture],
        Environment={"Variables": variables}, Timeout=10, MemorySize=256,
        Tags=dict(tags if tags is not None else {"chaos:target": "sample-app"}))
    if alias:
        client.publish_version(FunctionName=name)
        client.update_function_configuration(
            FunctionName=name, Environment={"Variables": dict(variables, RELEASE="2")})
        client.publish_version(FunctionName=name)
        routing = weights if weights is not None else {"1": 0.1}
        extra = {"RoutingConfig": {"AdditionalVersionWeights": routing}} if routing else {}
        client.create_alias(FunctionName=name, Name=alias, FunctionVersion="2",
                            Description="production traffic", **extra)
    return client.get_function_configuration(FunctionName=name)["FunctionArn"]


def snapshot(client: Any, name: str) -> Dict[str, Any]:
    """Every field detach must restore: configuration, aliases (version and routing), versions.
    Volatile fields (LastModified, RevisionId, statuses) are left out; absent and empty
    routing/environment are the same thing to Lambda and are normalised."""
    config = client.get_function_configuration(FunctionName=name)
    volatile = {"LastModified", "RevisionId", "LastUpdateStatus", "LastUpdateStatusReason",
                "LastUpdateStatusReasonCode", "ResponseMetadata", "State", "StateReason",
                "StateReasonCode"}
    state = {k: v for k, v in config.items() if k not in volatile}
    state["Layers"] = [layer["Arn"] for layer in config.get("Layers") or []]
    state["Environment"] = dict((config.get("Environment") or {}).get("Variables") or {})
    state["Aliases"] = sorted(
        (a["Name"], a["FunctionVersion"], a.get("Description") or "",
         json.dumps((a.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {},
                    sort_keys=True))
        for a in client.list_aliases(FunctionName=name)["Aliases"])
    state["Versions"] = sorted(v["Version"] for v in
                               client.list_versions_by_function(FunctionName=name)["Versions"])
    return state


def fast_aws(client: Any, tagging: Any = None, **options: Any) -> ah.Aws:
    """The automation's AWS side for tests: no pacing, no backoff sleeps, polls without delay."""
    defaults = dict(max_requests_per_second=float("inf"), poll_delay_s=0, backoff_base_s=0.0,
                    sleep=lambda _s: None)
    defaults.update(options)
    return ah.Aws(client, tagging, **defaults)


def fault_params(**overrides: Any) -> Dict[str, Any]:
    """Parameters of a typical latency experiment, as FIS would pass them (strings)."""
    params = {"FaultType": "latency", "LatencyMilliseconds": "2000",
              "InvocationPercentage": "50", "Duration": "PT10M"}
    params.update(overrides)
    return params


class Lab:
    """One moto account: a hooked Lambda client, the chaos layer, the automation's Aws."""

    def __init__(self, in_progress_polls: int = 1, **aws_options: Any):
        self.lam = boto3.client("lambda", region_name=REGION)
        self.tagging = boto3.client("resourcegroupstaggingapi", region_name=REGION)
        self.gaps = MotoGaps(self.lam, in_progress_polls=in_progress_polls)
        self.layer = publish_layer(self.gaps.raw, "lambda-chaos")
        self.other_layers = [publish_layer(self.gaps.raw, name) for name in
                             ("otel-collector", "powertools", "secrets-cache", "sentry")]
        self.aws = fast_aws(self.lam, self.tagging, **aws_options)

    def function(self, name: str, **kwargs: Any) -> str:
        kwargs.setdefault("layers", self.other_layers[:2])
        return make_function(self.gaps.raw, name, **kwargs)  # set-up calls are not counted

    def params(self, **overrides: Any) -> Dict[str, Any]:
        return fault_params(LayerArn=self.layer, **overrides)

    def snapshot(self, name: str) -> Dict[str, Any]:
        return snapshot(self.gaps.raw, name)
