"""Fixtures shared by the tests: a fake Discord, a fake relay, a database path, PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from tests.kit.fake_discord import FakeDiscord
from tests.kit.fake_relay import FakeRelay
from tests.kit.postgres_server import PostgresServer, PostgresUnavailable, running_postgres


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


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the whole run. Without PostgreSQL on the machine its tests
    are skipped, except under CI (CI set), where that is a failure."""
    try:
        with running_postgres() as server:
            yield server
    except PostgresUnavailable as exc:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is required under CI: {exc}")
        pytest.skip(f"PostgreSQL not available: {exc}")


@pytest.fixture
async def postgres_url(postgres_server: PostgresServer) -> AsyncIterator[str]:
    """A URL to a new, empty database of its own, dropped after the test."""
    name = f"test_{uuid.uuid4().hex[:16]}"
    admin = await asyncpg.connect(postgres_server.url())
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield postgres_server.url(name)
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, database: Path) -> str:
    """DATABASE_URL for each backend in turn: a SQLite file, then a PostgreSQL database."""
    if request.param == "postgres":
        return str(request.getfixturevalue("postgres_url"))
    return f"sqlite:///{database}"
