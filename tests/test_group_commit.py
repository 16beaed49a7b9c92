"""Concurrent store writes share transactions, and each is committed before its caller resumes."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.tracking import store as store_module
from bot.tracking.store import SqliteWatchStore, StoreError, WatchOutcome
from tests.test_store import new_watch, raw


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "watches.sqlite3"


@pytest.fixture
async def store(db_path: Path) -> AsyncIterator[SqliteWatchStore]:
    opened = await SqliteWatchStore.open(db_path)
    yield opened
    await opened.close()


def committed_transactions(store: SqliteWatchStore) -> int:
    return store._commits.batches


async def test_a_burst_of_commands_shares_a_few_transactions_and_every_watch_is_in_the_file(
    store: SqliteWatchStore, db_path: Path
) -> None:
    before = committed_transactions(store)
    watches = await asyncio.gather(
        *(store.add(new_watch(task_id=f"task-{number}")) for number in range(500))
    )
    transactions = committed_transactions(store) - before
    # The first write starts a batch alone; everything queued while it commits shares the next.
    assert transactions <= 3
    assert sorted(watch.id for watch in watches) == list(range(1, 501))
    # Committed before `add` returned: another connection reads every row now.
    stored = raw(db_path, "SELECT id, task_id FROM watches ORDER BY id")
    assert stored == sorted((watch.id, watch.task_id) for watch in watches)


async def test_ids_keep_counting_after_rows_are_added_by_an_earlier_process(
    db_path: Path,
) -> None:
    first = await SqliteWatchStore.open(db_path)
    earlier = [await first.add(new_watch()) for _ in range(3)]
    await first.close()
    second = await SqliteWatchStore.open(db_path)
    try:
        later = await asyncio.gather(*(second.add(new_watch()) for _ in range(4)))
    finally:
        await second.close()
    assert [watch.id for watch in earlier] == [1, 2, 3]
    assert sorted(watch.id for watch in later) == [4, 5, 6, 7]


async def test_mixed_writes_in_one_batch_keep_their_order_and_their_answers(
    store: SqliteWatchStore, db_path: Path
) -> None:
    watch = await store.add(new_watch())
    other = await store.add(new_watch())
    await store.finish(other.id, WatchOutcome.LOST)
    results = await asyncio.gather(
        store.set_message_id(watch.id, 77),
        store.set_fingerprint(watch.id, "first"),
        store.set_fingerprint(watch.id, "second"),
        store.finish(watch.id, WatchOutcome.FINISHED),
        # A second finish keeps the first outcome; an already finished watch is no error.
        store.finish(watch.id, WatchOutcome.TIMED_OUT),
        store.finish(other.id, WatchOutcome.FINISHED),
        store.set_fingerprint(999, "nobody"),
        return_exceptions=True,
    )
    assert results[:6] == [None] * 6
    assert isinstance(results[6], LookupError)
    rows = raw(db_path, "SELECT id, message_id, last_fingerprint, outcome FROM watches ORDER BY id")
    assert rows == [(watch.id, 77, "second", "finished"), (other.id, None, None, "lost")]


async def test_a_failing_batch_fails_every_write_in_it_and_the_store_goes_on(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_module, "BUSY_TIMEOUT_MS", 50)
    store = await SqliteWatchStore.open(db_path)
    # Another connection holds the write lock longer than the busy timeout allows.
    blocker = sqlite3.connect(db_path, isolation_level=None, timeout=0)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        results = await asyncio.gather(
            *(store.add(new_watch(task_id=f"task-{n}")) for n in range(5)),
            return_exceptions=True,
        )
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert all(isinstance(result, StoreError) for result in results)
    assert "could not record a new watch" in str(results[0])
    # Nothing half-written, and the next writes go through.
    assert raw(db_path, "SELECT count(*) FROM watches") == [(0,)]
    later = await store.add(new_watch())
    await store.close()
    assert raw(db_path, "SELECT id FROM watches") == [(later.id,)]


async def test_a_cancelled_caller_does_not_lose_a_write_another_caller_shares(
    store: SqliteWatchStore, db_path: Path
) -> None:
    watch = await store.add(new_watch())
    cancelled = asyncio.ensure_future(store.set_message_id(watch.id, 5))
    kept = asyncio.ensure_future(store.set_fingerprint(watch.id, "shown"))
    await asyncio.sleep(0)
    cancelled.cancel()
    await kept
    await store._commits.flush()
    assert raw(db_path, "SELECT message_id, last_fingerprint FROM watches") == [(5, "shown")]


async def test_closing_commits_what_was_queued(db_path: Path) -> None:
    store = await SqliteWatchStore.open(db_path)
    watch = await store.add(new_watch())
    pending = asyncio.ensure_future(store.set_fingerprint(watch.id, "last"))
    await asyncio.sleep(0)
    await store.close()
    await pending
    assert raw(db_path, "SELECT last_fingerprint FROM watches") == [("last",)]
