"""Fixtures of the fake upstream's own tests: one client session per test, and a fresh account.
The fake itself (`fake_upstream`, `fake_upstream_process`) comes from tests/support/fake_upstream_plugin.py.
"""

from __future__ import annotations

import aiohttp
import pytest


@pytest.fixture
async def session():
    async with aiohttp.ClientSession() as client:
        yield client


@pytest.fixture
async def auth(fake_upstream) -> dict:
    """auth.json of the account `acc_test`, registered on the (freshly reset) fake."""
    return await fake_upstream.create_account("acc_test")
