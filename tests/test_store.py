"""The watch store contract against both backends (a SQLite file, a real PostgreSQL database),
and what is particular to each."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import sqlite3
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import asyncpg
import pytest

from bot.config import is_postgres_url, sqlite_path
from bot.tracking import postgres as postgres_module
from bot.tracking import store as store_module
from bot.tracking.backends import OpenStore, open_store
from bot.tracking.store import (
    MIGRATIONS,
    AudioState,
    Lease,
    NewWatch,
    SqliteWatchStore,
    StoreError,
    Watch,
    WatchOutcome,
)

ROOT = Path(__file__).resolve().parents[1]
BIG_SNOWFLAKE = 2**63 - 1
NOW = datetime(2025, 6, 1, 12, 30, 45, 123456, tzinfo=UTC)


def new_watch(**changes: object) -> NewWatch:
    watch = NewWatch(
        task_id="task_0123456789abcdef0123456789abcdef",
        application_id=1_234_567_890_123_456_789,
        guild_id=BIG_SNOWFLAKE - 1,
        channel_id=BIG_SNOWFLAKE - 2,
        requester_id=BIG_SNOWFLAKE,
        locale="de",
        ephemeral=False,
        interaction_id=BIG_SNOWFLAKE - 3,
        interaction_token="aW50ZXJhY3Rpb246MTIzNDU2Nzg5MDEyMzQ1Njc4OQ",
        token_expires_at=NOW + timedelta(minutes=15),
        deadline_at=NOW + timedelta(minutes=30),
    )
    return dataclasses.replace(watch, **changes)  # type: ignore[arg-type]


def raw(path: Path, sql: str, *parameters: object) -> list[tuple[object, ...]]:
    """Rows read straight from the file, bypassing the store."""
    connection = sqlite3.connect(path)
    try:
        return connection.execute(sql, parameters).fetchall()
    finally:
        connection.close()


def write(path: Path, sql: str) -> None:
    """One statement run straight on the file, bypassing the store."""
    connection = sqlite3.connect(path)
    try:
        with connection:
            connection.execute(sql)
    finally:
        connection.close()


def replace_file(path: Path, contents: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(contents)


def file_bytes(path: Path) -> bytes:
    return path.read_bytes()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "watches.sqlite3"


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[OpenStore]:
    opened = await open_store(store_url)
    yield opened
    await opened.close()


async def outcome_of(
    store_url: str, watch_id: int, columns: str = "outcome, interaction_token"
) -> tuple[object, ...]:
    """A watch's outcome and token (or other `columns`), read straight from the database,
    bypassing the store."""
    sql = f"SELECT {columns} FROM watches WHERE id = "  # noqa: S608 - the tests' own columns
    if not is_postgres_url(store_url):
        [row] = raw(sqlite_path(store_url), sql + "?", watch_id)
        return row
    connection = await asyncpg.connect(store_url)
    try:
        record = await connection.fetchrow(sql + "$1", watch_id)
    finally:
        await connection.close()
    assert record is not None
    return tuple(record.values())


async def make_real_database(path: Path, watches: int) -> bytes:
    opened = await SqliteWatchStore.open(path)
    await asyncio.gather(*(opened.add(new_watch(task_id=f"t{i}")) for i in range(watches)))
    await opened.close()
    return file_bytes(path)


# Schema and migrations


async def test_new_database_gets_the_current_schema_and_its_directory(db_path: Path) -> None:
    opened = await SqliteWatchStore.open(db_path)
    await opened.close()

    assert raw(db_path, "PRAGMA user_version") == [(len(MIGRATIONS),)]
    tables = {row[0] for row in raw(db_path, "SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"watches", "meta"} <= tables


async def test_database_is_in_wal_mode(db_path: Path) -> None:
    opened = await SqliteWatchStore.open(db_path)
    try:
        assert raw(db_path, "PRAGMA journal_mode") == [("wal",)]
    finally:
        await opened.close()


async def test_reopening_applies_each_migration_once_and_keeps_watches(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = await SqliteWatchStore.open(db_path)
    kept = await first.add(new_watch())
    await first.close()

    counting_step = (
        "INSERT INTO meta (key, value) VALUES ('step_runs', '1')"
        " ON CONFLICT (key) DO UPDATE SET value = value + 1",
    )
    monkeypatch.setattr(store_module, "MIGRATIONS", [*MIGRATIONS, counting_step])
    for _ in range(3):
        reopened = await SqliteWatchStore.open(db_path)
        assert await reopened.get_meta("step_runs") == "1"
        assert await reopened.active() == [kept]
        await reopened.close()

    assert raw(db_path, "PRAGMA user_version") == [(len(MIGRATIONS) + 1,)]


async def test_failed_migration_step_leaves_the_previous_version(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = await SqliteWatchStore.open(db_path)
    await first.set_meta("kept", "yes")
    await first.close()

    broken_step = (
        "INSERT INTO meta (key, value) VALUES ('half_done', '1')",
        "THIS IS NOT SQL",
    )
    monkeypatch.setattr(store_module, "MIGRATIONS", [*MIGRATIONS, broken_step])
    with pytest.raises(StoreError, match=str(db_path)):
        await SqliteWatchStore.open(db_path)

    assert raw(db_path, "PRAGMA user_version") == [(len(MIGRATIONS),)]
    assert raw(db_path, "SELECT key FROM meta") == [("kept",)]


async def test_database_from_a_newer_version_is_refused_untouched(db_path: Path) -> None:
    await make_real_database(db_path, watches=3)
    newer = len(MIGRATIONS) + 1
    connection = sqlite3.connect(db_path)
    connection.execute(f"PRAGMA user_version = {newer}")
    connection.close()
    before = file_bytes(db_path)

    with pytest.raises(StoreError) as caught:
        await SqliteWatchStore.open(db_path)

    message = str(caught.value)
    assert str(db_path) in message
    assert f"schema version {newer}" in message
    assert "newer" in message
    assert file_bytes(db_path) == before


async def test_sqlite_file_of_another_program_is_refused(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    connection = sqlite3.connect(db_path)
    connection.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY)")
    connection.commit()
    connection.close()

    with pytest.raises(StoreError, match="invoices"):
        await SqliteWatchStore.open(db_path)

    assert raw(db_path, "PRAGMA user_version") == [(0,)]


# Damaged files and bad paths


def assert_refused_untouched(path: Path, before: bytes, error: StoreError) -> None:
    assert str(path) in str(error)
    assert "move it aside or restore a backup" in str(error)
    assert file_bytes(path) == before
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]


async def test_random_bytes_are_refused_and_left_untouched(db_path: Path) -> None:
    before = os.urandom(16 * 1024)
    replace_file(db_path, before)

    with pytest.raises(StoreError, match="not a valid SQLite database") as caught:
        await SqliteWatchStore.open(db_path)

    assert_refused_untouched(db_path, before, caught.value)


async def test_truncated_database_is_refused_and_left_untouched(db_path: Path) -> None:
    whole = await make_real_database(db_path, watches=500)
    before = whole[: len(whole) // 2]
    replace_file(db_path, before)

    with pytest.raises(StoreError) as caught:
        await SqliteWatchStore.open(db_path)

    assert_refused_untouched(db_path, before, caught.value)


@pytest.fixture
def directory_at_db_path(db_path: Path) -> Path:
    db_path.mkdir(parents=True)
    return db_path


async def test_directory_in_place_of_the_file_is_refused(directory_at_db_path: Path) -> None:
    db_path = directory_at_db_path

    with pytest.raises(StoreError, match="is a directory") as caught:
        await SqliteWatchStore.open(db_path)

    assert str(db_path) in str(caught.value)


async def test_file_in_place_of_the_directory_is_refused(tmp_path: Path) -> None:
    blocker = tmp_path / "data"
    blocker.write_text("not a directory")

    with pytest.raises(StoreError, match="cannot create directory") as caught:
        await SqliteWatchStore.open(blocker / "watches.sqlite3")

    assert str(blocker) in str(caught.value)
    assert blocker.read_text() == "not a directory"


async def test_write_blocked_by_another_process_raises_store_error(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_module, "BUSY_TIMEOUT_MS", 50)
    opened = await SqliteWatchStore.open(db_path)
    holder = sqlite3.connect(db_path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StoreError, match="another process") as caught:
            await opened.add(new_watch())
        assert str(db_path) in str(caught.value)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        await opened.close()


# Round trips


async def test_every_field_round_trips_through_a_reopen(store_url: str) -> None:
    watch = new_watch(
        ephemeral=True,
        guild_id=None,
        channel_id=None,
        token_expires_at=datetime(
            2025, 6, 1, 14, 45, 45, 654321, tzinfo=timezone(timedelta(hours=2))
        ),
    )
    first = await open_store(store_url)
    added = await first.add(watch)
    await first.close()

    reopened = await open_store(store_url)
    try:
        [stored] = await reopened.active()
    finally:
        await reopened.close()

    assert stored == added
    assert {f.name for f in dataclasses.fields(NewWatch)} < {
        f.name for f in dataclasses.fields(Watch)
    }
    for name in (f.name for f in dataclasses.fields(NewWatch)):
        assert getattr(stored, name) == getattr(watch, name), name
    assert stored.requester_id == BIG_SNOWFLAKE
    assert stored.guild_id is None
    assert stored.channel_id is None
    assert stored.ephemeral is True
    assert stored.token_expires_at == datetime(2025, 6, 1, 12, 45, 45, 654321, tzinfo=UTC)
    assert stored.deadline_at == NOW + timedelta(minutes=30)
    for moment in (stored.token_expires_at, stored.deadline_at, stored.created_at):
        assert moment.tzinfo is UTC
    assert stored.message_id is None
    assert stored.last_fingerprint is None
    assert stored.outcome is WatchOutcome.ACTIVE
    assert stored.created_at == stored.updated_at


async def test_guild_watch_keeps_its_snowflakes(store: OpenStore) -> None:
    added = await store.add(new_watch(ephemeral=False))

    [stored] = await store.active()

    assert stored.ephemeral is False
    assert (stored.guild_id, stored.channel_id) == (BIG_SNOWFLAKE - 1, BIG_SNOWFLAKE - 2)
    assert stored.id == added.id


async def test_naive_datetime_is_rejected_before_anything_is_written(
    store: OpenStore,
) -> None:
    with pytest.raises(ValueError, match="deadline_at"):
        await store.add(new_watch(deadline_at=datetime(2025, 6, 1, 13, 0)))

    assert await store.active() == []


async def test_token_is_not_shown_in_repr(store: OpenStore) -> None:
    watch = new_watch()
    added = await store.add(watch)

    assert watch.interaction_token not in repr(watch)
    assert watch.interaction_token not in repr(added)


async def test_message_id_and_fingerprint_are_recorded(store: OpenStore) -> None:
    added = await store.add(new_watch())

    await store.set_message_id(added.id, BIG_SNOWFLAKE)
    await store.set_fingerprint(added.id, "sha256:first")
    await store.set_fingerprint(added.id, "sha256:second")

    [stored] = await store.active()
    assert stored.message_id == BIG_SNOWFLAKE
    assert stored.last_fingerprint == "sha256:second"
    assert stored.updated_at >= stored.created_at


async def test_updates_to_an_unknown_watch_raise_lookup_error(store: OpenStore) -> None:
    with pytest.raises(LookupError):
        await store.set_message_id(404, 1)
    with pytest.raises(LookupError):
        await store.set_fingerprint(404, "x")
    with pytest.raises(LookupError):
        await store.finish(404, WatchOutcome.FINISHED)


# Finishing and tokens


async def test_finish_drops_the_token_and_the_watch_from_active(
    store: OpenStore, store_url: str
) -> None:
    done = await store.add(new_watch(task_id="done"))
    running = await store.add(new_watch(task_id="running"))

    await store.finish(done.id, WatchOutcome.TIMED_OUT)

    assert [w.id for w in await store.active()] == [running.id]
    assert await outcome_of(store_url, done.id) == ("timed_out", None)


async def test_finish_keeps_the_first_outcome(store: OpenStore, store_url: str) -> None:
    added = await store.add(new_watch())

    await store.finish(added.id, WatchOutcome.LOST)
    await store.finish(added.id, WatchOutcome.FINISHED)

    assert await outcome_of(store_url, added.id) == ("lost", None)


async def test_finishing_as_active_is_rejected(store: OpenStore) -> None:
    added = await store.add(new_watch())

    with pytest.raises(ValueError, match="active"):
        await store.finish(added.id, WatchOutcome.ACTIVE)

    assert [w.id for w in await store.active()] == [added.id]


async def test_purge_forgets_only_tokens_whose_expiry_passed(store: OpenStore) -> None:
    now = NOW + timedelta(hours=1)
    expired = await store.add(new_watch(task_id="old", token_expires_at=now - timedelta(seconds=1)))
    at_expiry = await store.add(new_watch(task_id="edge", token_expires_at=now))
    fresh = await store.add(new_watch(task_id="new", token_expires_at=now + timedelta(minutes=1)))

    assert await store.purge_expired_tokens(now) == 2
    assert await store.purge_expired_tokens(now) == 0

    tokens = {w.id: w.interaction_token for w in await store.active()}
    assert tokens == {expired.id: None, at_expiry.id: None, fresh.id: fresh.interaction_token}


async def test_pruning_deletes_only_ended_watches_older_than_the_cutoff(
    store: OpenStore,
) -> None:
    ended = await store.add(new_watch(task_id="ended"))
    running = await store.add(new_watch(task_id="running"))
    await store.finish(ended.id, WatchOutcome.FINISHED)

    assert await store.prune_finished(datetime.now(UTC) - timedelta(days=1)) == 0
    assert await store.prune_finished(datetime.now(UTC) + timedelta(seconds=1)) == 1

    assert [w.id for w in await store.active()] == [running.id]
    with pytest.raises(LookupError):
        await store.finish(ended.id, WatchOutcome.FINISHED)


# Meta


async def test_meta_values_are_saved_and_overwritten(store_url: str) -> None:
    first = await open_store(store_url)
    assert await first.get_meta("command_tree_hash") is None
    await first.set_meta("command_tree_hash", "abc")
    await first.set_meta("command_tree_hash", "def")
    await first.set_meta("other", "")
    await first.close()

    reopened = await open_store(store_url)
    try:
        assert await reopened.get_meta("command_tree_hash") == "def"
        assert await reopened.get_meta("other") == ""
    finally:
        await reopened.close()


# Leases


class FrozenClock:
    """The store's clock, standing still until a test moves it."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.now = NOW.timestamp()
        monkeypatch.setattr(store_module, "_now", lambda: self.now)
        monkeypatch.setattr(postgres_module, "_now", lambda: self.now)

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FrozenClock:
    return FrozenClock(monkeypatch)


