"""Write a report's dashboard charts as standalone SVG files (local_emulator/README.md's pictures).

    python -m local_emulator.experiment.export_charts reports/latest/report.json local_emulator/docs \
        latency=Latency regions="Requests served" health=HealthCheckStatus errors="Status codes"

Each NAME=WORDS writes `report-NAME.svg`: the first metric widget (first dashboard first) whose
title contains WORDS, drawn as the HTML report draws it, from report.json alone.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Dict, List, Mapping, Optional

from local_emulator.experiment.dashboard_html import chart_svg
from local_emulator.experiment.report import fault_bands

__all__ = ["export_charts", "main"]


def export_charts(report: Mapping[str, object], out_dir: Path, wanted: Mapping[str, str]) -> Dict[str, Path]:
    """NAME → the file written, for each NAME whose WORDS a widget's title contains."""
    bands = fault_bands(report)
    widgets = [w for d in report.get("dashboards") or [] for w in d.get("widgets", [])
               if w.get("type") == "metric" and not w.get("error")]
    written = {}
    for name, words in wanted.items():
        widget = next((w for w in widgets if words.lower() in (w.get("title") or "").lower()), None)
        if widget is None:
            continue
        path = Path(out_dir) / f"report-{name}.svg"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(chart_svg(widget, report, bands, standalone=True), encoding="utf-8")
        written[name] = path
    return written


def main(argv: Optional[List[str]] = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) < 3 or any("=" not in a for a in args[2:]):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    report = json.loads(Path(args[0]).read_text(encoding="utf-8"))
    wanted = dict(a.split("=", 1) for a in args[2:])
    written = export_charts(report, Path(args[1]), wanted)
    for name in wanted:
        print(written[name] if name in written else f"{name}: no metric widget's title contains {wanted[name]!r}")
    return 0 if len(written) == len(wanted) else 1


if __name__ == "__main__":
    sys.exit(main())
