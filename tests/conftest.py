"""Fixtures shared by the end-to-end tests: a fake Discord, a fake relay, a database path."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.kit.fake_discord import FakeDiscord
from tests.kit.fake_relay import FakeRelay


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    """A fake Discord that discord.py points at for the duration of the test."""
    async with FakeDiscord() as fake:
        with fake.patch_discord():
            yield fake


@pytest.fixture
async def relay() -> AsyncIterator[FakeRelay]:
    async with FakeRelay() as relay:
        yield relay


@pytest.fixture
def database(tmp_path: Path) -> Path:
    return tmp_path / "data" / "watches.sqlite3"