async def test_a_free_lease_is_taken_and_its_holder_shown(
    store: OpenStore, clock: FrozenClock
) -> None:
    assert await store.lease_holder("store") is None

    assert await store.acquire_lease("store", "first", ttl=15)

    assert await store.lease_holder("store") == Lease(
        name="store",
        owner="first",
        acquired_at=NOW,
        expires_at=NOW + timedelta(seconds=15),
    )


async def test_a_held_lease_is_refused_to_another_owner(
    store: OpenStore, clock: FrozenClock
) -> None:
    assert await store.acquire_lease("store", "first", ttl=15)
    clock.advance(14.9)

    assert not await store.acquire_lease("store", "second", ttl=15)

    holder = await store.lease_holder("store")
    assert holder is not None
    assert (holder.owner, holder.expires_at) == ("first", NOW + timedelta(seconds=15))


async def test_an_expired_lease_is_taken_by_another_owner(
    store: OpenStore, clock: FrozenClock
) -> None:
    assert await store.acquire_lease("store", "crashed", ttl=15)
    clock.advance(15)
    assert await store.lease_holder("store") is None

    assert await store.acquire_lease("store", "successor", ttl=15)

    assert await store.lease_holder("store") == Lease(
        name="store",
        owner="successor",
        acquired_at=NOW + timedelta(seconds=15),
        expires_at=NOW + timedelta(seconds=30),
    )


