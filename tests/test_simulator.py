"""The customer simulator: open loop, honest latency, valid EMF, the blog's metrics, its config."""
import ast
import datetime as dt
import http.server
import json
import sys
import threading
import time

import pytest

from sample_app import simulator
from sample_app.simulator import (RESERVE_S, CustomerSimulator, Outcome, RealClock, SimulatorConfig,
                                  SimulatorConfigError, emf_line, handler, served_region, simulate,
                                  status_metric)

# CloudWatch's units (the EMF spec's MetricDefinition.Unit takes these).
UNITS = {"Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes", "Gigabytes",
         "Terabytes", "Bits", "Kilobits", "Megabits", "Gigabits", "Terabits", "Percent", "Count",
         "Bytes/Second", "Kilobytes/Second", "Megabytes/Second", "Gigabytes/Second",
         "Terabytes/Second", "Bits/Second", "Kilobits/Second", "Megabits/Second",
         "Gigabits/Second", "Terabits/Second", "Count/Second", "None"}
WALL_START = dt.datetime(2026, 12, 2, 6, 0, tzinfo=dt.timezone.utc)


class InstantClock:
    """A clock whose sleeps take no real time: schedules run at once, deterministically."""

    def __init__(self):
        self.t = 0.0
        self._lock = threading.Lock()

    def now(self):
        return self.t

    def sleep_until(self, instant, cancel=None):
        with self._lock:
            self.t = max(self.t, instant)
        return bool(cancel and cancel.is_set())

    def wall(self, instant=None):
        return WALL_START + dt.timedelta(seconds=self.t if instant is None else instant)


def valid_emf(line):
    """The EMF document in `line`, checked against the spec's structure; raises if invalid."""
    doc = json.loads(line)
    meta = doc["_aws"]
    assert isinstance(meta["Timestamp"], int) and meta["Timestamp"] > 0
    assert isinstance(meta["CloudWatchMetrics"], list) and meta["CloudWatchMetrics"]
    for directive in meta["CloudWatchMetrics"]:
        assert set(directive) <= {"Namespace", "Dimensions", "Metrics"}
        assert isinstance(directive["Namespace"], str) and directive["Namespace"]
        for dimension_set in directive["Dimensions"]:
            assert len(dimension_set) <= 30
            for key in dimension_set:
                assert isinstance(doc[key], str), key  # every dimension key is a root member
        assert 0 < len(directive["Metrics"]) <= 100
        for metric in directive["Metrics"]:
            assert set(metric) <= {"Name", "Unit", "StorageResolution"}
            assert metric["Unit"] in UNITS
            value = doc[metric["Name"]]  # every metric is a root member, a number (or ≤ 100)
            values = value if isinstance(value, list) else [value]
            assert 0 < len(values) <= 100
            assert all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
    return doc


def metric_names(doc):
    return {m["Name"]: m["Unit"] for m in doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]}


def _collect():
    lines = []
    return lines, lines.append


# --- open loop ---------------------------------------------------------------------------

def test_open_loop_holds_the_rate_under_a_slow_server_and_latency_grows_from_the_schedule():
    def slow(path):
        time.sleep(0.05)
        return 200, "Hello from region us-east-1"
    lines, write = _collect()
    # 1 worker serves 20 requests/s at most; 100/s are due: a backlog the latency must show.
    sim = CustomerSimulator(slow, RealClock(), rate_per_s=100, write=write, workers=1)
    assert sim.run(0.3) == "run seconds elapsed"
    assert sim.scheduled == 30  # every request was sent on schedule, however slow the server
    assert sim.wait(20)
    by_schedule = sorted(map(json.loads, lines), key=lambda d: d["_aws"]["Timestamp"])
    latencies = [d["Latency"] for d in by_schedule]
    assert len(latencies) == 30 and latencies[0] >= 50
    # The last was due 0.29 s in and answered after the 29 before it (~1.45 s): ~1.2 s late.
    assert latencies[-1] > latencies[0] + 600
    sim.close()


def test_the_pool_is_sized_for_every_request_to_hang_until_the_timeout():
    sim = CustomerSimulator(lambda p: (200, ""), RealClock(), rate_per_s=2, paths=["/a", "/b"])
    assert sim.workers == 2 * 2 * 30 + 2
    sim.close()


