"""Render a report's HTML to a PNG with headless Chromium: `docs/report.png` is made by this.

    python -m local_emulator.experiment.screenshot reports/latest/report.json docs/report.png

Given a report.json, it draws the page anew (report.render_html: the same data, this version's
drawing); given a report.html, it takes that page as it is.

It loads the page once to measure its height (a script in the page writes `scrollHeight` into
the DOM, read back with `--dump-dom`), then takes one screenshot of the whole page at that
height (`--screenshot`, `--window-size`). `--hide SELECTOR` leaves parts out of the picture
(`make report-png` hides the whole-report text under the charts); `--max-height` crops.
Chromium is Debian's `chromium` (or `$CHROMIUM`); it runs with its own throw-away profile and
without the network.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import List, Optional, Sequence

__all__ = ["find_chromium", "dump_dom", "probe", "screenshot", "main"]

_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
          "--disable-background-networking", "--disable-component-update", "--disable-sync",
          "--hide-scrollbars", "--force-device-scale-factor=1")
_PROBE_ID = "__probe"


def find_chromium() -> Optional[str]:
    """The Chromium to run: `$CHROMIUM`, else the first of chromium, chromium-browser on PATH."""
    given = os.environ.get("CHROMIUM")
    if given:
        return given if Path(given).exists() else shutil.which(given)
    return next((found for found in (shutil.which(n) for n in ("chromium", "chromium-browser")) if found), None)


def _run(args: Sequence[str], timeout: float) -> str:
    browser = find_chromium()
    if browser is None:
        raise FileNotFoundError("no chromium found: install Debian's chromium (apt-get install chromium) "
                                "or set CHROMIUM to a Chromium or Chrome executable")
    with tempfile.TemporaryDirectory(prefix="report-chromium-") as profile:
        done = subprocess.run([browser, *_FLAGS, f"--user-data-dir={profile}", *args],
                              capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"chromium exited {done.returncode}: {done.stderr.strip()[-800:]}")
    return done.stdout


def _with(page: str, head: str = "", tail: str = "") -> str:
    """The page with `head` added to its <head> and `tail` at the end of its <body>."""
    if head:
        page = page.replace("</head>", head + "</head>", 1) if "</head>" in page else head + page
    if tail:
        page = page.replace("</body>", tail + "</body>", 1) if "</body>" in page else page + tail
    return page


def dump_dom(page: str, width: int, height: int = 900, timeout: float = 120.0) -> str:
    """The DOM Chromium serialises after loading `page` (HTML text) in a window of that size."""
    with tempfile.TemporaryDirectory(prefix="report-page-") as folder:
        path = Path(folder) / "page.html"
        path.write_text(page, encoding="utf-8")
        return _run([f"--window-size={width},{height}", "--dump-dom", path.as_uri()], timeout)


def probe(page: str, script: str, width: int, height: int = 900) -> object:
    """Run `script` (a JavaScript expression) at the end of the loaded page and return its value,
    JSON-encoded by the page into an element that --dump-dom brings back."""
    tail = (f"<pre id='{_PROBE_ID}'></pre><script>document.getElementById('{_PROBE_ID}').textContent="
            f"JSON.stringify((function(){{return {script};}})());</script>")
    dom = dump_dom(_with(page, tail=tail), width, height)
    found = re.search(rf'<pre id="{_PROBE_ID}">(.*?)</pre>', dom, re.S)
    if not found:
        raise RuntimeError("the page's probe wrote nothing (did the page load?)")
    text = found.group(1).replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", '"').replace("&amp;", "&")
    return json.loads(text)


def _page(source: Path) -> str:
    """The HTML of a report.html, or the page a report.json draws."""
    if source.suffix != ".json":
        return source.read_text(encoding="utf-8")
    from local_emulator.experiment.report import render_html
    report = json.loads(source.read_text(encoding="utf-8"))
    return render_html(report, report.get("requests") or [])


def screenshot(report_html: Path, out_png: Path, width: int = 1400, hide: Sequence[str] = (),
               max_height: Optional[int] = None) -> Path:
    """`report_html` as one PNG of its whole height (at most `max_height`), `hide` left out."""
    page = _page(Path(report_html))
    if hide:
        page = _with(page, head="<style>" + ",".join(hide) + "{display:none !important}</style>")
    height = int(probe(page, "Math.ceil(document.documentElement.scrollHeight)", width))
    if max_height:
        height = min(height, max_height)
    out = Path(out_png).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="report-page-") as folder:
        path = Path(folder) / "page.html"
        path.write_text(page, encoding="utf-8")
        _run([f"--window-size={width},{height}", f"--screenshot={out}", path.as_uri()], 180.0)
    if not out.exists():
        raise RuntimeError(f"chromium wrote no screenshot to {out}")
    return out


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local_emulator.experiment.screenshot",
                                     description="Render a report's HTML to a PNG with headless Chromium.")
    parser.add_argument("report_html", type=Path, help="a report.html, or a report.json to draw anew")
    parser.add_argument("out_png", type=Path)
    parser.add_argument("--width", type=int, default=1400, help="window width in px (default 1400)")
    parser.add_argument("--hide", action="append", default=[], metavar="SELECTOR",
                        help="a CSS selector of what to leave out (repeatable)")
    parser.add_argument("--max-height", type=int, default=None, help="crop the picture to this height")
    args = parser.parse_args(argv)
    try:
        out = screenshot(args.report_html, args.out_png, args.width, args.hide, args.max_height)
    except (FileNotFoundError, RuntimeError, subprocess.TimeoutExpired) as exc:
        print(f"screenshot: {exc}", file=sys.stderr)
        return 2
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