async def test_acquiring_a_lease_already_held_extends_it_and_keeps_its_start(
    store: OpenStore, clock: FrozenClock
) -> None:
    assert await store.acquire_lease("store", "first", ttl=15)
    clock.advance(10)

    assert await store.acquire_lease("store", "first", ttl=15)

    holder = await store.lease_holder("store")
    assert holder is not None
    assert (holder.acquired_at, holder.expires_at) == (NOW, NOW + timedelta(seconds=25))


async def test_the_owner_renews_its_lease(store: OpenStore, clock: FrozenClock) -> None:
    assert await store.acquire_lease("store", "first", ttl=15)
    for _ in range(5):
        clock.advance(5)
        assert await store.renew_lease("store", "first", ttl=15)

    # 25 s after taking it, the 15 s lease is still held: renewals pushed its end.
    assert not await store.acquire_lease("store", "second", ttl=15)
    holder = await store.lease_holder("store")
    assert holder is not None
    assert holder.expires_at == NOW + timedelta(seconds=40)


async def test_renewal_is_refused_once_another_owner_took_the_lapsed_lease(
    store: OpenStore, clock: FrozenClock
) -> None:
    assert await store.acquire_lease("store", "suspended", ttl=15)
    clock.advance(60)
    assert await store.acquire_lease("store", "successor", ttl=15)

    assert not await store.renew_lease("store", "suspended", ttl=15)

    holder = await store.lease_holder("store")
    assert holder is not None
    assert holder.owner == "successor"