def test_run_seconds_are_honoured_and_paths_share_each_round():
    lines, write = _collect()
    clock = InstantClock()
    sim = CustomerSimulator(lambda p: (200, f"Hello from region eu-west-1 {p}"), clock,
                            rate_per_s=2, paths=["/hello", "/health"], write=write)
    assert sim.run(60) == "run seconds elapsed"
    assert sim.wait(10) and sim.scheduled == len(lines) == 240  # 2 per second to each path
    docs = [json.loads(line) for line in lines]
    assert {d["Api"] for d in docs} == {"/hello", "/health"}
    stamps = sorted(d["_aws"]["Timestamp"] for d in docs)
    start_ms = int(WALL_START.timestamp() * 1000)
    assert stamps[0] == start_ms and stamps[1] == start_ms + 250 and stamps[-1] == start_ms + 59750
    sim.close()


def test_a_cancel_stops_scheduling():
    cancel = threading.Event()
    cancel.set()
    sim = CustomerSimulator(lambda p: (200, ""), InstantClock(), rate_per_s=5, write=lambda line: None)
    assert sim.run(cancel=cancel) == "cancelled" and sim.scheduled == 0
    sim.close()


def test_an_invocation_stops_early_when_its_remaining_time_gets_short():
    clock = InstantClock()
    lines, write = _collect()
    config = SimulatorConfig(url="https://api.example.com", rate_per_s=2, run_seconds=600)
    # 5 s of load fit before the remaining time reaches the reserve for the last requests.
    summary = simulate(config, send=lambda p: (200, "ok"), clock=clock, write=write,
                       remaining_ms=lambda: int((RESERVE_S + 5 - clock.now()) * 1000))
    assert summary["stopped"] == "remaining time short"
    assert lines[0].startswith("[simulator] the invocation has 38 s left: it stops scheduling "
                               "with 33 s left, before 600 run seconds; give the function a "
                               "timeout of at least 635 s")
    assert summary["scheduled"] == summary["finished"] == len(lines[1:]) == 10


# --- the blog's metrics, as EMF ----------------------------------------------------------

