"""Opens the store DATABASE_URL names: a SQLite file (the default) or a PostgreSQL database."""

from __future__ import annotations

from typing import Protocol

from bot.config import is_postgres_url, sqlite_path
from bot.keys import KeyStore
from bot.tracking.postgres import PostgresWatchStore, redacted
from bot.tracking.store import BotStore, SqliteWatchStore, StoreObserver


class OpenStore(BotStore, KeyStore, Protocol):
    """A store as the runner holds it: the contract, the relay keys, and whether it is
    still open."""

    @property
    def is_open(self) -> bool: ...


async def open_store(database_url: str, *, observer: StoreObserver | None = None) -> OpenStore:
    """The store at `database_url`, schema up to date; StoreError when it cannot be used."""
    if is_postgres_url(database_url):
        plain = database_url.replace("postgresql+asyncpg://", "postgresql://", 1)
        return await PostgresWatchStore.open(plain, observer=observer)
    return await SqliteWatchStore.open(sqlite_path(database_url), observer=observer)


def describe_location(database_url: str) -> str:
    """Where the store is, for the operator, never with a password."""
    if is_postgres_url(database_url):
        return redacted(database_url)
    return str(sqlite_path(database_url))