async def test_renewal_is_refused_after_another_owner_took_and_released_the_lease(
    store: OpenStore, clock: FrozenClock
) -> None:
    assert await store.acquire_lease("store", "suspended", ttl=15)
    clock.advance(60)
    assert await store.acquire_lease("store", "successor", ttl=15)
    assert await store.release_lease("store", "successor")

    assert not await store.renew_lease("store", "suspended", ttl=15)
    assert await store.lease_holder("store") is None


async def test_a_lapsed_lease_nobody_took_is_still_renewed_by_its_owner(
    store: OpenStore, clock: FrozenClock
) -> None:
    assert await store.acquire_lease("store", "slow", ttl=15)
    clock.advance(20)

    assert await store.renew_lease("store", "slow", ttl=15)

    holder = await store.lease_holder("store")
    assert holder is not None
    assert (holder.owner, holder.expires_at) == ("slow", NOW + timedelta(seconds=35))


async def test_release_frees_the_lease_only_for_its_owner(
    store: OpenStore, clock: FrozenClock
) -> None:
    assert await store.acquire_lease("store", "first", ttl=15)

    assert not await store.release_lease("store", "second")
    assert not await store.acquire_lease("store", "second", ttl=15)
    assert await store.release_lease("store", "first")
    assert not await store.release_lease("store", "first")

    assert await store.lease_holder("store") is None
    assert await store.acquire_lease("store", "second", ttl=15)


