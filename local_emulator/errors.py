"""The local twin's exceptions, shared by its three parts: one class per thing a caller can get wrong.

Every message names the value at fault and the fix, because the local experiment is what a new
user runs first: a bare boto3 traceback there is the worst possible introduction.

- ``ExperimentError`` and its subclasses: what a user of the local experiment, its AWS twins
  or its sandbox can get wrong (a template, a document, a duration, a deploy, a function).
- ``EmulatorError`` and its subclasses: what a caller of the execution environment
  (``ExecutionEnvironment``) can get wrong. Everything the *function* gets wrong (a handler
  exception, a crash, a timeout, an init error) is not an exception: it is an ``InvokeResult`` /
  ``InitResult``, as Lambda reports it.

This module and ``clock.py`` sit above the three subpackages because all three use them; they
import nothing from the subpackages.
"""
from __future__ import annotations

__all__ = [
    "ExperimentError",
    "MotoServerError",
    "DocumentError",
    "AutomationFailed",
    "TemplateError",
    "DurationError",
    "SandboxError",
    "DeployError",
    "EmulatorError",
    "InvalidConfigurationError",
    "ReservedVariableError",
    "PayloadTooLargeError",
    "EnvironmentClosedError",
]



class ExperimentError(Exception):
    """Base class of every error the local experiment raises on purpose."""


class MotoServerError(ExperimentError):
    """Raised when the embedded moto server cannot start or stops answering."""


class DocumentError(ExperimentError):
    """Raised when an SSM Automation document cannot be run: bad step, unknown action, missing parameter."""


class AutomationFailed(ExperimentError):
    """Raised by `run_automation(..., raise_on_failure=True)` when an execution ends Failed or Cancelled."""


class TemplateError(ExperimentError):
    """Raised when a FIS experiment template cannot be run: unknown action, bad startAfter, placeholder left."""


class DurationError(ExperimentError, ValueError):
    """Raised when an ISO-8601 duration (PT10M, PT1H30M, …) cannot be parsed."""


class SandboxError(ExperimentError):
    """Raised when a function's configuration cannot be turned into an execution environment."""


class DeployError(ExperimentError):
    """Raised when `deploy.sh --local` fails or leaves the emulator without what the experiment needs."""

class EmulatorError(Exception):
    """Base class of every error the emulator raises to its caller."""


class InvalidConfigurationError(EmulatorError, ValueError):
    """Raised by ExecutionEnvironment(...) for an argument Lambda would reject (path, size...)."""


class ReservedVariableError(InvalidConfigurationError):
    """Raised when a function's environment sets a variable Lambda reserves for itself."""


class PayloadTooLargeError(EmulatorError, ValueError):
    """Raised by invoke() for an event over Lambda's 6 MB (6,291,456 bytes) request limit."""


class EnvironmentClosedError(EmulatorError, RuntimeError):
    """Raised by start()/invoke() after shutdown(): build a new ExecutionEnvironment instead."""
