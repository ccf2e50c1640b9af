"""Shared fixtures of the local-experiment tests: one embedded moto server per test session.

A session-wide server keeps the suite fast (it takes ~1 s to start); tests that create
resources give them unique names instead of resetting the server under each other.
"""
import uuid

import pytest

from local_emulator.aws.moto_server import MotoServer


@pytest.fixture(scope="session")
def moto_server():
    server = MotoServer().start()
    yield server
    server.stop()


def unique(prefix: str) -> str:
    """A resource name no other test uses (moto's contributor docs recommend it)."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"