async def test_leases_of_different_names_are_independent(
    store: OpenStore, clock: FrozenClock
) -> None:
    assert await store.acquire_lease("store", "first", ttl=15)
    assert await store.acquire_lease("task:abc", "second", ttl=15)

    assert not await store.renew_lease("task:abc", "first", ttl=15)
    assert await store.release_lease("store", "first")
    holder = await store.lease_holder("task:abc")
    assert holder is not None
    assert holder.owner == "second"


@pytest.mark.parametrize("ttl", [0, -1, float("nan"), float("inf")])
async def test_a_lease_needs_a_positive_finite_ttl(store: OpenStore, ttl: float) -> None:
    with pytest.raises(ValueError, match="ttl"):
        await store.acquire_lease("store", "first", ttl=ttl)
    with pytest.raises(ValueError, match="ttl"):
        await store.renew_lease("store", "first", ttl=ttl)
    assert await store.lease_holder("store") is None


async def test_stores_on_one_database_racing_for_a_lease_give_it_to_exactly_one(
    store_url: str,
) -> None:
    stores = [await open_store(store_url) for _ in range(6)]
    try:
        for round_ in range(5):
            won = await asyncio.gather(
                *(s.acquire_lease("store", f"owner{i}", ttl=15) for i, s in enumerate(stores))
            )
            assert sum(won) == 1
            winner = won.index(True)
            # Every connection sees the same holder; only the holder may renew or release.
            holders = await asyncio.gather(*(s.lease_holder("store") for s in stores))
            assert {h.owner if h else None for h in holders} == {f"owner{winner}"}
            renewed = await asyncio.gather(
                *(s.renew_lease("store", f"owner{i}", ttl=15) for i, s in enumerate(stores))
            )
            assert renewed == [i == winner for i in range(len(stores))]
            assert await stores[round_].release_lease("store", f"owner{winner}")
    finally:
        for opened in stores:
            await opened.close()


