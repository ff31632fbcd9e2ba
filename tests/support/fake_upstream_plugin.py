"""Pytest fixtures for the fake upstream: `fake_upstream` (in process) and `fake_upstream_process`.
Owns their scope: one server per session, reset before every test, so each test starts clean."""

from __future__ import annotations

import pytest

from server.demo.fake_upstream.runner import FakeUpstreamProcess, ThreadedFakeUpstream


@pytest.fixture(scope="session")
def fake_upstream_server():
    with ThreadedFakeUpstream() as server:
        yield server


@pytest.fixture
async def fake_upstream(fake_upstream_server: ThreadedFakeUpstream) -> ThreadedFakeUpstream:
    """A clean fake upstream on a free loopback port, served by a background thread of this process."""
    await fake_upstream_server.reset()
    return fake_upstream_server


@pytest.fixture(scope="session")
def fake_upstream_process_server():
    with FakeUpstreamProcess() as process:
        yield process


@pytest.fixture
async def fake_upstream_process(fake_upstream_process_server: FakeUpstreamProcess) -> FakeUpstreamProcess:
    """A clean fake upstream running as `python -m server.demo.fake_upstream` in a child process."""
    await fake_upstream_process_server.reset()
    return fake_upstream_process_server
