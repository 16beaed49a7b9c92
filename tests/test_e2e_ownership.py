"""Two `python -m bot` processes on one store: one works, the other waits, then takes over."""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
import sys
import time
from collections.abc import AsyncIterator
from contextlib import closing
from pathlib import Path

import pytest

from bot.tracking.ownership import RENEW_EVERY_SECONDS
from bot.tracking.store import WatchOutcome
from tests.kit.bot_process import BotProcess
from tests.kit.fake_discord import FAKE_BOT_TOKEN, EditRecord, FakeDiscord, FakeMessage
from tests.kit.fake_relay import FakeRelay
from tests.kit.harness import text_of
from tests.kit.payloads import clip, clip_ids_for, task_payload

WAITING = "holds the store until"
# A waiting process tries every second; start-up and login take a moment more.
TAKEOVER_SECONDS = 5

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


@pytest.fixture
async def processes(
    fake: FakeDiscord, relay: FakeRelay, database: Path
) -> AsyncIterator[list[BotProcess]]:
    """Two bot processes on one database; whatever a test leaves running is killed."""
    made = [BotProcess.against(fake, relay, database) for _ in range(2)]
    yield made
    for process in made:
        await process.kill()


def progressing(task_id: str, start: int, polls: int) -> list[dict[str, object]]:
    """IN_PROGRESS with progress moving every poll; the last step repeats until replaced."""
    ids = clip_ids_for(task_id, 2)
    return [
        task_payload(
            task_id,
            "IN_PROGRESS",
            f"{start + n}%",
            clips=[clip("nested", i, "streaming") for i in ids],
        )
        for n in range(polls)
    ]


def finished(task_id: str) -> dict[str, object]:
    return task_payload(
        task_id, "SUCCESS", clips=[clip("nested", i) for i in clip_ids_for(task_id, 2)]
    )


def shows_done(edit: EditRecord) -> bool:
    return "**Status:** Done" in json.dumps(edit.payload, ensure_ascii=False)


def is_done(message: FakeMessage) -> bool:
    return "**Status:** Done" in text_of(message)


def identifies(fake: FakeDiscord) -> int:
    return sum(1 for frame in fake.gateway_frames if frame.get("op") == 2)


def login_times(fake: FakeDiscord) -> list[float]:
    return [r.time for r in fake.requests if r.method == "GET" and r.path == "/users/@me"]


def leases(database: Path) -> list[tuple[str, str]]:
    with closing(sqlite3.connect(database)) as connection:
        return connection.execute("SELECT name, owner FROM leases").fetchall()


def stored(database: Path) -> list[tuple[str, str | None]]:
    with closing(sqlite3.connect(database)) as connection:
        return connection.execute("SELECT outcome, interaction_token FROM watches").fetchall()


def owner_named_in(line: str, prefix: str) -> str:
    return line.split(prefix, 1)[1].split()[0].rstrip(";)(")


async def first_holds_a_watch(
    fake: FakeDiscord, relay: FakeRelay, first: BotProcess, task_id: str
) -> tuple[FakeMessage, str]:
    """The first process starts, takes the store, and keeps a message current."""
    relay.add_task(task_id, progressing(task_id, start=1, polls=60))
    await first.start()
    holding = await first.wait_for_line("holding the store as")
    await fake.wait_ready(timeout=30)
    interaction = await fake.interact(options={"task_id": task_id})
    await interaction.wait_callback()
    message = fake.message_for(interaction)
    assert message is not None
    await fake.wait_for(lambda: len(message.edits) >= 2)
    return message, owner_named_in(holding, "holding the store as ")


async def test_a_second_process_waits_while_the_first_runs_and_takes_over_on_sigterm(
    fake: FakeDiscord, relay: FakeRelay, database: Path, processes: list[BotProcess]
) -> None:
    first, second = processes
    message, first_owner = await first_holds_a_watch(fake, relay, first, "handover")

    await second.start()
    waiting = await second.wait_for_line(WAITING)
    edits_while_waiting = len(message.edits)
    await asyncio.sleep(3)  # three tries and more for the lease, while the first keeps editing

    assert waiting.split(": ", 1)[1].startswith(f"another instance ({first_owner}) holds the store")
    assert "UTC; waiting" in waiting
    assert len(second.lines_with(WAITING)) == 1
    assert second.running
    assert identifies(fake) == 1  # the second never opened a gateway session
    assert len(login_times(fake)) == 1  # nor logged in
    assert len(message.edits) > edits_while_waiting  # the first was editing all along
    assert not is_done(message)

    assert await first.stop(signal.SIGTERM) == 0
    assert first.exited_at is not None
    assert first.lines_with("released the store")
    relay.add_task("handover", [*progressing("handover", start=70, polls=3), finished("handover")])

    await fake.wait_for(lambda: is_done(message), timeout=20)
    [_, second_login] = login_times(fake)
    assert second_login - first.exited_at < TAKEOVER_SECONDS
    [took_over] = second.lines_with("took over the store from")
    assert owner_named_in(took_over, "took over the store from ") == first_owner
    assert identifies(fake) == 2

    # One process at a time: nothing between the first's exit and the second's login, one
    # final edit, and no second message.
    assert not [e for e in message.edits if first.exited_at < e.time < second_login]
    assert [e for e in message.edits if e.time > second_login]
    assert sum(shows_done(edit) for edit in message.edits) == 1
    assert len(fake.messages) == 1
    await fake.wait_for(lambda: stored(database) == [(WatchOutcome.FINISHED, None)])

    assert await second.stop(signal.SIGTERM) == 0
    assert leases(database) == []
    for process in (first, second):
        assert "Traceback" not in process.output
        assert FAKE_BOT_TOKEN not in process.output


async def test_a_process_waiting_for_the_store_exits_promptly_on_sigterm(
    fake: FakeDiscord, relay: FakeRelay, database: Path, processes: list[BotProcess]
) -> None:
    first, second = processes
    message, first_owner = await first_holds_a_watch(fake, relay, first, "standby")
    await second.start()
    await second.wait_for_line(WAITING)

    asked = time.monotonic()
    code = await second.stop(signal.SIGTERM, timeout=5)

    assert code == 0, second.output
    assert time.monotonic() - asked < 5
    assert second.lines_with("stopped while waiting for the store")
    assert "Traceback" not in second.output
    assert identifies(fake) == 1
    assert leases(database) == [("store", first_owner)]
    edits = len(message.edits)
    await fake.wait_for(lambda: len(message.edits) > edits)  # the first goes on undisturbed
    assert first.running


async def test_a_process_that_lost_the_store_stops_editing_and_exits_with_one_error_line(
    fake: FakeDiscord, relay: FakeRelay, database: Path, processes: list[BotProcess]
) -> None:
    first, _ = processes
    message, _ = await first_holds_a_watch(fake, relay, first, "suspended")

    # As after a long suspend: the lease lapsed and another instance took it.
    with closing(sqlite3.connect(database)) as connection, connection:
        connection.execute(
            "UPDATE leases SET owner = 'thief', expires_at = ? WHERE name = 'store'",
            (time.time() + 3600,),
        )
    code = await first.exit_code(timeout=RENEW_EVERY_SECONDS + 10)

    assert code == 1, first.output
    [lost] = first.lines_with("lost the store")
    assert " ERROR " in lost
    assert "lost the store to another instance (thief)" in lost
    assert "stopped editing and shutting down" in lost
    assert "Traceback" not in first.output
    assert leases(database) == [("store", "thief")]  # the new owner's lease is left alone
    assert not is_done(message)
