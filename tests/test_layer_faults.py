"""The per-invocation decision and the injected payloads (chaos_layer.faults), without sockets."""
import datetime as dt
import json
import random

import pytest
from hypothesis import given, strategies as st

from chaos_layer import config as c
from chaos_layer import faults

NOW = dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc).timestamp()


def cfg(**env):
    return c.FaultConfig.from_environ({getattr(c, k): v for k, v in env.items()})


def test_no_fault_configured_decides_nothing():
    assert faults.decide(cfg(), NOW, random.random) is None


def test_latency_adds_jitter_uniformly_up_to_and_including_the_bound():
    config = cfg(FAULT_TYPE="latency", LATENCY_MS="100", LATENCY_JITTER_MS="10")
    draws = iter([0.0, 0.999999])
    assert faults.decide(config, NOW, lambda: next(draws)).delay_ms == 100
    draws = iter([0.999999])
    assert faults.decide(config, NOW, lambda: next(draws)).delay_ms == 110


def test_latency_without_jitter_uses_no_random_draw():
    config = cfg(FAULT_TYPE="latency", LATENCY_MS="250")
    assert faults.decide(config, NOW, lambda: pytest.fail("drew")) == faults.Decision("latency", 250)


@given(st.floats(min_value=0, max_value=100), st.floats(min_value=0, max_value=0.999999))
def test_percentage_applies_exactly_when_the_draw_falls_below_it(percentage, draw):
    config = cfg(FAULT_TYPE="error", INVOCATION_PERCENTAGE=repr(percentage))
    decision = faults.decide(config, NOW, lambda: draw)
    assert (decision is not None) == (percentage == 100 or draw * 100 < percentage)


def test_percentage_over_many_invocations_is_within_four_sigma():
    config = cfg(FAULT_TYPE="error", INVOCATION_PERCENTAGE="12.5")
    rng = random.Random(7)
    n = 20000
    hits = sum(faults.decide(config, NOW, rng.random) is not None for _ in range(n))
    sigma = (n * 0.125 * 0.875) ** 0.5
    assert abs(hits - n * 0.125) < 4 * sigma


def test_expiry_in_the_past_decides_nothing_and_in_the_future_still_injects():
    config = cfg(FAULT_TYPE="error", EXPIRES_AT="2030-01-01T00:00:00Z")
    assert faults.decide(config, NOW, random.random) is None
    assert faults.decide(config, NOW - 1, random.random) == faults.Decision("error", 0, False)


def test_prevent_execution_is_carried_for_error_and_response():
    for fault in ("error", "response"):
        decision = faults.decide(cfg(FAULT_TYPE=fault, PREVENT_EXECUTION="true"), NOW, random.random)
        assert decision == faults.Decision(fault, 0, True)


def test_injected_error_has_the_runtime_payload_keys_and_error_type_header():
    body, headers = faults.error_result(cfg(FAULT_TYPE="error", ERROR_TYPE="Throttled",
                                            ERROR_MESSAGE="slow down ✋"))
    assert json.loads(body) == {"errorMessage": "slow down ✋", "errorType": "Throttled",
                                "requestId": "", "stackTrace": []}
    assert headers[faults.ERROR_TYPE_HEADER] == "Throttled"


def test_error_type_header_cannot_be_split_by_a_newline():
    _, headers = faults.error_result(cfg(FAULT_TYPE="error", ERROR_TYPE="A\r\nX-Evil: 1"))
    assert "\r" not in headers[faults.ERROR_TYPE_HEADER] and "\n" not in headers[faults.ERROR_TYPE_HEADER]


@pytest.mark.parametrize("body,content_type", [('{"ok": false}', "application/json"),
                                               ("Service down", "text/plain"),
                                               ("", "text/plain")])
def test_replacement_is_an_api_gateway_proxy_response(body, content_type):
    payload, _ = faults.replacement_result(cfg(FAULT_TYPE="response", RESPONSE_STATUS_CODE="503",
                                               RESPONSE_BODY=body))
    assert json.loads(payload) == {"statusCode": 503, "headers": {"Content-Type": content_type},
                                   "body": body, "isBase64Encoded": False}


def test_deeply_nested_replacement_body_is_sent_as_text_rather_than_crashing():
    body = "[" * 3000  # fits in Lambda's 4 KB of variables; json.loads recurses past the limit
    payload, _ = faults.replacement_result(cfg(FAULT_TYPE="response", RESPONSE_BODY=body))
    assert json.loads(payload)["body"] == body
    assert json.loads(payload)["headers"] == {"Content-Type": "text/plain"}


def test_x_ray_cause_header_carries_the_message_but_cannot_be_split_by_it():
    _, headers = faults.error_result(cfg(FAULT_TYPE="error", ERROR_TYPE="Boom",
                                         ERROR_MESSAGE="line\r\nX-Evil: 1 ✋"), "r1", "/var/task")
    cause = headers[faults.XRAY_CAUSE_HEADER]
    assert "\r" not in cause and "\n" not in cause and cause.isascii()
    assert json.loads(cause) == {"working_directory": "/var/task", "paths": [], "exceptions": [
        {"message": "line\r\nX-Evil: 1 ✋", "type": "Boom", "stack": []}]}


def test_a_seeded_draw_depends_only_on_the_seed_and_the_request_id():
    draws = [faults.seeded_draw("s", b"req-1")() for _ in range(2)]
    assert draws[0] == draws[1]
    assert faults.seeded_draw("s", b"req-2")() != draws[0]
    assert faults.seeded_draw("t", b"req-1")() != draws[0]
