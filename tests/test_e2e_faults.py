"""Relay and Discord faults, end to end: the real bot against the fake Discord and relay."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.tracking.store import WatchOutcome
from tests.kit.fake_discord import TOKEN_LIFETIME, FakeDiscord, FakeInteraction, FakeMessage
from tests.kit.fake_relay import FakeRelay, RelayReply
from tests.kit.harness import bot_settings, running_bot, text_of
from tests.kit.payloads import clip_ids_for, music_timeline

WAITING = "Waiting for the relay's first answer"
NEVER_ANSWERED = "The relay never answered"


async def ask(fake: FakeDiscord, task_id: str) -> FakeInteraction:
    interaction = await fake.interact(options={"task_id": task_id})
    await interaction.wait_callback()
    return interaction


def shown(fake: FakeDiscord, interaction: FakeInteraction) -> FakeMessage:
    message = fake.message_for(interaction)
    assert message is not None, "the command left no message"
    return message


def finished(message: FakeMessage) -> bool:
    return "**Status:** Done" in text_of(message)


def outcomes(database: Path) -> list[WatchOutcome]:
    with closing(sqlite3.connect(database)) as connection:
        rows = connection.execute("SELECT outcome FROM watches ORDER BY id").fetchall()
    return [WatchOutcome(outcome) for (outcome,) in rows]


FIRST_FETCH_FAULTS = {
    "500": RelayReply(status=500, body={"error": {"message": "upstream error"}}),
    "502 html": RelayReply(
        status=502,
        body="<html><body><h1>502 Bad Gateway</h1></body></html>",
        content_type="text/html",
    ),
    "malformed json": RelayReply(status=200, body='{"code": "success", "data": {'),
    "429": RelayReply(status=429, body={"error": "slow down"}, headers={"Retry-After": "1"}),
    "timeout": RelayReply(body={}, delay=5.0),
}


@pytest.mark.parametrize("fault", sorted(FIRST_FETCH_FAULTS))
async def test_a_transient_failure_on_the_first_fetch_waits_retries_and_reaches_the_end(
    fake: FakeDiscord, relay: FakeRelay, database: Path, fault: str
) -> None:
    task_id = f"first-fetch-{fault.replace(' ', '-')}"
    relay.add_task(task_id, [FIRST_FETCH_FAULTS[fault], *music_timeline(task_id)[2:]])
    settings = bot_settings(relay, database, SUNO_API_TIMEOUT_SECONDS=0.5)
    async with running_bot(fake, settings):
        interaction = await ask(fake, task_id)
        assert interaction.callback is not None
        message = shown(fake, interaction)
        await fake.wait_for(lambda: WAITING in text_of(message))
        assert task_id in text_of(message)
        assert not message.ephemeral and not interaction.followup_ids
        await fake.wait_for(lambda: finished(message), timeout=15)
        await fake.wait_for(lambda: outcomes(database) == [WatchOutcome.FINISHED])
    requests = relay.requests
    assert len(requests) >= 2
    if fault == "429":
        assert requests[1].at - requests[0].at >= 1.0  # the relay's Retry-After held
    assert not fake.rejected


async def test_a_relay_slower_than_the_acknowledgement_then_failing_waits_and_retries(
    fake: FakeDiscord, relay: FakeRelay, database: Path
) -> None:
    task_id = "first-fetch-slow-then-503"
    relay.add_task(
        task_id,
        [
            RelayReply(status=503, body="Service Unavailable", delay=2.0),
            *music_timeline(task_id)[2:],
        ],
    )
    async with running_bot(fake, bot_settings(relay, database, SUNO_API_TIMEOUT_SECONDS=5)):
        interaction = await ask(fake, task_id)
        assert interaction.callback is not None and interaction.callback.type == 5  # deferred
        message = shown(fake, interaction)
        await fake.wait_for(lambda: WAITING in text_of(message))
        await fake.wait_for(lambda: finished(message), timeout=15)
        await fake.wait_for(lambda: outcomes(database) == [WatchOutcome.FINISHED])
    assert not interaction.followup_ids


async def test_a_relay_that_never_answers_ends_at_the_deadline_with_a_clear_last_message(
    fake: FakeDiscord, relay: FakeRelay, database: Path
) -> None:
    relay.add_task(
        "never", [RelayReply(status=503, body="<html>down</html>", content_type="text/html")]
    )
    settings = bot_settings(relay, database, WATCH_TIMEOUT_SECONDS=2)
    async with running_bot(fake, settings):
        interaction = await ask(fake, "never")
        message = shown(fake, interaction)
        await fake.wait_for(lambda: NEVER_ANSWERED in text_of(message), timeout=15)
        await fake.wait_for(lambda: outcomes(database) == [WatchOutcome.TIMED_OUT])
    text = text_of(message)
    assert "Auto-refresh stopped" in text and "never" in text
    assert not message.deleted and not interaction.followup_ids


async def test_a_task_answered_under_another_id_is_never_shown(
    fake: FakeDiscord, relay: FakeRelay, database: Path
) -> None:
    asked, other = "task-asked-for", "task-somebody-else"
    stray = music_timeline(other)[-1]
    relay.add_task(asked, [stray, stray, *music_timeline(asked)[3:]])
    async with running_bot(fake, bot_settings(relay, database)):
        interaction = await ask(fake, asked)
        message = shown(fake, interaction)
        await fake.wait_for(lambda: finished(message), timeout=15)
    bodies = [str(edit.payload) for edit in message.edits] + [text_of(message)]
    for clip_id in clip_ids_for(other):
        assert not any(clip_id in body for body in bodies)
    assert not any(other in body for body in bodies)
    assert asked in text_of(message)


async def test_a_channel_edit_refused_while_the_token_lives_ends_with_a_token_edit(
    fake: FakeDiscord, relay: FakeRelay, database: Path
) -> None:
    task_id = "channel-refused"
    relay.add_task(task_id, music_timeline(task_id)[2:])
    # The interaction is old enough that the bot already prefers its channel route.
    created = datetime.now(UTC) - TOKEN_LIFETIME + timedelta(seconds=40)
    async with running_bot(fake, bot_settings(relay, database)):
        fake.revoke_channel_access(fake.channel_id)
        interaction = await fake.interact(options={"task_id": task_id}, created_at=created)
        await interaction.wait_callback()
        message = shown(fake, interaction)
        await fake.wait_for(lambda: "Live updates ended" in text_of(message), timeout=15)
        await fake.wait_for(lambda: outcomes(database) == [WatchOutcome.LOST])
    refused = [r for r in fake.requests if r.method == "PATCH" and "/channels/" in r.path]
    assert refused and all(r.status == 403 for r in refused)
    assert message.edits[-1].via == "webhook"


async def test_the_edit_cap_answered_with_any_status_never_swallows_the_final_edit(
    fake: FakeDiscord, relay: FakeRelay, database: Path
) -> None:
    task_id = "edit-capped"
    relay.add_task(task_id, music_timeline(task_id)[3:])
    async with running_bot(fake, bot_settings(relay, database)):
        fake.fail_next(
            "PATCH",
            "/webhooks/*/messages/@original",
            status=400,
            body={
                "code": 30046,
                "message": "Maximum number of edits to messages older than 1 hour reached.",
            },
            times=3,
        )
        interaction = await ask(fake, task_id)
        message = shown(fake, interaction)
        await fake.wait_for(lambda: finished(message), timeout=15)
        await fake.wait_for(lambda: outcomes(database) == [WatchOutcome.FINISHED])
    capped = [r for r in fake.requests if r.method == "PATCH" and r.status == 400]
    assert len(capped) == 3