def test_every_line_is_valid_emf_with_the_api_dimension_and_the_blogs_metrics():
    lines, write = _collect()
    clock = InstantClock()
    sim = CustomerSimulator(lambda p: (200, '{"message": "Hello from region eu-west-1"}'), clock,
                            rate_per_s=4, paths=["/hello"], write=write, namespace="LoadGenTest")
    sim.run(1)
    sim.wait(10)
    docs = [valid_emf(line) for line in lines]
    assert len(docs) == 4
    doc = min(docs, key=lambda d: d["_aws"]["Timestamp"])
    directive = doc["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == "LoadGenTest" and directive["Dimensions"] == [["Api"]]
    assert doc["Api"] == "/hello"
    assert metric_names(doc) == {"status_2xx": "Count", "status_4xx": "Count", "status_5xx": "Count",
                                 "region_eu-west-1": "Count", "Latency": "Milliseconds"}
    assert (doc["status_2xx"], doc["status_4xx"], doc["status_5xx"], doc["region_eu-west-1"]) == (1, 0, 0, 1)
    assert doc["_aws"]["Timestamp"] == int(WALL_START.timestamp() * 1000)  # the injected clock's
    sim.close()


@pytest.mark.parametrize("status, metric", [(200, "status_2xx"), (204, "status_2xx"),
                                            (404, "status_4xx"), (429, "status_4xx"),
                                            (500, "status_5xx"), (504, "status_5xx"),
                                            (302, "status_5xx")])
def test_status_classes_are_the_blogs_and_the_line_carries_one_of_each(status, metric):
    assert status_metric(status) == metric
    doc = valid_emf(emf_line(Outcome("/hello", 0.0, status, 12.5, None), "LoadGen", 1))
    assert {k: doc[k] for k in ("status_2xx", "status_4xx", "status_5xx")} == {
        k: int(k == metric) for k in ("status_2xx", "status_4xx", "status_5xx")}
    assert not any(k.startswith("region_") for k in doc)


def test_served_region_is_read_from_a_2xx_body_only():
    assert served_region(200, '{"message": "Hello from region eu-west-1"}') == "eu-west-1"
    assert served_region(200, "Hello from region ap-southeast-2") == "ap-southeast-2"
    assert served_region(504, "Hello from region eu-west-1") is None
    assert served_region(200, "hello") is None


def test_a_transport_failure_is_a_5xx_with_its_cause():
    def refused(path):
        raise ConnectionRefusedError("connection refused")
    lines, write = _collect()
    sim = CustomerSimulator(refused, InstantClock(), rate_per_s=1, write=write)
    outcome = sim.request("/hello", 0.0)
    assert (outcome.status, outcome.cause) == (502, "ConnectionRefusedError: connection refused")
    doc = valid_emf(lines[0])
    assert (doc["status_5xx"], doc["cause"]) == (1, "ConnectionRefusedError: connection refused")
    sim.close()


def test_an_apis_own_cause_is_kept():
    sim = CustomerSimulator(lambda p: (504, "", "integration timeout (29 s)"), InstantClock(),
                            rate_per_s=1, write=lambda line: None)
    assert sim.request("/hello", 0.0).cause == "integration timeout (29 s)"
    sim.close()


# --- configuration -----------------------------------------------------------------------

def test_defaults_apply_when_only_the_url_is_set():
    config = SimulatorConfig.from_environ({"SIMULATOR_URL": "https://api.example.com/prod/"})
    assert config == SimulatorConfig("https://api.example.com/prod", ("/hello",), 2.0, 60.0, "LoadGen")
    assert config == SimulatorConfig("https://api.example.com/prod")  # SETTINGS agree with the fields


def test_the_event_overrides_rate_run_seconds_and_paths():
    config = SimulatorConfig.from_environ({"SIMULATOR_URL": "https://api.example.com"})
    changed = config.overridden_by({"rate_per_s": 10, "run_seconds": "30", "paths": "/a, /b",
                                    "source": "aws.events"})
    assert (changed.rate_per_s, changed.run_seconds, changed.paths) == (10.0, 30.0, ("/a", "/b"))
    assert config.overridden_by({"paths": ["/c"]}).paths == ("/c",)
    assert config.overridden_by(None) == config


@pytest.mark.parametrize("environ, message", [
    ({}, r"SIMULATOR_URL is not set; set it to the base URL customers call"),
    ({"SIMULATOR_URL": "ftp://api.example.com"}, r"SIMULATOR_URL='ftp://api.example.com' is not an http\(s\) base URL"),
    ({"SIMULATOR_URL": "api.example.com/prod"}, r"SIMULATOR_URL='api.example.com/prod' is not an http\(s\)"),
    ({"SIMULATOR_RATE_PER_S": "0"}, r"SIMULATOR_RATE_PER_S='0' is not a number > 0; set it to requests per second to each path, e.g. 2"),
    ({"SIMULATOR_RATE_PER_S": "fast"}, r"SIMULATOR_RATE_PER_S='fast' is not a number > 0"),
    ({"SIMULATOR_RATE_PER_S": "nan"}, r"SIMULATOR_RATE_PER_S='nan' is not a number > 0"),
    ({"SIMULATOR_RUN_SECONDS": "-5"}, r"SIMULATOR_RUN_SECONDS='-5' is not a number > 0 and ≤ 900; set it to the seconds"),
    ({"SIMULATOR_RUN_SECONDS": "3600"}, r"SIMULATOR_RUN_SECONDS='3600' is not a number > 0 and ≤ 900"),
    ({"SIMULATOR_PATHS": "hello"}, r"SIMULATOR_PATHS='hello': 'hello' is not a path starting with '/'; write e.g. /hello"),
    ({"SIMULATOR_PATHS": " , "}, r"SIMULATOR_PATHS=' , ': names no path"),
    ({"SIMULATOR_NAMESPACE": "AWS/Lambda"}, r"SIMULATOR_NAMESPACE='AWS/Lambda' is not a custom namespace"),
])
def test_a_bad_environment_value_is_refused_naming_it_and_the_fix(environ, message):
    environ = {"SIMULATOR_URL": "https://api.example.com", **environ} if environ else environ
    with pytest.raises(SimulatorConfigError, match=message):
        SimulatorConfig.from_environ(environ)


@pytest.mark.parametrize("event, message", [
    ({"rate_per_s": 0}, r"event key rate_per_s=0 is not a number > 0"),
    ({"rate_per_s": True}, r"event key rate_per_s=True is not a number > 0"),
    ({"run_seconds": "soon"}, r"event key run_seconds='soon' is not a number > 0 and ≤ 900"),
    ({"paths": 3}, r"event key paths=3 is not a list of paths"),
    ({"paths": []}, r"event key paths=\[\]: names no path"),
])
def test_a_bad_event_key_is_refused_naming_it(event, message):
    config = SimulatorConfig("https://api.example.com")
    with pytest.raises(SimulatorConfigError, match=message):
        config.overridden_by(event)


def test_the_docstrings_table_names_every_setting_with_its_default():
    doc = simulator.__doc__
    for setting in simulator.SETTINGS:
        row = next(line for line in doc.splitlines() if line.startswith(f"| `{setting.name}`"))
        assert (setting.default or "required") in row, row
        if setting.event_key:
            assert f"`{setting.event_key}`" in row, row


def test_the_module_imports_only_the_standard_library():
    tree = ast.parse(open(simulator.__file__).read())
    names = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    names |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level == 0}
    assert names - {"__future__"} <= set(sys.stdlib_module_names), names


