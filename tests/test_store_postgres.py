"""What is particular to the PostgreSQL store: its migrations, its errors, and the task leases
and handovers that let several processes share it — against a real PostgreSQL server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest

from bot.tracking import postgres as postgres_module
from bot.tracking.poller import PollKey
from bot.tracking.postgres import MIGRATIONS, PostgresWatchStore, redacted
from bot.tracking.store import AudioState, StoreError, WatchOutcome
from tests.kit.postgres_server import PostgresServer
from tests.test_store import new_watch


async def query(url: str, sql: str, *args: object) -> list[tuple[object, ...]]:
    """Rows read straight from the database, bypassing the store."""
    connection = await asyncpg.connect(url)
    try:
        return [tuple(row.values()) for row in await connection.fetch(sql, *args)]
    finally:
        await connection.close()


@pytest.fixture
async def store(postgres_url: str) -> AsyncIterator[PostgresWatchStore]:
    opened = await PostgresWatchStore.open(postgres_url)
    yield opened
    await opened.close()


# Schema and migrations


async def test_a_new_database_gets_every_migration_once(postgres_url: str) -> None:
    opened = await PostgresWatchStore.open(postgres_url)
    await opened.close()

    versions = await query(postgres_url, "SELECT version FROM schema_migrations ORDER BY version")
    assert versions == [(n,) for n in range(1, len(MIGRATIONS) + 1)]
    tables = {
        row[0]
        for row in await query(
            postgres_url,
            "SELECT table_name FROM information_schema.tables"
            " WHERE table_schema = current_schema()",
        )
    }
    assert {"watches", "meta", "leases", "task_leases", "schema_migrations"} <= tables


async def test_a_database_from_its_first_version_is_upgraded_keeping_watches_and_leases(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as patched:
        patched.setattr(postgres_module, "MIGRATIONS", MIGRATIONS[:1])
        before = await PostgresWatchStore.open(postgres_url)
        await before.close()
    # What that version wrote: a watch and its task's lease.
    await query(
        postgres_url,
        "INSERT INTO watches (task_id, application_id, requester_id, locale, ephemeral,"
        " interaction_id, token_expires_at, deadline_at, created_at, updated_at)"
        " VALUES ('kept', 1, 2, 'en-US', false, 3, now(), now(), now(), now())",
    )
    await query(
        postgres_url,
        "INSERT INTO task_leases (task_id, owner, expires_at)"
        " VALUES ('kept', 'leader', now() + interval '1 hour')",
    )
    await query(
        postgres_url,
        "INSERT INTO watches (task_id, application_id, requester_id, locale, ephemeral,"
        " interaction_id, token_expires_at, deadline_at, created_at, updated_at, outcome)"
        " VALUES ('ended', 1, 2, 'en-US', false, 4, now(), now(), now(), now(), 'finished')",
    )

    upgraded = await PostgresWatchStore.open(postgres_url)
    try:
        [kept] = await upgraded.active()
        assert (kept.task_id, kept.key_id) == ("kept", None)
        # A watch that ended before songs and buttons existed has nothing left to follow it.
        ended = await upgraded.by_interaction(4)
        assert ended is not None and ended.announced and ended.audio is AudioState.GIVEN_UP
        assert not await upgraded.claim_announcement(ended.id)
        # The lease is the operator's key's now; the same task id with a member's key is free.
        assert not await upgraded.claim_task((None, "kept"), "other", ttl=15)
        key = await upgraded.put_key("user", 7, b"ciphertext", "abcd")
        assert await upgraded.claim_task((key.id, "kept"), "other", ttl=15)
        assert await upgraded.renew_tasks("leader", ttl=15) == {(None, "kept")}
    finally:
        await upgraded.close()
    versions = await query(postgres_url, "SELECT max(version) FROM schema_migrations")
    assert versions == [(len(MIGRATIONS),)]


async def test_processes_starting_together_apply_each_step_once(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    counting_step = (
        "INSERT INTO meta (key, value) VALUES ('step_runs', '1')"
        " ON CONFLICT (key) DO UPDATE SET value = (meta.value::int + 1)::text",
    )
    monkeypatch.setattr(postgres_module, "MIGRATIONS", [*MIGRATIONS, counting_step])

    stores = await asyncio.gather(*(PostgresWatchStore.open(postgres_url) for _ in range(6)))
    try:
        assert {await s.get_meta("step_runs") for s in stores} == {"1"}
    finally:
        for opened in stores:
            await opened.close()
    reopened = await PostgresWatchStore.open(postgres_url)
    try:
        assert await reopened.get_meta("step_runs") == "1"
    finally:
        await reopened.close()


async def test_a_failed_step_leaves_the_previous_version_and_the_data(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = await PostgresWatchStore.open(postgres_url)
    kept = await first.add(new_watch())
    await first.close()
    monkeypatch.setattr(
        postgres_module,
        "MIGRATIONS",
        [*MIGRATIONS, ("ALTER TABLE watches ADD COLUMN x INT", "SELECT no_such_function()")],
    )

    with pytest.raises(StoreError, match="schema"):
        await PostgresWatchStore.open(postgres_url)

    assert await query(postgres_url, "SELECT max(version) FROM schema_migrations") == [
        (len(MIGRATIONS),)
    ]
    monkeypatch.setattr(postgres_module, "MIGRATIONS", MIGRATIONS)
    reopened = await PostgresWatchStore.open(postgres_url)
    try:
        assert await reopened.active() == [kept]
    finally:
        await reopened.close()


async def test_a_database_from_a_newer_version_is_refused(postgres_url: str) -> None:
    opened = await PostgresWatchStore.open(postgres_url)
    await opened.close()
    await query(postgres_url, "INSERT INTO schema_migrations (version) VALUES (99)")

    with pytest.raises(StoreError, match="schema version 99") as caught:
        await PostgresWatchStore.open(postgres_url)

    assert "newer bot" in str(caught.value)


async def test_a_database_of_another_program_is_refused_untouched(postgres_url: str) -> None:
    await query(postgres_url, "CREATE TABLE invoices (id INT)")

    with pytest.raises(StoreError, match="invoices"):
        await PostgresWatchStore.open(postgres_url)

    assert await query(
        postgres_url, "SELECT to_regclass('watches') IS NULL, to_regclass('schema_migrations')"
    ) == [(True, None)]


# Errors


async def test_wrong_password_is_refused_without_showing_it(
    postgres_server: PostgresServer,
) -> None:
    url = postgres_server.url().replace(":test-password@", ":s3cret-wrong@")

    with pytest.raises(StoreError, match="refused the bot's login") as caught:
        await PostgresWatchStore.open(url)

    assert "s3cret-wrong" not in str(caught.value)
    assert f"bot@127.0.0.1:{postgres_server.port}/postgres" in str(caught.value)


async def test_a_server_that_does_not_answer_is_a_store_error(
    postgres_server: PostgresServer,
) -> None:
    # The port of a server that is not there: take a free one and let it go.
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"postgresql://bot:pw@127.0.0.1:{port}/db"

    with pytest.raises(StoreError, match="cannot connect to PostgreSQL") as caught:
        await PostgresWatchStore.open(url)

    assert ":pw@" not in str(caught.value)


async def test_a_missing_database_is_named(postgres_server: PostgresServer) -> None:
    with pytest.raises(StoreError, match="does not exist"):
        await PostgresWatchStore.open(postgres_server.url("no_such_database"))


def test_redacted_urls_keep_everything_but_the_password() -> None:
    assert redacted("postgresql://bot:pw@db:5432/suno?sslmode=require") == (
        "postgresql://bot@db:5432/suno?sslmode=require"
    )
    assert redacted("postgresql://db/suno") == "postgresql://db/suno"


async def test_the_store_outlives_its_connections_being_cut(postgres_url: str) -> None:
    opened = await PostgresWatchStore.open(postgres_url)
    added = await opened.add(new_watch())
    await query(
        postgres_url,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    try:
        # A statement on a cut connection fails as a StoreError (never anything else) if the
        # pool had not noticed yet; the next statement gets a new connection.
        try:
            await opened.finish(added.id, WatchOutcome.FINISHED)
        except StoreError as exc:
            assert "could not finish a watch" in str(exc)
            await opened.finish(added.id, WatchOutcome.FINISHED)
        assert await opened.active() == []
    finally:
        await opened.close()


# Task leases


async def test_one_task_id_polled_with_two_keys_is_two_leases_with_a_leader_each(
    store: PostgresWatchStore,
) -> None:
    alice = await store.put_key("user", 1, b"ciphertext-a", "aaaa")
    bob = await store.put_key("user", 2, b"ciphertext-b", "bbbb")
    for key_id in (alice.id, bob.id, None):
        await store.add(new_watch(task_id="shared", key_id=key_id))
    assert await store.active_task_count() == 3

    assert await store.claim_task((alice.id, "shared"), "p1", ttl=15)
    assert not await store.claim_task((alice.id, "shared"), "p2", ttl=15)
    assert await store.claim_task((bob.id, "shared"), "p2", ttl=15)
    assert await store.claim_free_tasks("p3", ttl=15, limit=10) == [(None, "shared")]

    assert await store.renew_tasks("p1", ttl=15) == {(alice.id, "shared")}
    assert await store.renew_tasks("p2", ttl=15) == {(bob.id, "shared")}
    [bobs] = await store.unfollowed_watches("p2", [])
    assert bobs.key_id == bob.id
    assert await store.release_tasks("p1", [(bob.id, "shared")]) == 0  # not p1's to release
    assert await store.release_tasks("p2", [(bob.id, "shared")]) == 1
    assert await store.claim_free_tasks("p1", ttl=15, limit=10) == [(bob.id, "shared")]


async def test_exactly_one_process_leads_a_task(store: PostgresWatchStore) -> None:
    won = await asyncio.gather(
        *(store.claim_task((None, "task"), f"p{i}", ttl=15) for i in range(8))
    )

    assert sum(won) == 1
    leader = f"p{won.index(True)}"
    assert await store.claim_task((None, "task"), leader, ttl=15)
    assert not await store.claim_task((None, "task"), "late", ttl=15)


async def test_an_expired_task_lease_goes_to_another_process(
    store: PostgresWatchStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [1_000_000.0]
    monkeypatch.setattr(postgres_module, "_now", lambda: now[0])
    assert await store.claim_task((None, "task"), "dead", ttl=15)
    now[0] += 14.9
    assert not await store.claim_task((None, "task"), "other", ttl=15)
    now[0] += 0.2

    assert await store.claim_task((None, "task"), "other", ttl=15)
    assert await store.renew_tasks("dead", ttl=15) == set()
    assert await store.renew_tasks("other", ttl=15) == {(None, "task")}


async def test_free_tasks_are_split_between_claimants_without_overlap(
    store: PostgresWatchStore,
) -> None:
    for i in range(300):
        await store.add(new_watch(task_id=f"t{i % 100}"))
    others = [await PostgresWatchStore.open(store._url) for _ in range(3)]
    try:
        claims = await asyncio.gather(
            *(s.claim_free_tasks(f"p{i}", ttl=15, limit=40) for i, s in enumerate(others))
        )
        rest = await store.claim_free_tasks("p3", ttl=15, limit=1000)
    finally:
        for opened in others:
            await opened.close()

    everything = [task for claim in [*claims, rest] for task in claim]
    assert sorted(task_id for _, task_id in everything) == sorted(f"t{i}" for i in range(100))
    assert all(len(claim) <= 40 for claim in claims)
    assert await store.claim_free_tasks("p4", ttl=15, limit=10) == []


async def test_tasks_without_active_watches_are_not_claimed(store: PostgresWatchStore) -> None:
    done = await store.add(new_watch(task_id="done"))
    await store.finish(done.id, WatchOutcome.FINISHED)
    await store.add(new_watch(task_id="live"))

    assert await store.claim_free_tasks("p", ttl=15, limit=10) == [(None, "live")]


async def test_the_leader_reads_only_the_watches_it_does_not_follow_yet(
    store: PostgresWatchStore,
) -> None:
    first = await store.add(new_watch(task_id="mine"))
    second = await store.add(new_watch(task_id="mine"))
    await store.add(new_watch(task_id="theirs"))
    assert await store.claim_task((None, "mine"), "me", ttl=15)
    assert await store.claim_task((None, "theirs"), "them", ttl=15)

    assert [w.id for w in await store.unfollowed_watches("me", [])] == [first.id, second.id]
    assert [w.id for w in await store.unfollowed_watches("me", [first.id])] == [second.id]


async def test_released_tasks_are_free_and_the_others_are_told(
    store: PostgresWatchStore,
) -> None:
    await store.add(new_watch(task_id="a"))
    await store.add(new_watch(task_id="b"))
    assert sorted(await store.claim_free_tasks("me", ttl=15, limit=10)) == [
        (None, "a"),
        (None, "b"),
    ]
    listener = await PostgresWatchStore.open(store._url)
    told: asyncio.Queue[str] = asyncio.Queue()
    await listener.listen(lambda *_: None, told.put_nowait)
    try:
        assert await store.release_tasks("me", [(None, "a")]) == 1
        assert await asyncio.wait_for(told.get(), 10) == "me"
        assert await listener.claim_free_tasks("other", ttl=15, limit=10) == [(None, "a")]
        assert await store.release_tasks("me") == 1
        assert await listener.claim_free_tasks("other", ttl=15, limit=10) == [(None, "b")]
    finally:
        await listener.close()


async def test_a_handed_over_watch_reaches_every_listener_with_its_key(
    store: PostgresWatchStore,
) -> None:
    listener = await PostgresWatchStore.open(store._url)
    heard: asyncio.Queue[tuple[int, PollKey]] = asyncio.Queue()
    await listener.listen(
        lambda watch_id, poll_key: heard.put_nowait((watch_id, poll_key)), lambda _: None
    )
    try:
        key = await store.put_key("user", 7, b"ciphertext", "abcd")
        added = await store.add(new_watch(task_id="task_x"))
        keyed = await store.add(new_watch(task_id="task:y", key_id=key.id))
        await store.hand_over(added)
        await store.hand_over(keyed)
        assert await asyncio.wait_for(heard.get(), 10) == (added.id, (None, "task_x"))
        assert await asyncio.wait_for(heard.get(), 10) == (keyed.id, (key.id, "task:y"))
        assert await listener.active_watch(added.id) == added
        assert await listener.active_watch(keyed.id) == keyed
    finally:
        await listener.close()


async def test_members_are_counted_by_their_unexpired_leases(
    store: PostgresWatchStore,
) -> None:
    assert await store.acquire_lease("member:a", "a", ttl=15)
    assert await store.acquire_lease("member:b", "b", ttl=15)
    assert await store.acquire_lease("store", "a", ttl=15)

    assert await store.lease_count("member:") == 2
    assert await store.release_lease("member:b", "b")
    assert await store.lease_count("member:") == 1


async def test_pruning_also_drops_leases_that_lapsed_before_the_cutoff(
    store: PostgresWatchStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [1_000_000.0]
    monkeypatch.setattr(postgres_module, "_now", lambda: now[0])
    assert await store.acquire_lease("member:crashed", "crashed", ttl=15)
    assert await store.claim_task((None, "orphan"), "crashed", ttl=15)
    now[0] += 3600
    assert await store.acquire_lease("member:alive", "alive", ttl=15)

    await store.prune_finished(datetime.fromtimestamp(now[0] - 60, UTC))

    assert await query(store._url, "SELECT name FROM leases") == [("member:alive",)]
    assert await query(store._url, "SELECT task_id FROM task_leases") == []