async def test_a_database_from_before_leases_gets_them_and_keeps_its_watches(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as before_leases:
        before_leases.setattr(store_module, "MIGRATIONS", MIGRATIONS[:1])
        old = await SqliteWatchStore.open(db_path)
        await old.close()
    assert raw(db_path, "PRAGMA user_version") == [(1,)]
    # A watch as the first version wrote it, before watches named a relay key.
    write(
        db_path,
        "INSERT INTO watches (task_id, application_id, requester_id, locale, ephemeral,"
        " interaction_id, interaction_token, token_expires_at, deadline_at, created_at,"
        " updated_at) VALUES ('old-task', 1, 2, 'de', 0, 3, 'token', 10, 20, 5, 5)",
    )

    upgraded = await SqliteWatchStore.open(db_path)
    try:
        [kept] = await upgraded.active()
        assert (kept.task_id, kept.key_id, kept.interaction_token) == ("old-task", None, "token")
        # Watches from before the song files and buttons get Discord's default upload limit.
        assert kept.attachment_size_limit == 10 * 1024 * 1024
        assert not kept.notify_requester and not kept.announced and kept.audio is None
        assert await upgraded.acquire_lease("store", "first", ttl=15)
    finally:
        await upgraded.close()
    assert raw(db_path, "PRAGMA user_version") == [(len(MIGRATIONS),)]
    assert raw(db_path, "SELECT name, owner FROM leases") == [("store", "first")]


# Concurrency and durability


async def test_concurrent_adds_and_updates_lose_nothing(store: OpenStore) -> None:
    added = await asyncio.gather(*(store.add(new_watch(task_id=f"t{i}")) for i in range(200)))
    await asyncio.gather(
        *(store.set_fingerprint(w.id, f"fp-{w.task_id}") for w in added),
        *(store.set_message_id(w.id, w.id + 1000) for w in added),
        *(store.finish(w.id, WatchOutcome.FINISHED) for w in added[::4]),
        store.set_meta("busy", "yes"),
    )

    stored = await store.active()
    assert len({w.id for w in added}) == 200
    assert len(stored) == 150
    for watch in stored:
        assert watch.last_fingerprint == f"fp-{watch.task_id}"
        assert watch.message_id == watch.id + 1000


async def test_two_stores_on_one_database_lose_nothing(store_url: str) -> None:
    left = await open_store(store_url)
    right = await open_store(store_url)
    try:
        added = await asyncio.gather(
            *(left.add(new_watch(task_id=f"left{i}")) for i in range(100)),
            *(right.add(new_watch(task_id=f"right{i}")) for i in range(100)),
        )
        await asyncio.gather(
            *(left.set_fingerprint(w.id, "from-left") for w in added[100:]),
            *(right.set_fingerprint(w.id, "from-right") for w in added[:100]),
        )
        seen_left, seen_right = await left.active(), await right.active()
    finally:
        await left.close()
        await right.close()

    assert seen_left == seen_right
    assert len({w.id for w in added}) == 200
    assert {w.task_id for w in seen_left} == {w.task_id for w in added}
    for watch in seen_left:
        expected = "from-right" if watch.task_id.startswith("left") else "from-left"
        assert watch.last_fingerprint == expected


_KILLED_WRITER = """
import asyncio, os, signal, sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.tracking.store import NewWatch, SqliteWatchStore


async def main() -> None:
    store = await SqliteWatchStore.open(Path(sys.argv[1]))
    now = datetime.now(UTC)
    watch = await store.add(
        NewWatch("survivor", 1, None, None, 2, "en-US", True, 3, "token",
                 now + timedelta(minutes=15), now + timedelta(minutes=30))
    )
    await store.set_fingerprint(watch.id, "shown")
    await store.set_meta("synced", "yes")
    os.kill(os.getpid(), signal.SIGKILL)


asyncio.run(main())
"""


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
async def test_acknowledged_writes_survive_a_killed_process(db_path: Path) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _KILLED_WRITER, str(db_path), cwd=ROOT
    )
    assert await asyncio.wait_for(process.wait(), timeout=60) == -signal.SIGKILL
    # The process never closed the store, so the writes live only in the write-ahead log.
    assert db_path.with_name(db_path.name + "-wal").exists()

    reopened = await SqliteWatchStore.open(db_path)
    try:
        [watch] = await reopened.active()
        assert await reopened.get_meta("synced") == "yes"
    finally:
        await reopened.close()
    assert (watch.task_id, watch.last_fingerprint, watch.ephemeral) == ("survivor", "shown", True)


