"""The report's HTML in a real headless browser (Debian's chromium): readable, nothing cut off.

Each page is loaded at 1000 and 1400 px wide with a script at its end that measures what the
browser laid out (read back with --dump-dom): the document's width against the viewport's,
every text's font size as computed and as drawn (an SVG's text scales with its viewBox), every
SVG text inside its chart, and each chart's y-axis labels. Skipped, saying why, where no
chromium is installed.
"""
import functools
import json
from pathlib import Path

import pytest

from local_emulator.experiment.report import render_html
from local_emulator.experiment.screenshot import find_chromium, probe, screenshot
from tests.test_report import FakeCloudWatch, OUTAGE_EXPERIMENT, _outage_records, _report, dashboard_report

pytestmark = pytest.mark.skipif(
    find_chromium() is None,
    reason="no chromium: install Debian's chromium (apt-get install chromium) or set CHROMIUM")

ROOT = Path(__file__).resolve().parents[1]
WIDTHS = (1000, 1400)
MIN_FONT_PX = 11

# What the page's script measures; one JSON object back.
MEASURE = r"""(function () {
  const texts = [...document.querySelectorAll('body *')].filter(e =>
      e.tagName.toLowerCase() !== 'title' && e.getClientRects().length &&
      [...e.childNodes].some(n => n.nodeType === 3 && n.textContent.trim()));
  const fonts = texts.map(e => {
    const size = parseFloat(getComputedStyle(e).fontSize);
    const m = e instanceof SVGElement && e.getScreenCTM ? e.getScreenCTM() : null;
    return [e.tagName, e.textContent.trim().slice(0, 50), size, m ? size * Math.hypot(m.a, m.b) : size];
  });
  const outside = [];
  for (const svg of document.querySelectorAll('svg.chart')) {
    const box = svg.getBoundingClientRect();
    for (const t of svg.querySelectorAll('text')) {
      const r = t.getBoundingClientRect();
      if (r.left < box.left - 1 || r.right > box.right + 1 || r.top < box.top - 1 || r.bottom > box.bottom + 1)
        outside.push(t.textContent.slice(0, 50));
    }
  }
  const wide = [...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right >
      document.documentElement.clientWidth + 1).map(e => e.tagName + ': ' + e.textContent.trim().slice(0, 50));
  return {scrollWidth: document.documentElement.scrollWidth, innerWidth: window.innerWidth,
          fonts: fonts, outside: outside, wide: wide.slice(0, 10),
          charts: [...document.querySelectorAll('svg.chart')].map(svg => ({
            width: svg.getBoundingClientRect().width,
            column: svg.parentElement.getBoundingClientRect().width,
            ticks: [...svg.querySelectorAll('.y-tick')].map(t => t.textContent)}))};
})()"""


def _pages():
    """Realistic reports: the sample app's dashboard from the emulator (synthetic answers), a
    run without a dashboard (charts from the records), a run stopped by its alarm that left the
    fault attached (its label runs to the chart's end), and the last real run's report.json when
    there is one."""
    report, records = dashboard_report()
    pages = {"dashboard": render_html(report, records)}
    sample = _sample_app_report()
    if sample:
        pages["sample-app"] = render_html(*sample)
    records = _outage_records()
    pages["records"] = render_html(_report(records), records)
    stopped = {"state": "stopped", "reason": "Stop condition hello-5xx entered ALARM state",
               "actions": {"Outage": dict(OUTAGE_EXPERIMENT["actions"]["Outage"], automation={"steps": [
                   {"name": "Attach", "status": "Success", "start": 250.3, "end": 262.1},
                   {"name": "Wait", "status": "Cancelled", "start": 262.1, "end": 280}]})}}
    pages["stopped"] = render_html(_report(records, experiment=stopped), records)
    real = ROOT / "reports/latest/report.json"
    if real.exists():
        saved = json.loads(real.read_text())
        if "dashboards" in saved:  # written by this report, not an older one
            pages["real"] = render_html(saved, saved.get("requests") or [])
    return pages


