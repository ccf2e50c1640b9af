"""Per account and Region: what an organisation-wide run did in each location.

The organisation document runs the fault document once per location to attach and once to
detach (aws:executeAutomation with TargetLocations; a cancel hands a detach to each location
instead). The experiment's automation service keeps every such child execution, with the
account and Region it ran in and the ChaosMode it was given; each child's ApplyBatch steps
report how many functions they changed (TargetCount). Beside that, the snapshot says whether
every function of the location came back exactly. One row per location, template seconds.
"""
from __future__ import annotations

import html
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence

from local_emulator.experiment.snapshot import split_key

__all__ = ["location_rows", "render_locations", "locations_html"]

# The fault document's steps that change functions: its batches, and the roll-back's.
_APPLY_STEP, _ROLL_BACK_STEP = "ApplyBatch", "RollBackBatch"
_MODES = {"ENABLED": "attach", "DISABLED": "detach"}


def location_rows(executions: Iterable[Any], snapshot: Mapping[str, Any],
                  differences: Sequence[str]) -> List[Dict[str, Any]]:
    """One row per account and Region: `{"account", "region", "attach", "detach",
    "functions", "changed", "restored"}`, `attach`/`detach` the last child of that mode there
    (None if none ran) as `{"execution_id", "status", "functions", "rolled_back", "start",
    "end"}`. `executions` are the AutomationService's (ssm_runner.AutomationExecution);
    `snapshot` and `differences` the multi-account snapshot.capture and snapshot.differences."""
    rows: Dict[tuple, Dict[str, Any]] = {}
    for key in snapshot:
        account, region, _ = split_key(key)
        _row(rows, account, region)["functions"] += 1
    changed = {line.split(": ", 1)[0] for line in differences}
    for key in changed:
        account, region, _ = split_key(key)
        _row(rows, account, region)["changed"] += 1
    for execution in sorted(executions, key=lambda e: e.start_time or 0.0):
        mode = _MODES.get(str((execution.parameters or {}).get("ChaosMode", "")).upper())
        if mode:
            _row(rows, execution.account_id, execution.region)[mode] = _child(execution)
    for row in rows.values():
        row["restored"] = row["changed"] == 0
    return [rows[where] for where in sorted(rows)]


def _row(rows: Dict[tuple, Dict[str, Any]], account: str, region: str) -> Dict[str, Any]:
    return rows.setdefault((account, region), {"account": account, "region": region,
                                               "attach": None, "detach": None,
                                               "functions": 0, "changed": 0})


def _child(execution: Any) -> Dict[str, Any]:
    """A child execution as the report shows it: status, functions changed, when it ran."""
    return {"execution_id": execution.execution_id, "status": execution.status,
            "functions": _changed(execution.steps, _APPLY_STEP),
            "rolled_back": _changed(execution.steps, _ROLL_BACK_STEP),
            "start": _round(execution.start_time), "end": _round(execution.end_time)}


def _changed(steps: Sequence[Any], name: str) -> int:
    """Functions the successful batches of step `name` changed (their TargetCount outputs)."""
    return sum(int(step.outputs.get("TargetCount") or 0) for step in steps
               if step.name == name and step.status == "Success")


def _round(value: Optional[float]) -> Optional[float]:
    return None if value is None else round(value, 1)


_COLUMNS = ("account", "region", "attach", "attached", "returned", "detach", "detached",
            "returned", "restored")


def _cells(row: Mapping[str, Any]) -> List[str]:
    """The row's cells under _COLUMNS, in words."""
    cells = [row["account"], row["region"]]
    for mode, verb in (("attach", "attached"), ("detach", "detached")):
        child = row.get(mode)
        if child is None:
            cells += ["—", "", ""]
            continue
        count = str(child["functions"]) + (f" (rolled back {child['rolled_back']})"
                                           if child.get("rolled_back") else "")
        cells += [child["status"], count,
                  "still running" if child.get("end") is None else f"{child['end']:g} s"]
    targeted = row.get("attach") is not None or row.get("detach") is not None
    noun = f"{row['functions']} function{'s' if row['functions'] != 1 else ''}"
    cells.append((f"yes, all {noun}" if row["restored"] else
                  f"NO: {row['changed']} of {noun} differ")
                 + ("" if targeted else " (not a target location)"))
    return cells


def render_locations(rows: Sequence[Mapping[str, Any]]) -> List[str]:
    """The terminal's per-location table ([] for a run without locations): each account and
    Region, its attach and detach children's status, functions changed and when each child
    returned (template s), and whether every function there was restored exactly."""
    if not rows:
        return []
    table = [list(_COLUMNS)] + [_cells(row) for row in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(_COLUMNS))]
    lines = ["Per account and Region (each location's child automations; returned = template s)"]
    for line in table:
        lines.append("  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip())
    return lines + [""]


def locations_html(rows: Sequence[Mapping[str, Any]]) -> List[str]:
    """The same table for the HTML report ([] for a run without locations)."""
    if not rows:
        return []
    head = "".join(f"<th>{html.escape(c)}</th>" for c in _COLUMNS)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in _cells(row)) + "</tr>"
                   for row in rows)
    return ["<h2>Per account and Region</h2>",
            "<p class='what'>Each location's child automations (attach, detach), the functions "
            "each changed, when each returned (template s), and whether every function of the "
            "location was restored exactly.</p>",
            f"<table class='locations'><tr>{head}</tr>{body}</table>"]
