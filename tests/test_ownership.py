"""Keeping the store's lease: wait for it, renew it, let go of it, stop when it is lost."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import closing
from pathlib import Path

import pytest

from bot.config import Settings
from bot.runner import check
from bot.tracking.ownership import (
    LEASE_TTL_SECONDS,
    RENEW_EVERY_SECONDS,
    STORE_LEASE,
    LeaseKeeper,
    LeaseLost,
    LeaseTiming,
    new_owner_id,
    while_owner,
)
from bot.tracking.store import Lease, SqliteWatchStore, StoreError
from tests.kit.fake_relay import FakeRelay

FAST = LeaseTiming(ttl=0.6, renew_every=0.2, retry_every=0.05, clock_check=0.05, stop_check=0.02)


class Service:
    """Stands in for the bot: work runs until `close()`; records when it started."""

    def __init__(self) -> None:
        self.started_at: float | None = None
        self.closes = 0
        self._closed = asyncio.Event()

    async def work(self) -> None:
        self.started_at = time.monotonic()
        await self._closed.wait()

    async def close(self) -> None:
        self.closes += 1
        self._closed.set()

    def is_closed(self) -> bool:
        return self._closed.is_set()


class FlakyRenewals:
    """A store whose renewals fail `failures` times (every time when None) with a StoreError."""

    def __init__(self, store: SqliteWatchStore, failures: int | None) -> None:
        self._store = store
        self._failures = failures

    async def acquire_lease(self, name: str, owner: str, ttl: float) -> bool:
        return await self._store.acquire_lease(name, owner, ttl)

    async def renew_lease(self, name: str, owner: str, ttl: float) -> bool:
        if self._failures is None or self._failures > 0:
            if self._failures is not None:
                self._failures -= 1
            raise StoreError("database file x: could not renew a lease (disk I/O error)")
        return await self._store.renew_lease(name, owner, ttl)

    async def release_lease(self, name: str, owner: str) -> bool:
        return await self._store.release_lease(name, owner)

    async def lease_holder(self, name: str) -> Lease | None:
        return await self._store.lease_holder(name)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "watches.sqlite3"


@pytest.fixture
async def stores(db_path: Path) -> AsyncIterator[tuple[SqliteWatchStore, SqliteWatchStore]]:
    """Two stores on one file, as two processes would have them."""
    first = await SqliteWatchStore.open(db_path)
    second = await SqliteWatchStore.open(db_path)
    yield first, second
    await first.close()
    await second.close()


def run_owner(
    store: SqliteWatchStore | FlakyRenewals,
    service: Service,
    owner: str,
    *,
    timing: LeaseTiming = FAST,
    clock: Callable[[], float] = time.time,
) -> asyncio.Task[None]:
    keeper = LeaseKeeper(store, owner=owner, timing=timing, clock=clock)
    return asyncio.create_task(
        while_owner(
            store, service.work, stopped=service.is_closed, stop=service.close, keeper=keeper
        )
    )


async def eventually(predicate: Callable[[], bool], timeout: float = 5) -> None:  # noqa: ASYNC109
    async with asyncio.timeout(timeout):
        while not predicate():  # noqa: ASYNC110
            await asyncio.sleep(0.01)


async def holder_of(store: SqliteWatchStore) -> str | None:
    lease = await store.lease_holder(STORE_LEASE)
    return lease.owner if lease else None


def waiting_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "holds the store" in r.getMessage()]


async def stopped(task: Awaitable[None], service: Service) -> None:
    await service.close()
    await asyncio.wait_for(task, timeout=5)


def test_the_numbers_leave_two_renewals_of_slack_before_a_lease_lapses() -> None:
    assert LEASE_TTL_SECONDS == 15
    assert RENEW_EVERY_SECONDS * 3 == LEASE_TTL_SECONDS


def test_owner_ids_name_the_host_and_process_and_differ_per_keeper() -> None:
    first, second = new_owner_id(), new_owner_id()
    assert first != second
    assert first.split(":")[1] == second.split(":")[1]


async def test_a_free_store_is_held_at_once_and_released_after_the_work(
    stores: tuple[SqliteWatchStore, SqliteWatchStore], caplog: pytest.LogCaptureFixture
) -> None:
    store, observer = stores
    caplog.set_level(logging.INFO, "bot.tracking.ownership")
    service = Service()
    task = run_owner(store, service, "first")
    await eventually(lambda: service.started_at is not None)
    assert await holder_of(observer) == "first"

    await stopped(task, service)

    assert await holder_of(observer) is None
    assert any("holding the store as first" in r.getMessage() for r in caplog.records)
    assert any(r.getMessage() == "released the store" for r in caplog.records)
    assert not waiting_lines(caplog)


async def test_a_second_owner_waits_with_one_line_and_takes_over_when_the_first_stops(
    stores: tuple[SqliteWatchStore, SqliteWatchStore], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "bot.tracking.ownership")
    first, second = Service(), Service()
    first_task = run_owner(stores[0], first, "first")
    await eventually(lambda: first.started_at is not None)

    second_task = run_owner(stores[1], second, "second")
    await asyncio.sleep(FAST.ttl * 3)  # dozens of tries and several renewals of the first
    assert second.started_at is None
    [line] = waiting_lines(caplog)
    assert line.startswith("another instance (first) holds the store until ")
    assert "UTC; waiting" in line

    await stopped(first_task, first)
    stopped_at = time.monotonic()
    await eventually(lambda: second.started_at is not None)
    assert second.started_at is not None
    assert second.started_at - stopped_at < FAST.retry_every + 0.5
    assert any("took over the store from first" in r.getMessage() for r in caplog.records)
    assert len(waiting_lines(caplog)) == 1
    await stopped(second_task, second)


async def test_when_the_holder_dies_without_releasing_the_lease_lapses_and_is_taken(
    stores: tuple[SqliteWatchStore, SqliteWatchStore],
) -> None:
    crashed, survivor = stores
    assert await crashed.acquire_lease(STORE_LEASE, "crashed", ttl=FAST.ttl)
    taken_at = time.monotonic()
    service = Service()

    task = run_owner(survivor, service, "survivor")
    await eventually(lambda: service.started_at is not None)

    assert service.started_at is not None
    assert FAST.ttl <= service.started_at - taken_at < FAST.ttl + FAST.retry_every + 0.5
    await stopped(task, service)


async def test_a_stop_while_waiting_ends_the_wait_without_running_the_work(
    stores: tuple[SqliteWatchStore, SqliteWatchStore],
) -> None:
    holder, waiter = stores
    assert await holder.acquire_lease(STORE_LEASE, "holder", ttl=60)
    service = Service()
    slow = LeaseTiming(ttl=60, renew_every=20, retry_every=30, clock_check=1, stop_check=0.05)
    task = run_owner(waiter, service, "waiter", timing=slow)
    await asyncio.sleep(0.2)

    asked = time.monotonic()
    await stopped(task, service)

    assert time.monotonic() - asked < 0.5  # not the 30 s until the next try
    assert service.started_at is None
    assert await holder_of(waiter) == "holder"


async def test_a_holder_whose_lease_was_taken_while_suspended_stops_at_once(
    stores: tuple[SqliteWatchStore, SqliteWatchStore], db_path: Path
) -> None:
    store, thief_store = stores
    wall = [time.time()]
    # Renewals are 10 s apart: only the wall clock's jump can make this one come early.
    timing = LeaseTiming(ttl=30, renew_every=10, retry_every=0.05, clock_check=0.05)
    service = Service()
    task = run_owner(store, service, "sleeper", timing=timing, clock=lambda: wall[0])
    await eventually(lambda: service.started_at is not None)

    # The machine sleeps for a minute: the lease lapses and another instance takes it.
    with closing(sqlite3.connect(db_path)) as connection, connection:
        connection.execute("UPDATE leases SET expires_at = expires_at - 60")
    assert await thief_store.acquire_lease(STORE_LEASE, "thief", ttl=30)
    woke = time.monotonic()
    wall[0] += 60

    with pytest.raises(LeaseLost) as lost:
        await asyncio.wait_for(task, timeout=5)

    assert time.monotonic() - woke < 1
    assert service.closes == 1
    assert "lost the store to another instance (thief)" in str(lost.value)
    assert "stopped editing and shutting down" in str(lost.value)
    assert await holder_of(thief_store) == "thief"  # a lost lease is not released


async def test_the_holder_renews_so_its_lease_outlives_the_ttl(
    stores: tuple[SqliteWatchStore, SqliteWatchStore],
) -> None:
    store, observer = stores
    service = Service()
    task = run_owner(store, service, "steady")
    await eventually(lambda: service.started_at is not None)

    await asyncio.sleep(FAST.ttl * 3)

    assert await holder_of(observer) == "steady"
    assert not await observer.acquire_lease(STORE_LEASE, "intruder", ttl=FAST.ttl)
    await stopped(task, service)


async def test_a_failed_renewal_is_tried_again_while_the_lease_lasts(
    stores: tuple[SqliteWatchStore, SqliteWatchStore], caplog: pytest.LogCaptureFixture
) -> None:
    store, observer = stores
    service = Service()
    task = run_owner(FlakyRenewals(store, failures=2), service, "patient")
    await eventually(lambda: service.started_at is not None)

    await asyncio.sleep(FAST.ttl * 3)

    assert not service.is_closed()
    assert await holder_of(observer) == "patient"
    assert sum("could not renew the store lease" in r.getMessage() for r in caplog.records) == 2
    await stopped(task, service)


async def test_renewals_failing_until_the_lease_lapses_stop_the_work(
    stores: tuple[SqliteWatchStore, SqliteWatchStore],
) -> None:
    store, _ = stores
    service = Service()
    task = run_owner(FlakyRenewals(store, failures=None), service, "unlucky")
    await eventually(lambda: service.started_at is not None)

    with pytest.raises(LeaseLost, match="could not renew the store lease before it lapsed"):
        await asyncio.wait_for(task, timeout=5)
    assert service.closes == 1


async def test_the_lease_is_released_when_the_work_fails(
    stores: tuple[SqliteWatchStore, SqliteWatchStore],
) -> None:
    store, observer = stores

    async def failing() -> None:
        raise RuntimeError("login refused")

    keeper = LeaseKeeper(store, owner="failing", timing=FAST)
    with pytest.raises(RuntimeError, match="login refused"):
        await while_owner(
            store, failing, stopped=lambda: False, stop=Service().close, keeper=keeper
        )

    assert await holder_of(observer) is None


async def test_a_cancelled_owner_still_releases_the_lease(
    stores: tuple[SqliteWatchStore, SqliteWatchStore],
) -> None:
    store, observer = stores
    entered = asyncio.Event()

    async def forever() -> None:
        entered.set()
        await asyncio.Event().wait()

    keeper = LeaseKeeper(store, owner="cancelled", timing=FAST)
    task = asyncio.create_task(
        while_owner(store, forever, stopped=lambda: False, stop=Service().close, keeper=keeper)
    )
    await entered.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert await holder_of(observer) is None


async def test_check_names_the_instance_holding_the_store(
    stores: tuple[SqliteWatchStore, SqliteWatchStore],
    db_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    running, _ = stores
    async with FakeRelay(api_key="sk-check") as relay:
        settings = Settings(
            _env_file=None,
            DISCORD_TOKEN="discord-token-for-check",
            SUNO_API_BASE_URL=relay.base_url,
            SUNO_API_KEY="sk-check",
            DATABASE_URL=f"sqlite:///{db_path}",
        )
        assert await running.acquire_lease(STORE_LEASE, "web-1:42:abcdef", ttl=15)
        assert await check(settings) == 0
        assert await running.release_lease(STORE_LEASE, "web-1:42:abcdef")
        assert await check(settings) == 0
    held, free = [line for line in capsys.readouterr().out.splitlines() if "database opens" in line]

    assert held.startswith(f"ok    database opens ({db_path}); held by web-1:42:abcdef until 20")
    assert held.endswith(" UTC")
    assert free == f"ok    database opens ({db_path}); no running instance holds it"
