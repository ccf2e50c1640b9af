"""The emulator's exceptions: one class per thing a caller can get wrong, messages that say the fix.

Everything the *function* gets wrong (a handler exception, a crash, a timeout, an init error)
is not an exception here: it is an ``InvokeResult`` / ``InitResult``, as Lambda reports it.
"""
from __future__ import annotations

__all__ = ["EmulatorError", "InvalidConfigurationError", "ReservedVariableError",
           "PayloadTooLargeError", "EnvironmentClosedError"]


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
