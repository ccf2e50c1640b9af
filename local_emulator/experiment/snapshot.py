"""Every function's configuration before and after a run, and exactly what differs.

"Put everything back" is the promise the toolkit makes to platform teams, so the local run
checks it on every function of every region: the configuration (layers and their order,
environment variables, handler, memory, timeout, …), the tags, and each alias's version and
weighted routing. Fields that only record *that* a change happened, not what the function is —
`LastModified`, `RevisionId`, `LastUpdateStatus*`, `State*` — are left out of the comparison,
as detaching necessarily updates them.

An organisation-wide run changes functions in several accounts, so the snapshot can cover
several: its keys are then `ACCOUNT/REGION/NAME`; a one-account snapshot keeps `REGION/NAME`,
which is how a single-account run's report names a function.
"""
from __future__ import annotations

import json
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from local_emulator.aws.accounts import account_client

__all__ = ["capture", "differences", "split_key", "VOLATILE_FIELDS"]

VOLATILE_FIELDS = frozenset({"LastModified", "RevisionId", "LastUpdateStatus",
                             "LastUpdateStatusReason", "LastUpdateStatusReasonCode", "State",
                             "StateReason", "StateReasonCode", "ResponseMetadata"})


def capture(aws: Any, regions: Sequence[str],
            accounts: Optional[Sequence[str]] = None) -> Dict[str, Dict[str, Any]]:
    """`{"region/name": {"configuration", "tags", "aliases"}}` for every function of every
    region of the default account; with `accounts`, of every region of each of them, keyed
    `"account/region/name"`."""
    snapshot: Dict[str, Dict[str, Any]] = {}
    for account in accounts or [None]:
        for region in regions:
            client = aws.client("lambda", region) if account is None else \
                account_client(aws, account, "lambda", region)
            prefix = region if account is None else f"{account}/{region}"
            for name, entry in _functions(client):
                snapshot[f"{prefix}/{name}"] = entry
    return snapshot


def split_key(key: str) -> Tuple[str, str, str]:
    """(account, region, name) of a snapshot key; the account is "" in a one-account snapshot."""
    parts = key.split("/", 2)
    return ("", parts[0], parts[1]) if len(parts) == 2 else (parts[0], parts[1], parts[2])


def _functions(client: Any):
    """(name, entry) of every function one Lambda client sees."""
    for page in client.get_paginator("list_functions").paginate():
        for function in page["Functions"]:
            name = function["FunctionName"]
            configuration = client.get_function_configuration(FunctionName=name)
            aliases = client.list_aliases(FunctionName=name).get("Aliases", [])
            yield name, {
                "configuration": {k: v for k, v in configuration.items()
                                  if k not in VOLATILE_FIELDS},
                "tags": client.list_tags(Resource=function["FunctionArn"]).get("Tags", {}),
                "aliases": {a["Name"]: {"FunctionVersion": a["FunctionVersion"],
                                        "RoutingConfig": a.get("RoutingConfig") or {}}
                            for a in aliases},
            }


def differences(before: Mapping[str, Any], after: Mapping[str, Any]) -> List[str]:
    """Human-readable differences, one line each, e.g.
    `us-east-1/hello: configuration.Environment.Variables.CHAOS_FAULT_TYPE: absent → 'latency'`."""
    lines: List[str] = []
    for key in sorted(set(before) | set(after)):
        if key not in after:
            lines.append(f"{key}: function deleted during the run")
        elif key not in before:
            lines.append(f"{key}: function created during the run")
        else:
            _walk(key, "", before[key], after[key], lines)
    return lines


def _walk(function: str, path: str, old: Any, new: Any, lines: List[str]) -> None:
    if isinstance(old, dict) and isinstance(new, dict):
        for name in sorted(set(old) | set(new)):
            where = f"{path}.{name}" if path else name
            if name not in new:
                lines.append(f"{function}: {where}: {_show(old[name])} → absent")
            elif name not in old:
                lines.append(f"{function}: {where}: absent → {_show(new[name])}")
            else:
                _walk(function, where, old[name], new[name], lines)
    elif old != new:
        lines.append(f"{function}: {path}: {_show(old)} → {_show(new)}")


def _show(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 200 else text[:197] + "..."
