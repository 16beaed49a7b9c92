"""`/suno status` in-process: real `discord.Interaction`s built from Discord's payloads run
through the bot's real `CommandTree`, with discord.py's HTTP client talking to the fake Discord.

No gateway: each command runs to its end inside the test, so every branch of the cog is quick
to reach; the end-to-end tests drive the same bot over the gateway.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from contextlib import closing
from pathlib import Path
from typing import Any

import discord
import pytest

from bot.app import SunoBot
from bot.runner import assembled_bot
from bot.tracking.store import WatchOutcome
from tests.kit.fake_discord import EPHEMERAL, FakeDiscord, FakeInteraction, FakeMessage
from tests.kit.fake_relay import NOT_FOUND_BODY, FakeRelay, RelayReply
from tests.kit.harness import bot_settings, text_of
from tests.kit.payloads import music_timeline

SLOW = 2.0  # seconds: longer than the bot waits for the relay before it defers


@pytest.fixture
async def bot(fake: FakeDiscord, relay: FakeRelay, database: Path) -> AsyncIterator[SunoBot]:
    """The production wiring, logged in over REST (commands synced, tracker started)."""
    settings = bot_settings(relay, database, SUNO_API_TIMEOUT_SECONDS=5)
    async with assembled_bot(settings) as bot:
        await bot.login(settings.discord_token.get_secret_value())
        yield bot


async def run(
    fake: FakeDiscord, bot: SunoBot, **options: str | bool | int
) -> tuple[FakeInteraction, FakeMessage | None]:
    """Runs `/suno status` with `options` to its end; the interaction and its message."""
    sent = fake.command(options=options)
    payload: Any = sent.payload  # Discord's INTERACTION_CREATE data, as the fake sends it
    interaction = discord.Interaction(data=payload, state=bot._connection)
    await bot.tree._call(interaction)
    return sent, fake.message_for(sent)


def outcomes(database: Path) -> list[WatchOutcome]:
    with closing(sqlite3.connect(database)) as connection:
        rows = connection.execute("SELECT outcome FROM watches ORDER BY id").fetchall()
    return [WatchOutcome(outcome) for (outcome,) in rows]


def private_text(fake: FakeDiscord, sent: FakeInteraction) -> str:
    """The text of the one private message the requester got (reply or follow-up)."""
    replies = [fake.message_for(sent), *(fake.messages[i] for i in sent.followup_ids)]
    private = [m for m in replies if m is not None and m.ephemeral and not m.deleted]
    assert len(private) == 1, "expected exactly one private message"
    return text_of(private[0])


async def test_an_invalid_id_is_refused_privately_without_asking_the_relay(
    fake: FakeDiscord, relay: FakeRelay, bot: SunoBot
) -> None:
    sent, _ = await run(fake, bot, task_id="../../v1/keys")
    assert "doesn't look like a task id" in private_text(fake, sent)
    assert relay.request_count() == 0
    assert bot.tracker.stats().watches == 0


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (RelayReply(status=404, body=NOT_FOUND_BODY), "No task with that id"),
        (RelayReply(status=401, body={"error": {"message": "invalid token"}}), "not accepted"),
    ],
)
async def test_a_final_relay_answer_is_a_private_error_and_no_watch(
    fake: FakeDiscord,
    relay: FakeRelay,
    bot: SunoBot,
    database: Path,
    reply: RelayReply,
    expected: str,
) -> None:
    relay.add_task("final", [reply])
    sent, _ = await run(fake, bot, task_id="final")
    assert expected in private_text(fake, sent)
    assert outcomes(database) == []


async def test_a_finished_task_is_the_reply_stored_as_finished_and_nothing_is_watched(
    fake: FakeDiscord, relay: FakeRelay, bot: SunoBot, database: Path
) -> None:
    relay.add_task("done", music_timeline("done")[-1:])
    sent, message = await run(fake, bot, task_id="done")
    assert sent.callback is not None and sent.callback.type == 4
    assert message is not None and "**Status:** Done" in text_of(message)
    # Stored, so that the card's buttons find it and its songs follow; never polled again.
    assert outcomes(database) == [WatchOutcome.FINISHED]
    assert bot.tracker.stats().watches == 0


@pytest.mark.parametrize("private", [False, True])
async def test_a_running_task_is_the_reply_and_its_watch_is_stored_and_handed_on(
    fake: FakeDiscord, relay: FakeRelay, bot: SunoBot, database: Path, private: bool
) -> None:
    relay.add_task("running", music_timeline("running")[2:])
    sent, message = await run(fake, bot, task_id="running", private=private)
    assert message is not None and "**Status:** Queued" in text_of(message)
    assert message.ephemeral is private
    assert sent.callback is not None and sent.callback.data is not None
    assert bool(sent.callback.data.get("flags", 0) & EPHEMERAL) is private
    with closing(sqlite3.connect(database)) as connection:
        row = connection.execute(
            "SELECT outcome, message_id, ephemeral, last_fingerprint FROM watches"
        ).fetchone()
    assert row[0] == WatchOutcome.ACTIVE and row[1] == message.id and row[2] == int(private)
    assert row[3] is not None  # what the message shows, so a restart does not edit it again
    assert bot.tracker.stats().watches == 1


async def test_a_transient_relay_failure_replies_waiting_and_hands_the_watch_on(
    fake: FakeDiscord, relay: FakeRelay, bot: SunoBot, database: Path
) -> None:
    relay.add_task("flaky", [RelayReply(status=502, body="<html>Bad Gateway</html>")])
    sent, message = await run(fake, bot, task_id="flaky")
    assert message is not None and not message.ephemeral
    assert "Waiting for the relay's first answer" in text_of(message)
    assert "flaky" in text_of(message)
    assert not sent.followup_ids
    assert outcomes(database) == [WatchOutcome.ACTIVE]
    assert bot.tracker.stats().watches == 1


async def test_a_slow_relay_is_deferred_then_the_reply_is_edited_into_the_task(
    fake: FakeDiscord, relay: FakeRelay, bot: SunoBot, database: Path
) -> None:
    done = music_timeline("slow-done")[-1]
    relay.add_task("slow-done", [RelayReply(body={"code": "success", "data": done}, delay=SLOW)])
    sent, message = await run(fake, bot, task_id="slow-done")
    assert sent.callback is not None and sent.callback.type == 5
    assert message is not None and "**Status:** Done" in text_of(message)
    assert outcomes(database) == [WatchOutcome.FINISHED]


@pytest.mark.parametrize("private", [False, True])
async def test_a_slow_not_found_answer_leaves_only_a_private_error(
    fake: FakeDiscord, relay: FakeRelay, bot: SunoBot, database: Path, private: bool
) -> None:
    relay.add_task("slow-missing", [RelayReply(status=404, body=NOT_FOUND_BODY, delay=SLOW)])
    sent, message = await run(fake, bot, task_id="slow-missing", private=private)
    assert message is not None
    # A public "thinking" message cannot turn private: it goes, and a private note follows.
    assert message.deleted is not private
    assert "No task with that id" in private_text(fake, sent)
    assert outcomes(database) == [WatchOutcome.FINISHED]


async def test_a_reply_discord_refuses_leaves_no_watch_behind(
    fake: FakeDiscord, relay: FakeRelay, bot: SunoBot, database: Path
) -> None:
    relay.add_task("refused", music_timeline("refused")[2:])
    fake.fail_next(
        "POST",
        "/interactions/*/callback",
        status=404,
        body={"code": 10062, "message": "Unknown interaction"},
    )
    await run(fake, bot, task_id="refused")
    assert outcomes(database) == [WatchOutcome.LOST]
    assert bot.tracker.stats().watches == 0


async def test_a_failed_first_edit_after_deferring_hands_the_task_to_the_tracker(
    fake: FakeDiscord, relay: FakeRelay, bot: SunoBot, database: Path
) -> None:
    steps = music_timeline("edit-fails")
    relay.add_task(
        "edit-fails",
        [RelayReply(body={"code": "success", "data": steps[2]}, delay=SLOW), *steps[3:]],
    )
    fake.fail_next("PATCH", "/webhooks/*/messages/@original", status=500, body={"message": "oops"})
    _, message = await run(fake, bot, task_id="edit-fails")
    assert message is not None
    assert bot.tracker.stats().watches == 1  # the "thinking" message is not left as it is
    await fake.wait_for(lambda: "**Status:** Done" in text_of(message), timeout=10)
    await fake.wait_for(lambda: outcomes(database) == [WatchOutcome.FINISHED])


async def test_cards_sent_and_edited_are_not_kept_by_discord_py_for_their_messages(
    fake: FakeDiscord, relay: FakeRelay, bot: SunoBot
) -> None:
    # The card's buttons and menus are DynamicItems, answered whatever message they are on, so
    # discord.py keeps no layout per message; one kept per message would be held for good, ten
    # thousand of them for ten thousand watches (a plain button or select would do that).
    timeline = music_timeline("kept")
    relay.add_task("kept", timeline[2:])
    _, message = await run(fake, bot, task_id="kept")
    assert message is not None and message.components, "the card carries its buttons"
    await fake.wait_for(lambda: len(message.edits) >= 2, timeout=15)
    views = bot._connection._view_store
    assert views.persistent_views == []
    assert not views._synced_message_views
