"""The coordinator that shares tasks between processes, each on its own connection to a real
PostgreSQL: shares, shedding, leases lost, handovers, and release on stop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from bot.suno.errors import RelayError
from bot.suno.models import Task
from bot.tracking.cluster import ClusterTiming, Coordinator
from bot.tracking.ownership import MEMBER_PREFIX
from bot.tracking.poller import PollKey
from bot.tracking.postgres import PostgresWatchStore
from bot.tracking.store import Watch, WatchOutcome
from tests.test_store import new_watch

# Syncs only when a test runs one: the loop's own syncs are an hour apart.
TIMING = ClusterTiming(ttl=60, sync_every=3600)


def poll_key_of(watch: Watch) -> PollKey:
    return (watch.key_id, watch.task_id)


@dataclass
class Followed:
    """A tracker that only remembers what it was told to follow and drop."""

    watches: dict[int, Watch] = field(default_factory=dict)
    dropped: list[PollKey] = field(default_factory=list)
    controlled: list[tuple[str, int, bool]] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def follow(
        self,
        watch: Watch,
        *,
        task: Task | None,
        poll_now: bool = False,
        failure: RelayError | None = None,
    ) -> None:
        self.watches[watch.id] = watch
        self.changed.set()

    def drop(self, poll_key: PollKey) -> None:
        self.dropped.append(poll_key)
        self.watches = {i: w for i, w in self.watches.items() if poll_key_of(w) != poll_key}

    def following(self) -> list[int]:
        return list(self.watches)

    def stop(self, watch: Watch, *, here: bool = False) -> bool:
        self.controlled.append(("stop", watch.id, here))
        self.changed.set()
        return True

    def refresh(self, watch: Watch, *, here: bool = False) -> bool:
        self.controlled.append(("refresh", watch.id, here))
        self.changed.set()
        return True

    def polls(self, poll_key: PollKey) -> bool:
        return any(poll_key_of(w) == poll_key for w in self.watches.values())

    def tasks(self) -> set[str]:
        return {w.task_id for w in self.watches.values()}


@dataclass
class Member:
    store: PostgresWatchStore
    coordinator: Coordinator
    tracker: Followed


@pytest.fixture
async def members(postgres_url: str) -> AsyncIterator[list[Member]]:
    """Two processes' worth of store, coordinator and tracker; neither has joined yet."""
    made: list[Member] = []
    for name in ("a", "b"):
        store = await PostgresWatchStore.open(postgres_url)
        tracker = Followed()
        coordinator = Coordinator(store, name, TIMING)
        coordinator.attach(tracker)
        made.append(Member(store, coordinator, tracker))
    yield made
    for member in made:
        await member.coordinator.close()
        await member.store.close()


async def join(member: Member) -> int:
    assert await member.store.acquire_lease(
        f"{MEMBER_PREFIX}{member.coordinator.owner}", member.coordinator.owner, ttl=60
    )
    return await member.coordinator.start()


async def add_watches(store: PostgresWatchStore, tasks: int) -> list[Watch]:
    return [await store.add(new_watch(task_id=f"t{n}")) for n in range(tasks)]


async def test_processes_split_the_tasks_and_follow_every_watch_once(
    members: list[Member],
) -> None:
    a, b = members
    added = await add_watches(a.store, 10)
    assert await a.store.acquire_lease(f"{MEMBER_PREFIX}b", "b", ttl=60)  # b is starting too

    assert await join(a) == 5
    assert await join(b) == 5

    assert a.tracker.tasks().isdisjoint(b.tracker.tasks())
    assert {*a.tracker.watches, *b.tracker.watches} == {w.id for w in added}


async def test_a_process_holding_too_much_lets_the_newcomer_have_its_share(
    members: list[Member],
) -> None:
    a, b = members
    await add_watches(a.store, 10)
    assert await join(a) == 10

    await join(b)  # b finds nothing free yet: a holds everything
    await a.coordinator._sync()  # a sees two members and lets go of half
    await b.coordinator._sync()

    assert len(a.tracker.dropped) == 5
    assert len(a.tracker.tasks()) == len(b.tracker.tasks()) == 5
    assert a.tracker.tasks().isdisjoint(b.tracker.tasks())


async def test_a_task_whose_lease_another_process_took_is_no_longer_followed(
    members: list[Member], postgres_url: str
) -> None:
    a, _ = members
    await add_watches(a.store, 2)
    await join(a)
    async with a.store._pool.acquire() as connection:
        await connection.execute("UPDATE task_leases SET owner = 'thief' WHERE task_id = 't0'")

    await a.coordinator._sync()

    assert a.tracker.dropped == [(None, "t0")]
    assert a.tracker.tasks() == {"t1"}


