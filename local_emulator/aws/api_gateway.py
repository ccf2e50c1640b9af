"""A regional API Gateway (REST API, Lambda proxy integration) in front of the sandbox.

What a client sees, as API Gateway does it:
- a known path invokes its function with a proxy event; the function's `{statusCode, headers,
  body}` becomes the response;
- the integration timeout (29 s, template time) answers **504** `Endpoint request timed out`
  while the invocation goes on in its environment until it ends or the function times out;
- a function error, crash or timeout, or a response that is not a proxy response: **502**
  `Internal server error`;
- Lambda throttling: **500** `Internal server error` (API Gateway does not pass Lambda's 429 on);
  the same 500 when this machine had no room for another environment (the sandbox's
  `capacity`), with a cause that says it was the emulator's limit, not Lambda's;
- an unknown path: **403** `Missing Authentication Token`.

With a `MetricsPublisher` it also publishes what a REST API publishes with detailed metrics
on, in `AWS/ApiGateway`, in each of its dimension sets (`ApiName`; `ApiName`, `Stage`; and
`ApiName`, `Stage`, `Resource`, `Method`, "Amazon API Gateway dimensions and metrics"):
`Count`, `4XXError` and `5XXError` in `Count` (1 or 0 per request, so `Average` is the error
rate), `Latency` and `IntegrationLatency` in `Milliseconds` (template ms; the integration's is
the time until the function's answer or the integration timeout). Each set is its own series:
the emulator's CloudWatch matches a query's dimensions exactly, as CloudWatch does.
`respond(path)` also says *why* a request failed (`ApiResponse.cause`), in the words of what
caused it: the report counts failures by cause.
"""
from __future__ import annotations

import concurrent.futures
import json
import uuid
from typing import Any, Dict, Mapping, NamedTuple, Optional, Tuple

from local_emulator.clock import Clock
from local_emulator.aws.cloudwatch import MetricsPublisher
from local_emulator.environment.sandbox import Sandbox

__all__ = ["ApiGateway", "ApiResponse", "INTEGRATION_TIMEOUT_S", "proxy_event"]

INTEGRATION_TIMEOUT_S = 29.0


class ApiResponse(NamedTuple):
    """What a client got (status, body) and, for a failure, what caused it ("" for none)."""

    status: int
    body: str
    cause: str = ""


def proxy_event(path: str, method: str, region: str, stage: str = "prod") -> Dict[str, Any]:
    """A REST API proxy integration event, with the fields handlers commonly read."""
    request_id = str(uuid.uuid4())
    return {"resource": path, "path": path, "httpMethod": method,
            "headers": {"Host": f"example.execute-api.{region}.amazonaws.com"},
            "multiValueHeaders": {}, "queryStringParameters": None,
            "multiValueQueryStringParameters": None, "pathParameters": None,
            "stageVariables": None, "body": None, "isBase64Encoded": False,
            "requestContext": {"resourcePath": path, "httpMethod": method, "path": f"/{stage}{path}",
                               "stage": stage, "requestId": request_id,
                               "identity": {"sourceIp": "127.0.0.1"}}}


def _message(text: str) -> str:
    return json.dumps({"message": text})


class ApiGateway:
    """`request(path)` → `(status, body)`; routes map a path to a function name in `region`."""

    def __init__(self, region: str, routes: Mapping[str, str], sandbox: Sandbox, clock: Clock,
                 integration_timeout_s: float = INTEGRATION_TIMEOUT_S, workers: int = 32, *,
                 metrics: Optional[MetricsPublisher] = None, api_name: str = "api",
                 stage: str = "prod") -> None:
        self.region = region
        self.metrics = metrics
        self.api_name = api_name
        self.stage = stage
        self.routes = dict(routes)
        self.sandbox = sandbox
        self.clock = clock
        self.integration_timeout_s = integration_timeout_s
        # Invocations outlive a 504 (the function keeps running), so they run on a pool.
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=workers,
                                                           thread_name_prefix=f"apigw-{region}")

    def request(self, path: str, method: str = "GET") -> Tuple[int, str]:
        """`(status, body)` as the client sees it."""
        status, body, _ = self.respond(path, method)
        return status, body

    def respond(self, path: str, method: str = "GET") -> ApiResponse:
        """The client's answer with its cause; publishes API Gateway's metrics for it."""
        started = self.clock.now()
        answer, integration_ms = self._request(path, method)
        status = answer.status
        if self.metrics is not None and path in self.routes:
            latency_ms = (self.clock.now() - started) * 1000.0
            api = [{"Name": "ApiName", "Value": self.api_name}]
            stage = api + [{"Name": "Stage", "Value": self.stage}]
            detailed = stage + [{"Name": "Resource", "Value": path}, {"Name": "Method", "Value": method}]
            for dims in (api, stage, detailed):
                self.metrics.add("Count", started, 1.0, dims, "Count")
                self.metrics.add("4XXError", started, 1.0 if 400 <= status < 500 else 0.0, dims, "Count")
                self.metrics.add("5XXError", started, 1.0 if status >= 500 else 0.0, dims, "Count")
                self.metrics.add("Latency", started, latency_ms, dims, "Milliseconds")
                if integration_ms is not None:
                    self.metrics.add("IntegrationLatency", started, integration_ms, dims,
                                     "Milliseconds")
        return answer

    def _request(self, path: str, method: str) -> Tuple[ApiResponse, Optional[float]]:
        """The answer, and the integration's latency in template ms (None: no integration)."""
        function = self.routes.get(path)
        if function is None:
            return ApiResponse(403, _message("Missing Authentication Token"), "no such route"), None
        event = json.dumps(proxy_event(path, method, self.region)).encode()
        started = self.clock.now()
        future = self._pool.submit(self.sandbox.invoke, self.region, function, event)
        try:
            result = future.result(timeout=self.clock.to_real(self.integration_timeout_s))
        except concurrent.futures.TimeoutError:
            return ApiResponse(504, _message("Endpoint request timed out"),
                               f"integration timeout ({self.integration_timeout_s:g} s)"), \
                self.integration_timeout_s * 1000.0
        except Exception as exc:  # noqa: BLE001 - the sandbox failed to run it: an integration error
            return ApiResponse(502, _message("Internal server error"),
                               f"the emulator could not run {function}: {type(exc).__name__}"), None
        return self._answer(result), (self.clock.now() - started) * 1000.0

    def _answer(self, result: Any) -> ApiResponse:
        """What the client gets for a finished invocation."""
        if result.status == "throttled":
            return ApiResponse(500, _message("Internal server error"), "Lambda throttled")
        if result.status == "capacity":
            return ApiResponse(500, _message("Internal server error"),
                               "emulator capacity (not Lambda's limit)")
        if result.status != "success":
            return ApiResponse(502, _message("Internal server error"), _function_failure(result))
        return _proxy_response(result.payload)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def _function_failure(result: Any) -> str:
    """A failed invocation's cause, as Lambda names it."""
    if result.status == "timeout":
        return "function timeout"
    return f"function {result.status}: {result.error_type or 'unknown'}"


def _proxy_response(payload: bytes) -> ApiResponse:
    try:
        response = json.loads(payload)
        status = int(response["statusCode"])
        body = response.get("body", "")
    except (ValueError, TypeError, KeyError):
        return ApiResponse(502, _message("Internal server error"), "not a proxy response")
    if not isinstance(body, str):
        return ApiResponse(502, _message("Internal server error"), "not a proxy response")
    return ApiResponse(status, body, "" if status < 400 else f"the function answered {status}")
