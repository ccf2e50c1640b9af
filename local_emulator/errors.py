"""The local experiment's exceptions: one class per thing a user (or a broken part) can get wrong.

Every message names the value at fault and the fix, because the local experiment is what a new
user runs first: a bare boto3 traceback there is the worst possible introduction.
"""
from __future__ import annotations

__all__ = [
    "EmulatorError",
    "MotoServerError",
    "DocumentError",
    "AutomationFailed",
    "TemplateError",
    "DurationError",
    "SandboxError",
    "DeployError",
]


class EmulatorError(Exception):
    """Base class of every error the local experiment raises on purpose."""


class MotoServerError(EmulatorError):
    """Raised when the embedded moto server cannot start or stops answering."""


class DocumentError(EmulatorError):
    """Raised when an SSM Automation document cannot be run: bad step, unknown action, missing parameter."""


class AutomationFailed(EmulatorError):
    """Raised by `run_automation(..., raise_on_failure=True)` when an execution ends Failed or Cancelled."""


class TemplateError(EmulatorError):
    """Raised when a FIS experiment template cannot be run: unknown action, bad startAfter, placeholder left."""


class DurationError(EmulatorError, ValueError):
    """Raised when an ISO-8601 duration (PT10M, PT1H30M, …) cannot be parsed."""


class SandboxError(EmulatorError):
    """Raised when a function's configuration cannot be turned into an execution environment."""


class DeployError(EmulatorError):
    """Raised when `deploy.sh --local` fails or leaves the emulator without what the experiment needs."""
