"""Lambda Managed Instances: what one multi-concurrent execution environment does differently.

On Managed Instances (GA 2025-11-30) one environment serves up to
``PerExecutionEnvironmentMaxConcurrency`` invocations at once; Lambda tells the runtime the
number in ``AWS_LAMBDA_MAX_CONCURRENCY``. ``ExecutionEnvironment(max_concurrency=N)`` models it
with the rules below (the README's "Lambda Managed Instances" section says which are
documented by AWS and which are inferred):

- the runtime starts its own workers: awslambdaric 4.x forks N processes, aws-lambda-ric 4.x
  runs worker threads with concurrent invocations in each; every worker long-polls ``/next``;
- init is complete once the extensions are ready and *one* worker has called ``/next``;
  the init timeout is the larger of 130 s and the function's timeout;
- each invocation has its own deadline: a timed-out one fails alone, the environment is not
  reset and the worker keeps running it (its late answer frees the worker);
- when N invocations are unanswered (timed-out ones included) a new one is refused
  (``EnvironmentBusyError``), as Lambda's back-pressure refuses it;
- an extension cannot register for INVOKE; an extension or runtime process that exits ends
  every invocation in flight and the environment;
- nothing is frozen between invocations (this emulator never freezes anything).
"""
from __future__ import annotations

from typing import Dict, Mapping, Optional, Sequence

from local_emulator.errors import EmulatorError, InvalidConfigurationError, ReservedVariableError

__all__ = ["MAX_CONCURRENCY_VARIABLE", "INITIALIZATION_TYPE", "MIN_INIT_TIMEOUT_S",
           "MAX_CONCURRENCY_LIMIT", "EnvironmentBusyError", "validate_max_concurrency",
           "runtime_variables", "init_timeout_s", "check_capacity", "invoke_registration_refusal"]

MAX_CONCURRENCY_VARIABLE = "AWS_LAMBDA_MAX_CONCURRENCY"
INITIALIZATION_TYPE = "lambda-managed-instances"  # AWS_LAMBDA_INITIALIZATION_TYPE's value there
MIN_INIT_TIMEOUT_S = 130.0
MAX_CONCURRENCY_LIMIT = 1600  # PerExecutionEnvironmentMaxConcurrency's range in botocore: 1-1600


class EnvironmentBusyError(EmulatorError, RuntimeError):
    """Raised by invoke() on a Managed Instances environment whose N workers are all busy."""


def validate_max_concurrency(value, environment: Mapping[str, str]) -> Optional[int]:
    """None (Lambda's default, one invocation at a time) or an int in 1-1600; raises otherwise.

    Raises InvalidConfigurationError for a value that is not a positive integer and
    ReservedVariableError when the function's environment sets AWS_LAMBDA_MAX_CONCURRENCY
    itself (Lambda sets it from the function's configuration).
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_CONCURRENCY_LIMIT:
        raise InvalidConfigurationError(
            f"max_concurrency {value!r} must be an integer in 1-{MAX_CONCURRENCY_LIMIT} (the "
            f"function's PerExecutionEnvironmentMaxConcurrency), or None for one invocation at "
            f"a time")
    if MAX_CONCURRENCY_VARIABLE in environment:
        raise ReservedVariableError(
            f"the function environment sets {MAX_CONCURRENCY_VARIABLE}="
            f"{environment[MAX_CONCURRENCY_VARIABLE]!r}: on Managed Instances Lambda sets it "
            f"itself; pass max_concurrency={environment[MAX_CONCURRENCY_VARIABLE]} instead")
    return value


def runtime_variables(max_concurrency: int) -> Dict[str, str]:
    """The variables Lambda adds for every process of a Managed Instances environment."""
    return {MAX_CONCURRENCY_VARIABLE: str(max_concurrency),
            "AWS_LAMBDA_INITIALIZATION_TYPE": INITIALIZATION_TYPE}


def init_timeout_s(function_timeout_s: float) -> float:
    """Managed Instances give init the larger of 130 s and the function's timeout."""
    return max(MIN_INIT_TIMEOUT_S, float(function_timeout_s))


def check_capacity(busy: int, timed_out: int, max_concurrency: int) -> None:
    """Raise EnvironmentBusyError when ``busy`` unanswered invocations fill every worker."""
    if busy < max_concurrency:
        return
    late = f", {timed_out} of them past their timeout and still running" if timed_out else ""
    raise EnvironmentBusyError(
        f"all {max_concurrency} workers of this Managed Instances environment are busy "
        f"({busy} invocations unanswered{late}): Lambda refuses an invocation until a worker "
        f"is free; retry when one finishes, or send it to another environment")


def invoke_registration_refusal(events: Sequence[str]) -> Optional[str]:
    """Why a Managed Instances environment refuses this registration, or None if it does not."""
    if "INVOKE" not in events:
        return None
    return ("extensions cannot register for INVOKE on Lambda Managed Instances (one environment "
            "runs many invocations at once, so there is no per-invocation event): register for "
            "[\"SHUTDOWN\"] only, and use the Telemetry API for per-invocation data")