async def test_ten_thousand_active_watches_load_oldest_first(store: OpenStore) -> None:
    added = await asyncio.gather(*(store.add(new_watch(task_id=f"t{i}")) for i in range(12_000)))
    await asyncio.gather(*(store.finish(w.id, WatchOutcome.FINISHED) for w in added[:2_000]))

    active = await store.active()

    assert [w.id for w in active] == sorted(w.id for w in added[2_000:])


async def test_closing_twice_is_harmless(store_url: str) -> None:
    opened = await open_store(store_url)
    await opened.close()
    await opened.close()


# Buttons and what follows a finished task


async def test_a_watch_is_found_by_its_message(store: OpenStore) -> None:
    first = await store.add(new_watch(attachment_size_limit=25 * 1024 * 1024))
    await store.set_message_id(first.id, 777)
    found = await store.by_message(777)
    assert found is not None and found.id == first.id
    assert found.attachment_size_limit == 25 * 1024 * 1024
    assert await store.by_message(778) is None


async def test_subscribers_toggle_and_go_with_their_watch(store: OpenStore) -> None:
    watch = await store.add(new_watch())
    assert await store.toggle_subscriber(watch.id, 11) is True
    assert await store.toggle_subscriber(watch.id, 12) is True
    assert await store.toggle_subscriber(watch.id, 11) is False
    assert await store.subscribers(watch.id) == [12]
    await store.finish(watch.id, WatchOutcome.FINISHED)
    await store.prune_finished(datetime.now(UTC) + timedelta(seconds=1))
    assert await store.subscribers(watch.id) == []


