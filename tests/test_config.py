"""The layer's configuration contract: bad values mean no fault and a message naming the variable."""
import datetime as dt

import pytest

from chaos_layer import config as c


def test_no_fault_configured_means_inactive():
    cfg = c.FaultConfig.from_environ({})
    assert cfg.fault_type is None and not cfg.active()
    assert cfg.problems == ()


def test_latency_fault_is_parsed():
    cfg = c.FaultConfig.from_environ({c.FAULT_TYPE: "latency", c.LATENCY_MS: "2000",
                                      c.LATENCY_JITTER_MS: "50", c.INVOCATION_PERCENTAGE: "12.5"})
    assert (cfg.fault_type, cfg.latency_ms, cfg.latency_jitter_ms, cfg.percentage) == (
        "latency", 2000, 50, 12.5)
    assert cfg.active()


@pytest.mark.parametrize("name,value", [
    (c.LATENCY_MS, "fast"), (c.INVOCATION_PERCENTAGE, "150"), (c.FAULT_TYPE, "explode"),
    (c.EXPIRES_AT, "tomorrow"), (c.RESPONSE_STATUS_CODE, "99"), (c.PREVENT_EXECUTION, "maybe"),
    (c.PROXY_PORT, "70000"), (c.UPSTREAM_RUNTIME_API, "localhost"),
])
def test_bad_value_disables_fault_and_names_variable_and_value(name, value):
    env = {c.FAULT_TYPE: "latency", c.LATENCY_MS: "100", name: value}
    cfg = c.FaultConfig.from_environ(env)
    assert cfg.fault_type is None
    assert len(cfg.problems) == 1
    assert name in cfg.problems[0] and repr(value) in cfg.problems[0]


def test_expiry_in_the_past_makes_fault_inactive():
    cfg = c.FaultConfig.from_environ({c.FAULT_TYPE: "error", c.EXPIRES_AT: "2020-01-01T00:00:00Z"})
    assert cfg.fault_type == "error" and not cfg.active()


def test_expiry_round_trips_through_its_written_form():
    when = dt.datetime(2030, 5, 1, 12, 30, tzinfo=dt.timezone.utc)
    assert c.parse_utc_time(c.format_utc_time(when)) == when


def test_every_setting_is_named_once():
    names = [s.name for s in c.SETTINGS]
    assert len(names) == len(set(names))
    assert all(n.startswith("CHAOS_") for n in names)


def test_fault_config_is_immutable_and_compares_by_value():
    env = {c.FAULT_TYPE: "latency", c.LATENCY_MS: "5"}
    cfg = c.FaultConfig.from_environ(env)
    assert cfg == c.FaultConfig.from_environ(env) and hash(cfg) == hash(c.FaultConfig.from_environ(env))
    with pytest.raises(AttributeError, match="immutable"):
        cfg.latency_ms = 10
    with pytest.raises(TypeError, match="latency"):
        c.FaultConfig(latncy_ms=1)


def test_port_zero_means_any_free_port():
    assert c.FaultConfig.from_environ({c.PROXY_PORT: "0"}).proxy_port == 0
    assert c.FaultConfig.from_environ({}).proxy_port == c.DEFAULT_PROXY_PORT


def test_ready_file_is_keyed_by_the_runtime_api_address():
    assert c.ready_file("127.0.0.1:9001") != c.ready_file("127.0.0.1:9002")
    assert c.ready_file("127.0.0.1:9001").startswith("/tmp/")