# --- the Lambda handler against a real HTTP server ---------------------------------------

class _App(http.server.BaseHTTPRequestHandler):
    seen = []

    def do_GET(self):  # noqa: N802 - http.server's name
        _App.seen.append(self.path)
        status, body = {"/prod/hello": (200, '{"message":"Hello from region eu-west-1"}'),
                        "/prod/boom": (500, "Internal server error")}.get(self.path, (404, "Not found"))
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def app_url():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _App)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _App.seen = []
    yield f"http://127.0.0.1:{server.server_address[1]}/prod"
    server.shutdown()
    server.server_close()


class _Context:
    def __init__(self, budget_ms):
        self.deadline = time.monotonic() + budget_ms / 1000

    def get_remaining_time_in_millis(self):
        return int((self.deadline - time.monotonic()) * 1000)


def test_the_handler_calls_a_real_server_and_prints_one_emf_line_per_request(app_url, monkeypatch, capsys):
    for name, value in {"SIMULATOR_URL": app_url, "SIMULATOR_PATHS": "/hello,/missing,/boom",
                        "SIMULATOR_RATE_PER_S": "20", "SIMULATOR_RUN_SECONDS": "0.5",
                        "AWS_LAMBDA_FUNCTION_NAME": "simulator", "NO_PROXY": "127.0.0.1"}.items():
        monkeypatch.setenv(name, value)
    summary = handler({"source": "aws.events"}, _Context(120_000))
    docs = [valid_emf(line) for line in capsys.readouterr().out.splitlines()]
    assert summary["stopped"] == "run seconds elapsed"
    assert summary["scheduled"] == summary["finished"] == len(docs) == 30  # 20/s × 0.5 s × 3 paths
    assert (summary["status_2xx"], summary["status_4xx"], summary["status_5xx"]) == (10, 10, 10)
    assert sorted(set(_App.seen)) == ["/prod/boom", "/prod/hello", "/prod/missing"]
    by_api = {d["Api"]: d for d in docs}
    assert by_api["/hello"]["region_eu-west-1"] == by_api["/hello"]["status_2xx"] == 1
    assert by_api["/missing"]["status_4xx"] == 1 and by_api["/missing"]["status"] == 404
    assert by_api["/boom"]["status_5xx"] == 1 and "region_eu-west-1" not in by_api["/boom"]
    assert all(d["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "LoadGen" for d in docs)
    assert all(0 <= d["Latency"] < 5000 for d in docs)


def test_the_handler_counts_an_unreachable_url_as_5xx_with_the_cause(app_url, monkeypatch, capsys):
    import socket
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    monkeypatch.setenv("SIMULATOR_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    summary = handler({"rate_per_s": 20, "run_seconds": 0.2}, _Context(120_000))
    docs = [valid_emf(line) for line in capsys.readouterr().out.splitlines()]
    assert summary["status_5xx"] == len(docs) == 4
    assert all(d["status_5xx"] == 1 and "refused" in d["cause"].lower() for d in docs), docs[0]


def test_the_handler_refuses_a_missing_url(monkeypatch):
    monkeypatch.delenv("SIMULATOR_URL", raising=False)
    with pytest.raises(SimulatorConfigError, match="SIMULATOR_URL is not set"):
        handler({}, _Context(60_000))