def _sample_app_report():
    """The sample app's own two dashboards (sample_app/dashboard.py), 14 widgets each, answered
    by the fake CloudWatch; None before that module exists."""
    try:
        from sample_app import dashboard
    except ImportError:
        return None
    alarm = dashboard.StopAlarm(
        arn="arn:aws:cloudwatch:us-east-1:123456789012:alarm:hello-5xx", namespace="AWS/ApiGateway",
        metric="5XXError", dimensions=(("ApiName", "lambda-chaos-local-sample-app-api"),),
        stat="Average", period=60, threshold=0.5)
    regions = ["us-east-1", "eu-west-1"]
    clients = {region: FakeCloudWatch(region, {dashboard.dashboard_name("lambda-chaos-local", region):
                                               dashboard.dashboard_body(
        region=region, app_regions=regions, health_checks={"us-east-1": "hc-us", "eu-west-1": "hc-eu"},
        functions=["lambda-chaos-local-sample-app-HelloFunction-UAQQZKEORC5B",
                   "lambda-chaos-local-sample-app-HealthFunction-7YH2PLQ0XK1M"], alarm=alarm)})
               for region in regions}
    return dashboard_report(clients)


PAGES = _pages() if find_chromium() else {}


@functools.lru_cache(maxsize=None)
def _measured(name, width):
    return probe(PAGES[name], MEASURE, width)


def _cases():
    return [pytest.param(name, width, id=f"{name}-{width}px") for name in PAGES or ["dashboard"]
            for width in WIDTHS]


@pytest.mark.parametrize("name, width", _cases())
def test_nothing_overflows_the_viewport(name, width):
    found = _measured(name, width)
    assert found["innerWidth"] == width
    assert found["scrollWidth"] <= found["innerWidth"], found["wide"]


@pytest.mark.parametrize("name, width", _cases())
def test_every_text_is_at_least_11_px_as_computed_and_as_drawn(name, width):
    small = [f for f in _measured(name, width)["fonts"] if f[2] < MIN_FONT_PX or f[3] < MIN_FONT_PX - 0.01]
    assert not small, small[:10]


@pytest.mark.parametrize("name, width", _cases())
def test_every_chart_is_full_width_with_its_y_axis_labelled_from_zero(name, width):
    charts = _measured(name, width)["charts"]
    assert charts
    for chart in charts:
        assert chart["width"] >= chart["column"] - 1  # the whole content column
        assert chart["ticks"] and chart["ticks"][0] == "0" and len(chart["ticks"]) >= 3, chart["ticks"]


@pytest.mark.parametrize("name, width", _cases())
def test_no_chart_text_is_cut_off_at_the_charts_edges(name, width):
    assert _measured(name, width)["outside"] == []


def test_the_measurements_see_an_overflow_and_a_small_font_when_there_is_one():
    """The checks above can fail: a table that does not wrap and a 9 px text are caught."""
    page = PAGES["dashboard"].replace("white-space:pre-wrap", "white-space:pre").replace(
        "</body>", "<p style='font-size:9px'>tiny</p></body>")
    found = probe(page, MEASURE, 1000)
    assert found["scrollWidth"] > found["innerWidth"]
    assert any(f[1] == "tiny" for f in found["fonts"] if f[2] < MIN_FONT_PX)


def test_the_report_renders_to_a_png(tmp_path):
    source = tmp_path / "report.html"
    source.write_text(PAGES["dashboard"], encoding="utf-8")
    out = screenshot(source, tmp_path / "report.png", width=1400, hide=["pre"])
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert width == 1400 and height > 2000  # the whole page, every chart of the dashboard


def test_a_report_json_is_drawn_anew_into_the_png(tmp_path):
    report, records = dashboard_report()
    source = tmp_path / "report.json"
    source.write_text(json.dumps({**report, "requests": records}, default=str))
    out = screenshot(source, tmp_path / "report.png", width=1000, hide=["div.whole-report"])
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and int.from_bytes(data[16:20], "big") == 1000
