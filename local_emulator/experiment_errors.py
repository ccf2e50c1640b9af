"""The local experiment's exceptions (the emulator's own live in errors.py): one class per thing a user (or a broken part) can get wrong.

Every message names the value at fault and the fix, because the local experiment is what a new
user runs first: a bare boto3 traceback there is the worst possible introduction.
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