async def test_a_watch_on_a_task_another_process_leads_is_followed_by_the_leader(
    members: list[Member],
) -> None:
    a, b = members
    [first] = await add_watches(a.store, 1)
    await join(a)
    await join(b)
    second = await b.store.add(new_watch(task_id=first.task_id))
    a.tracker.changed.clear()

    b.coordinator.offer(second, task=None, poll_now=True, failure=None)
    await asyncio.wait_for(a.tracker.changed.wait(), 10)

    assert set(a.tracker.watches) == {first.id, second.id}
    assert b.tracker.watches == {}


async def test_a_new_task_is_led_by_the_process_that_got_the_command(
    members: list[Member],
) -> None:
    a, b = members
    await join(a)
    await join(b)
    watch = await b.store.add(new_watch(task_id="fresh"))

    b.coordinator.offer(watch, task=None, poll_now=True, failure=None)
    await asyncio.wait_for(b.tracker.changed.wait(), 10)

    assert b.tracker.tasks() == {"fresh"}
    assert not await a.store.claim_task((None, "fresh"), "a", ttl=60)


async def test_a_task_with_no_watch_left_is_released(members: list[Member]) -> None:
    a, _ = members
    [watch] = await add_watches(a.store, 1)
    await join(a)
    await a.store.finish(watch.id, WatchOutcome.FINISHED)

    a.coordinator.watch_ended(watch.id)
    a.coordinator.task_done(poll_key_of(watch))
    await asyncio.gather(*a.coordinator._background._tasks)

    assert a.coordinator.held == set()
    assert await a.store.claim_task(poll_key_of(watch), "someone", ttl=60)


async def test_stopping_releases_every_task_for_the_others_at_once(
    members: list[Member],
) -> None:
    a, b = members
    await add_watches(a.store, 4)
    await join(a)
    await join(b)
    assert len(a.tracker.tasks()) == 4

    await a.coordinator.close()

    assert await b.store.claim_free_tasks("b", ttl=60, limit=10) != []
    assert await a.store.renew_tasks("a", ttl=60) == set()


async def test_without_the_notification_the_leader_finds_a_handed_over_watch_at_its_sync(
    members: list[Member], monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = members
    [first] = await add_watches(a.store, 1)
    await join(a)
    await join(b)

    async def lost_notification(watch: Watch) -> None:
        return None

    monkeypatch.setattr(b.store, "hand_over", lost_notification)
    second = await b.store.add(new_watch(task_id=first.task_id))
    b.coordinator.offer(second, task=None, poll_now=True, failure=None)
    await asyncio.gather(*b.coordinator._background._tasks)
    assert set(a.tracker.watches) == {first.id}

    await a.coordinator._sync()

    assert set(a.tracker.watches) == {first.id, second.id}
    assert b.tracker.watches == {}


async def test_one_task_id_with_two_keys_is_led_by_two_processes_and_handed_over_by_key(
    members: list[Member],
) -> None:
    a, b = members
    alice = await a.store.put_key("user", 1, b"ciphertext-a", "aaaa")
    bob = await a.store.put_key("user", 2, b"ciphertext-b", "bbbb")
    await join(a)
    await join(b)
    alices = await a.store.add(new_watch(task_id="shared", key_id=alice.id))
    a.coordinator.offer(alices, task=None, poll_now=True, failure=None)
    await asyncio.wait_for(a.tracker.changed.wait(), 10)
    bobs = await b.store.add(new_watch(task_id="shared", key_id=bob.id))
    b.coordinator.offer(bobs, task=None, poll_now=True, failure=None)
    await asyncio.wait_for(b.tracker.changed.wait(), 10)
    # A second watch with Alice's key, made at b: handed to a, which leads (Alice, shared).
    again = await b.store.add(new_watch(task_id="shared", key_id=alice.id))
    a.tracker.changed.clear()
    b.coordinator.offer(again, task=None, poll_now=True, failure=None)
    await asyncio.wait_for(a.tracker.changed.wait(), 10)

    assert a.coordinator.held == {(alice.id, "shared")}
    assert b.coordinator.held == {(bob.id, "shared")}
    assert set(a.tracker.watches) == {alices.id, again.id}
    assert set(b.tracker.watches) == {bobs.id}


async def test_a_button_pressed_on_another_process_is_done_by_the_one_that_follows_the_watch(
    members: list[Member],
) -> None:
    a, b = members
    [watch] = await add_watches(a.store, 1)
    await join(a)
    await join(b)
    assert set(a.tracker.watches) == {watch.id}
    a.tracker.changed.clear()

    b.coordinator.pass_on("stop", watch)
    await asyncio.wait_for(a.tracker.changed.wait(), 10)
    a.tracker.changed.clear()
    b.coordinator.pass_on("refresh", watch)
    await asyncio.wait_for(a.tracker.changed.wait(), 10)

    assert a.tracker.controlled == [("stop", watch.id, True), ("refresh", watch.id, True)]
    assert b.tracker.controlled == []
