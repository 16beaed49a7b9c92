"""Several `python -m bot` processes, each with its own shards, on one real PostgreSQL: one
process polls each task and edits every message watching it; a killed or stopped process's
tasks go on elsewhere, and every watch reaches its final state."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from cryptography.fernet import Fernet

from tests.kit.bot_process import BotProcess
from tests.kit.fake_discord import FAKE_BOT_TOKEN, FakeDiscord, FakeMessage
from tests.kit.fake_relay import FakeRelay
from tests.kit.harness import text_of
from tests.kit.payloads import clip, clip_ids_for, task_payload
from tests.test_e2e_keys import ALICE, BOB, KEY_A, KEY_B, run, set_key
from tests.test_e2e_song_card import button

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

# Short leases, so that a killed process's tasks are taken over within seconds.
LEASE_SECONDS = "3"
JOINED = "holding its place in the cluster as"


@pytest.fixture
async def relay() -> AsyncIterator[FakeRelay]:
    """A relay that takes any key: each process has its own, so every poll names its sender."""
    async with FakeRelay(api_key=None) as relay:
        yield relay


@pytest.fixture
async def launched() -> AsyncIterator[list[BotProcess]]:
    """The processes a test started; whatever is left running is killed at the end."""
    made: list[BotProcess] = []
    yield made
    for process in made:
        await process.kill()


@pytest.fixture
def cluster(
    fake: FakeDiscord,
    relay: FakeRelay,
    postgres_url: str,
    database: Path,
    launched: list[BotProcess],
) -> list[BotProcess]:
    """Two processes on one PostgreSQL, shards 0 and 1 of 2 (not started yet)."""
    return [
        cluster_process(fake, relay, postgres_url, database, launched, shard) for shard in (0, 1)
    ]


def cluster_process(
    fake: FakeDiscord,
    relay: FakeRelay,
    postgres_url: str,
    database: Path,
    launched: list[BotProcess],
    shard: int,
    lease_seconds: str = LEASE_SECONDS,
    **env: str,
) -> BotProcess:
    process = BotProcess.against(
        fake,
        relay,
        database,  # unused: DATABASE_URL names PostgreSQL
        DATABASE_URL=postgres_url,
        SHARD_COUNT="2",
        SHARD_IDS=str(shard),
        SUNO_API_KEY=f"key-{shard}",
        CLUSTER_LEASE_SECONDS=lease_seconds,
        # Shares are whole batches: one task per batch lets a handful of tasks be shared.
        SUNO_BATCH_SIZE="1",
        **env,
    )
    launched.append(process)
    return process


def progressing(task_id: str) -> list[dict[str, object]]:
    ids = clip_ids_for(task_id, 2)
    return [
        task_payload(
            task_id, "IN_PROGRESS", f"{n}%", clips=[clip("nested", i, "streaming") for i in ids]
        )
        for n in range(1, 99)
    ]


def finished(task_id: str) -> dict[str, object]:
    return task_payload(
        task_id, "SUCCESS", clips=[clip("nested", i) for i in clip_ids_for(task_id, 2)]
    )


def is_done(message: FakeMessage) -> bool:
    return "**Status:** Done" in text_of(message)


def live_updates_ended(message: FakeMessage) -> bool:
    return "Live updates ended" in text_of(message)


def done_edits(message: FakeMessage) -> int:
    return sum("**Status:** Done" in json.dumps(e.payload) for e in message.edits)


def polls_by(relay: FakeRelay, task_id: str, shard: int) -> int:
    """How many relay requests the process of `shard` made for `task_id`."""
    return sum(
        1
        for request in relay.requests
        if task_id in request.task_ids and request.authorization == f"Bearer key-{shard}"
    )


async def rows(url: str, sql: str, *args: object) -> list[tuple[object, ...]]:
    connection = await asyncpg.connect(url)
    try:
        return [tuple(row.values()) for row in await connection.fetch(sql, *args)]
    finally:
        await connection.close()


async def until_rows(
    url: str,
    sql: str,
    expected: list[tuple[object, ...]],
    *args: object,
    timeout: float = 30,  # noqa: ASYNC109
) -> None:
    """Waits until the query answers `expected`; fails with its last answer otherwise."""
    answer = await rows(url, sql, *args)
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            while answer != expected:
                await asyncio.sleep(0.1)
                answer = await rows(url, sql, *args)
    assert answer == expected


def owner_of(process: BotProcess) -> str:
    [line, *_] = process.lines_with(JOINED)
    return line.split(JOINED, 1)[1].split()[0]


async def watch(fake: FakeDiscord, task_id: str, *, user_id: int = ALICE) -> FakeMessage:
    """/suno status for `task_id`, sent to the newest connected process; its message."""
    interaction = await fake.interact(options={"task_id": task_id}, user_id=user_id)
    await interaction.wait_callback()
    message = fake.message_for(interaction)
    assert message is not None
    return message


async def both_running(fake: FakeDiscord, cluster: list[BotProcess]) -> None:
    first, second = cluster
    await first.start()
    await first.wait_for_line(JOINED)
    await fake.wait_for(lambda: fake.ready_count >= 1, timeout=30)
    await second.start()
    await second.wait_for_line(JOINED)
    await fake.wait_for(lambda: fake.ready_count >= 2, timeout=30)


async def test_a_watch_on_a_task_another_process_leads_is_kept_current_by_that_leader(
    fake: FakeDiscord, relay: FakeRelay, postgres_url: str, cluster: list[BotProcess]
) -> None:
    first, second = cluster
    relay.add_task("shared", progressing("shared"))
    await first.start()
    await first.wait_for_line(JOINED)
    await fake.wait_ready(timeout=30)
    on_first = await watch(fake, "shared")
    await fake.wait_for(lambda: len(on_first.edits) >= 2)
    await second.start()
    await second.wait_for_line(JOINED)
    await fake.wait_for(lambda: fake.ready_count >= 2, timeout=30)

    # The command reaches the second process (the newest connection); the first leads the task.
    on_second = await watch(fake, "shared")
    await fake.wait_for(lambda: len(on_second.edits) >= 2, timeout=20)
    relay.add_task("shared", finished("shared"))
    await fake.wait_for(lambda: is_done(on_first) and is_done(on_second), timeout=20)

    # The second asked the relay once, to answer the command; every poll after came from the
    # first, which edited both messages, each to its final state once.
    assert polls_by(relay, "shared", 1) == 1
    assert polls_by(relay, "shared", 0) > 2
    assert (done_edits(on_first), done_edits(on_second)) == (1, 1)
    assert len(fake.messages) == 2
    await until_rows(postgres_url, "SELECT outcome FROM watches", [("finished",)] * 2)
    puts = [r for r in fake.requests if r.method == "PUT" and r.path.endswith("/commands")]
    assert len(puts) == 1  # one process of the cluster synced the commands
    for process in cluster:
        assert "Traceback" not in process.output
        assert FAKE_BOT_TOKEN not in process.output
        assert "test-password" not in process.output


async def test_a_killed_process_s_tasks_are_taken_over_and_every_watch_finishes(
    fake: FakeDiscord, relay: FakeRelay, postgres_url: str, cluster: list[BotProcess]
) -> None:
    first, second = cluster
    tasks = [f"task{n}" for n in range(6)]
    for task_id in tasks:
        relay.add_task(task_id, progressing(task_id))
    await both_running(fake, cluster)
    messages = [await watch(fake, task_id) for task_id in tasks]
    await fake.wait_for(lambda: all(len(m.edits) >= 2 for m in messages), timeout=20)
    # The second claimed every task it was asked about, then let go of what is above its
    # share (half), and the first leads those.
    await until_rows(postgres_url, "SELECT count(DISTINCT owner) FROM task_leases", [(2,)])
    led_by_second = [
        str(task_id)
        for (task_id,) in await rows(
            postgres_url, "SELECT task_id FROM task_leases WHERE owner = $1", owner_of(second)
        )
    ]
    assert 0 < len(led_by_second) < len(tasks)

    await second.stop(signal.SIGKILL)
    polled_before = {task_id: polls_by(relay, task_id, 0) for task_id in led_by_second}
    for task_id in tasks:
        relay.add_task(task_id, [*progressing(task_id)[:3], finished(task_id)])

    await fake.wait_for(lambda: all(is_done(m) for m in messages), timeout=30)
    assert [done_edits(m) for m in messages] == [1] * len(tasks)
    # The killed process's tasks were polled by the first once its leases lapsed.
    assert all(polls_by(relay, t, 0) > polled_before[t] for t in led_by_second)
    await until_rows(postgres_url, "SELECT DISTINCT outcome FROM watches", [("finished",)])
    assert "Traceback" not in first.output


async def test_a_stopping_process_hands_its_tasks_over_at_once(
    fake: FakeDiscord,
    relay: FakeRelay,
    postgres_url: str,
    database: Path,
    launched: list[BotProcess],
) -> None:
    # Leases far longer than the test's patience: only a handover lets the first take over.
    first, second = (
        cluster_process(fake, relay, postgres_url, database, launched, shard, "300")
        for shard in (0, 1)
    )
    tasks = [f"calm{n}" for n in range(4)]
    for task_id in tasks:
        relay.add_task(task_id, progressing(task_id))
    await both_running(fake, [first, second])
    messages = [await watch(fake, task_id) for task_id in tasks]
    await fake.wait_for(lambda: all(len(m.edits) >= 2 for m in messages), timeout=20)
    await until_rows(postgres_url, "SELECT count(DISTINCT owner) FROM task_leases", [(2,)])
    leaving = owner_of(second)
    [(held,)] = await rows(
        postgres_url, "SELECT count(*) FROM task_leases WHERE owner = $1", leaving
    )

    assert await second.stop(signal.SIGTERM) == 0

    # Nothing of the second is left to lapse: its task leases and membership went with it.
    assert (
        await rows(
            postgres_url,
            "SELECT owner FROM task_leases WHERE owner = $1 UNION ALL"
            " SELECT owner FROM leases WHERE owner = $1",
            leaving,
        )
        == []
    )
    [handed] = second.lines_with("tasks over to the other processes")
    assert f"handed {held} tasks over" in handed
    for task_id in tasks:
        relay.add_task(task_id, finished(task_id))
    await fake.wait_for(lambda: all(is_done(m) for m in messages), timeout=30)
    assert [done_edits(m) for m in messages] == [1] * len(tasks)
    await until_rows(postgres_url, "SELECT DISTINCT outcome FROM watches", [("finished",)])
    assert "Traceback" not in second.output


async def test_one_process_runs_each_shard_it_is_given_on_its_own_connection(
    fake: FakeDiscord,
    relay: FakeRelay,
    database: Path,
    postgres_url: str,
    launched: list[BotProcess],
) -> None:
    process = BotProcess.against(
        fake,
        relay,
        database,
        DATABASE_URL=postgres_url,
        SHARD_COUNT="4",
        SHARD_IDS="1-2",
        SUNO_API_KEY="key-1",
    )
    launched.append(process)
    relay.add_task("sharded", [*progressing("sharded")[:2], finished("sharded")])
    await process.start()
    await fake.wait_for(lambda: fake.ready_count >= 2, timeout=30)

    identified = [f["d"]["shard"] for f in fake.gateway_frames if f.get("op") == 2]
    assert sorted(identified) == [[1, 4], [2, 4]]
    message = await watch(fake, "sharded")
    await fake.wait_for(lambda: is_done(message), timeout=20)
    assert done_edits(message) == 1
    assert await process.stop(signal.SIGTERM) == 0
    assert "Traceback" not in process.output


async def test_one_task_id_followed_with_two_members_keys_has_a_leader_per_key(
    fake: FakeDiscord,
    relay: FakeRelay,
    postgres_url: str,
    database: Path,
    launched: list[BotProcess],
) -> None:
    secret = Fernet.generate_key().decode()
    first, second = (
        cluster_process(
            fake, relay, postgres_url, database, launched, shard, KEY_ENCRYPTION_SECRET=secret
        )
        for shard in (0, 1)
    )
    relay.add_task("shared", progressing("shared"))
    await first.start()
    await first.wait_for_line(JOINED)
    await fake.wait_ready(timeout=30)
    # Commands reach the newest connection: Alice's go to the first process.
    assert "works and is saved" in await set_key(fake, KEY_A, user_id=ALICE)
    alices = await watch(fake, "shared", user_id=ALICE)
    await fake.wait_for(lambda: len(alices.edits) >= 2, timeout=20)
    await second.start()
    await second.wait_for_line(JOINED)
    await fake.wait_for(lambda: fake.ready_count >= 2, timeout=30)

    # Bob's go to the second, which leads the task id with his key; Alice's second message,
    # made there too, is handed to the first, which leads it with hers.
    assert "works and is saved" in await set_key(fake, KEY_B, user_id=BOB)
    bobs = await watch(fake, "shared", user_id=BOB)
    alices_again = await watch(fake, "shared", user_id=ALICE)
    messages = [alices, bobs, alices_again]
    await fake.wait_for(lambda: all(len(m.edits) >= 2 for m in messages), timeout=20)
    [(alice_key,)] = await rows(
        postgres_url, "SELECT id FROM relay_keys WHERE owner_id = $1", ALICE
    )
    [(bob_key,)] = await rows(postgres_url, "SELECT id FROM relay_keys WHERE owner_id = $1", BOB)
    await until_rows(
        postgres_url,
        "SELECT key_id, owner FROM task_leases WHERE task_id = 'shared' ORDER BY key_id",
        sorted([(alice_key, owner_of(first)), (bob_key, owner_of(second))]),
    )
    polled_with = {r.authorization for r in relay.requests if "shared" in r.task_ids}
    assert {f"Bearer {KEY_A}", f"Bearer {KEY_B}"} <= polled_with

    # Alice removes her key through the second process: the first, which follows her two
    # messages, ends them as removal does; Bob's goes on to the end.
    answer = await run(fake, "remove", user_id=ALICE)
    await fake.wait_for(lambda: all(live_updates_ended(m) for m in (alices, alices_again)))
    relay.add_task("shared", finished("shared"))
    await fake.wait_for(lambda: is_done(bobs), timeout=30)

    assert answer.endswith(": 2.")
    assert [done_edits(m) for m in messages] == [0, 1, 0]
    assert all("no longer accepts" not in text_of(m) for m in (alices, alices_again))
    await until_rows(
        postgres_url,
        "SELECT outcome FROM watches ORDER BY id",
        [("lost",), ("finished",), ("lost",)],
    )
    for process in (first, second):
        assert "Traceback" not in process.output
        assert KEY_A not in process.output and KEY_B not in process.output


async def test_stop_pressed_where_another_process_keeps_the_card_current_stops_it_there(
    fake: FakeDiscord, relay: FakeRelay, postgres_url: str, cluster: list[BotProcess]
) -> None:
    first, second = cluster
    relay.add_task("led", progressing("led"))
    await first.start()
    await first.wait_for_line(JOINED)
    await fake.wait_ready(timeout=30)
    message = await watch(fake, "led")
    await fake.wait_for(lambda: len(message.edits) >= 2)
    await second.start()
    await second.wait_for_line(JOINED)
    # Each process listens to the others once it has taken up its share of the work.
    for process in cluster:
        await process.wait_for_line("connected as")

    # The press reaches the second process (the newest connection); the first leads the task.
    pressed = await fake.press_button(message.id, button(fake, message, "stop"))
    callback = await pressed.wait_callback()

    assert callback.type != 4  # no private "already stopped"
    await fake.wait_for(lambda: "Live updates stopped" in text_of(message), timeout=20)
    await until_rows(postgres_url, "SELECT outcome FROM watches", [("stopped",)])
    edits = len(message.edits)
    polls = polls_by(relay, "led", 0)
    refresh = await fake.press_button(message.id, button(fake, message, "refresh"))
    await refresh.wait_callback()
    # Refresh on a stopped card revives it, wherever it is pressed.
    await until_rows(postgres_url, "SELECT outcome FROM watches", [("active",)])
    await fake.wait_for(lambda: len(message.edits) > edits, timeout=20)
    assert polls_by(relay, "led", 0) + polls_by(relay, "led", 1) > polls
    for process in cluster:
        assert "Traceback" not in process.output