async def test_the_completion_reply_is_claimed_once(store: OpenStore) -> None:
    watch = await store.add(new_watch(notify_requester=True))
    claims = await asyncio.gather(*(store.claim_announcement(watch.id) for _ in range(5)))
    assert sorted(claims) == [False, False, False, False, True]
    stored = await store.get(watch.id)
    assert stored is not None and stored.announced and stored.notify_requester


async def test_song_downloads_are_tried_a_few_times_then_never_again(
    store: OpenStore,
) -> None:
    watch = await store.add(new_watch())
    assert [await store.claim_audio_attempt(watch.id, 2) for _ in range(3)] == [True, True, False]
    other = await store.add(new_watch())
    assert await store.claim_audio_attempt(other.id, 2)
    await store.set_audio(other.id, AudioState.ATTACHED)
    assert not await store.claim_audio_attempt(other.id, 2)
    stored = await store.get(other.id)
    assert stored is not None and stored.audio is AudioState.ATTACHED


async def test_an_ended_watch_is_revived_with_a_new_token(store: OpenStore) -> None:
    watch = await store.add(new_watch())
    await store.finish(watch.id, WatchOutcome.TIMED_OUT)
    revived = await store.revive(
        watch.id,
        token="new-token",
        token_expires_at=NOW + timedelta(minutes=15),
        deadline_at=NOW + timedelta(hours=1),
    )
    assert revived.outcome is WatchOutcome.ACTIVE
    assert revived.interaction_token == "new-token"
    assert revived.deadline_at == NOW + timedelta(hours=1)
    assert [w.id for w in await store.active()] == [watch.id]


# Member and server relay keys


async def test_setting_a_key_again_replaces_it_in_its_row_so_its_watches_keep_it(
    store: OpenStore,
) -> None:
    first = await store.put_key("user", 7, b"ciphertext-1", "abcd")
    watch = await store.add(new_watch(key_id=first.id))
    second = await store.put_key("user", 7, b"ciphertext-2", "wxyz")
    assert second.id == first.id
    assert (second.ciphertext, second.last4) == (b"ciphertext-2", "wxyz")
    assert await store.get_key("user", 7) == second
    assert await store.get_key("guild", 7) is None  # a server's key is another owner's
    [active] = await store.active()
    assert active.key_id == watch.key_id == first.id


async def test_removing_a_key_deletes_its_row_and_ends_its_watches_only(
    store: OpenStore, store_url: str
) -> None:
    member = await store.put_key("user", 7, b"ciphertext-1", "abcd")
    server = await store.put_key("guild", 9, b"ciphertext-2", "wxyz")
    with_member = await store.add(new_watch(task_id="a", key_id=member.id))
    await store.add(new_watch(task_id="b", key_id=server.id))
    await store.add(new_watch(task_id="c"))
    assert await store.remove_key(member.id) == [with_member.id]
    assert await store.key_by_id(member.id) is None
    assert [(w.task_id, w.key_id) for w in await store.active()] == [
        ("b", server.id),
        ("c", None),
    ]
    assert await outcome_of(store_url, with_member.id, "outcome, key_id") == ("lost", None)
    assert [key.id for key in await store.all_keys()] == [server.id]


async def test_a_key_is_reencrypted_in_place_unless_it_was_set_anew_meanwhile(
    store: OpenStore,
) -> None:
    stored = await store.put_key("user", 7, b"old-ciphertext", "abcd")
    await store.replace_ciphertext(stored.id, b"old-ciphertext", b"rotated")
    assert (await store.get_key("user", 7)).ciphertext == b"rotated"  # type: ignore[union-attr]
    await store.replace_ciphertext(stored.id, b"old-ciphertext", b"stale")
    assert (await store.get_key("user", 7)).ciphertext == b"rotated"  # type: ignore[union-attr]


async def test_a_removed_keys_id_is_never_given_to_another_key(store: OpenStore) -> None:
    removed = await store.put_key("user", 7, b"ciphertext-1", "abcd")
    await store.remove_key(removed.id)
    other = await store.put_key("user", 8, b"ciphertext-2", "wxyz")
    assert other.id != removed.id
