"""`/suno status` end to end: the real bot against the fake Discord and the fake relay."""

from __future__ import annotations

import asyncio
import re
import sqlite3
import time
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.tracking.store import WatchOutcome
from tests.kit.cards import accent_colour, card_text, images
from tests.kit.fake_discord import (
    IS_COMPONENTS_V2,
    TOKEN_LIFETIME,
    FakeDiscord,
    FakeInteraction,
    FakeMessage,
)
from tests.kit.fake_relay import FakeRelay, RelayReply
from tests.kit.harness import bot_settings, link_buttons, running_bot, text_of
from tests.kit.payloads import (
    DEFAULT_TITLE,
    clip,
    clip_ids_for,
    failure_timeline,
    lyrics_payload,
    music_timeline,
    task_payload,
)

STATUS_LINE = re.compile(r"\*\*Status:\*\* ([^\n]+)")


def shown_status(payload: dict[str, Any]) -> str | None:
    """The status line of the card a message body shows (None for a body without one)."""
    found = STATUS_LINE.search(card_text(payload.get("components") or []))
    return found.group(1) if found else None


def status_sequence(message: FakeMessage) -> list[str | None]:
    return [shown_status(edit.payload) for edit in message.edits]


def shows_final_status(message: FakeMessage) -> bool:
    """Whether the card's status line says Done or Failed."""
    return shown_status({"components": message.components}) in ("Done", "Failed")


async def ask(fake: FakeDiscord, task_id: str, **options: str | bool) -> FakeInteraction:
    interaction = await fake.interact(options={"task_id": task_id, **options})
    await interaction.wait_callback()
    return interaction


def sent_to_discord(fake: FakeDiscord) -> list[dict[str, Any]]:
    """Every message body the bot sent: callbacks, webhook and channel edits, follow-ups."""
    bodies = []
    for request in fake.requests:
        body = request.json
        if isinstance(body, dict) and body.get("type") in (4, 7):
            body = body.get("data")
        if isinstance(body, dict) and ({"embeds", "content", "components"} & body.keys()):
            bodies.append(body)
    return bodies


def stored_outcomes(database: Path) -> list[WatchOutcome]:
    """What the database file itself says of each watch, oldest first."""
    with closing(sqlite3.connect(database)) as connection:
        rows = connection.execute("SELECT outcome FROM watches ORDER BY id").fetchall()
    return [WatchOutcome(outcome) for (outcome,) in rows]


# -- acknowledging -------------------------------------------------------------------------


async def test_a_quick_relay_answer_is_the_reply_itself(
    fake: FakeDiscord, relay: FakeRelay, database: Path
) -> None:
    relay.add_task("quick", music_timeline("quick"))
    async with running_bot(fake, bot_settings(relay, database)):
        interaction = await ask(fake, "quick")
        assert interaction.callback is not None
        assert interaction.callback.type == 4  # CHANNEL_MESSAGE_WITH_SOURCE, not deferred
        message = fake.message_for(interaction)
        assert message is not None
        assert not message.ephemeral
        assert shown_status({"components": message.components}) == "Not started"


async def test_a_hanging_relay_still_gets_an_acknowledgement_and_the_answer_later(
    fake: FakeDiscord, relay: FakeRelay, database: Path
) -> None:
    steps = music_timeline("slow")
    relay.add_task("slow", [RelayReply(body={"code": "success", "data": steps[2]}, delay=2.5)])
    settings = bot_settings(relay, database, SUNO_API_TIMEOUT_SECONDS=10)
    async with running_bot(fake, settings):
        interaction = await ask(fake, "slow")
        # The fake refuses callbacks after its 3 s window, so reaching it proves the timing.
        assert interaction.callback is not None
        assert interaction.callback.type == 5  # deferred: "thinking…"
        message = fake.message_for(interaction)
        assert message is not None
        await fake.wait_for(lambda: shown_status({"components": message.components}) == "Queued")
    assert not fake.rejected


# -- what users see -----------------------------------------------------------------------


@pytest.mark.parametrize("family", ["nested", "flat", "hybrid"])
async def test_each_relay_shape_moves_through_every_stage_to_one_card_per_clip(
    fake: FakeDiscord, relay: FakeRelay, database: Path, family: str
) -> None:
    task_id = f"shape-{family}"
    relay.add_task(task_id, music_timeline(task_id, family))  # type: ignore[arg-type]
    async with running_bot(fake, bot_settings(relay, database)) as bot:
        interaction = await ask(fake, task_id)
        message = fake.message_for(interaction)
        assert message is not None
        await fake.wait_for(lambda: shows_final_status(message))
        await fake.wait_for(lambda: bot.tracker.stats().watches == 0)
    assert status_sequence(message) == ["Not started", "Submitted", "Queued", "Generating", "Done"]
    assert message.embeds == [] and message.flags & IS_COMPONENTS_V2
    buttons = link_buttons(message)
    assert [label for label, _ in buttons] == ["MP3 · 1", "MP4 · 1", "MP3 · 2", "MP4 · 2"]
    ids = clip_ids_for(task_id, 2)
    assert [url for _, url in buttons] == [
        f"https://cdn1.suno.ai/{ids[0]}.mp3",
        f"https://cdn1.suno.ai/{ids[0]}.mp4",
        f"https://cdn1.suno.ai/{ids[1]}.mp3",
        f"https://cdn1.suno.ai/{ids[1]}.mp4",
    ]
    covers = images(message.components)
    assert len(covers) == 2 and all(url.startswith("https://cdn2.suno.ai/") for url in covers)
    lines = text_of(message).splitlines()
    assert f"`1` **{DEFAULT_TITLE}**" in lines and f"`2` **{DEFAULT_TITLE}**" in lines
    assert (
        sum(1 for line in lines if re.fullmatch(r"\d+:\d\d · \S.*", line)) == 2
    )  # duration · model
    assert stored_outcomes(database) == [WatchOutcome.FINISHED]


async def test_while_streaming_the_message_offers_the_live_stream(
    fake: FakeDiscord, relay: FakeRelay, database: Path
) -> None:
    ids = clip_ids_for("stream", 2)
    streaming = task_payload(
        "stream", "IN_PROGRESS", clips=[clip("nested", ids[0], "streaming"), clip("nested", ids[1])]
    )
    relay.add_task("stream", [streaming])
    async with running_bot(fake, bot_settings(relay, database)):
        message = fake.message_for(await ask(fake, "stream"))
    assert message is not None
    assert ("Listen live · 1", f"https://audiopipe.suno.ai/?item_id={ids[0]}") in link_buttons(
        message
    )


async def test_a_failed_task_ends_red_with_the_reason_and_no_links(
    fake: FakeDiscord, relay: FakeRelay, database: Path
) -> None:
    relay.add_task("fails", failure_timeline("fails", fail_reason="Prompt rejected by moderation"))
    async with running_bot(fake, bot_settings(relay, database)):
        message = fake.message_for(await ask(fake, "fails"))
        assert message is not None
        await fake.wait_for(lambda: shows_final_status(message))
    assert shown_status({"components": message.components}) == "Failed"
    assert accent_colour(message.components) == 0xED4245
    assert "Prompt rejected by moderation" in text_of(message)
    assert link_buttons(message) == []
    assert "None.mp3" not in str(message.payload)


async def test_a_lyrics_task_shows_its_title_and_lyrics(
    fake: FakeDiscord, relay: FakeRelay, database: Path
) -> None:
    relay.add_task("words", lyrics_payload("words", title="Neon Rain", text="[Verse]\nCity glow"))
    async with running_bot(fake, bot_settings(relay, database)):
        message = fake.message_for(await ask(fake, "words"))
    assert message is not None
    assert "Neon Rain" in text_of(message)
    assert "City glow" in text_of(message)


async def test_private_status_is_only_shown_to_the_requester(
    fake: FakeDiscord, relay: FakeRelay, database: Path
) -> None:
    relay.add_task("mine", music_timeline("mine"))
    async with running_bot(fake, bot_settings(relay, database)):
        message = fake.message_for(await ask(fake, "mine", private=True))
        assert message is not None
        await fake.wait_for(lambda: shows_final_status(message))
    assert message.ephemeral
    assert {edit.via for edit in message.edits} == {"callback", "webhook"}


# -- errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "task_id", ["../x", "a/b", "has space", "x" * 129, "%2e%2e", "task?x=1", "   "]
)
async def test_an_invalid_id_gets_a_private_error_and_the_relay_is_never_called(
    fake: FakeDiscord, relay: FakeRelay, database: Path, task_id: str
) -> None:
    async with running_bot(fake, bot_settings(relay, database)):
        message = fake.message_for(await ask(fake, task_id))
    assert message is not None and message.ephemeral
    assert "doesn't look like a task id" in text_of(message)
    assert relay.request_count() == 0


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (None, "No task with that id"),
        (RelayReply(status=401, body={"error": {"message": "invalid token"}}), "not accepted"),
        (RelayReply(status=403, body={"code": "forbidden", "message": "no"}), "not accepted"),
    ],
)
async def test_final_relay_answers_reach_the_requester_as_a_short_private_message(
    fake: FakeDiscord,
    relay: FakeRelay,
    database: Path,
    reply: RelayReply | None,
    expected: str,
) -> None:
    if reply is not None:
        relay.add_task("broken", [reply])
    async with running_bot(fake, bot_settings(relay, database)):
        message = fake.message_for(await ask(fake, "broken"))
    assert message is not None and message.ephemeral
    shown = text_of(message)
    assert expected in shown
    assert "Traceback" not in shown and "HTTP" not in shown
    assert stored_outcomes(database) == []


# -- sharing and editing ------------------------------------------------------------------


async def test_many_messages_watching_one_task_share_one_poll_per_interval(
    fake: FakeDiscord, relay: FakeRelay, database: Path
) -> None:
    ids = clip_ids_for("shared", 2)
    running = task_payload(
        "shared", "IN_PROGRESS", clips=[clip("nested", i, "queued") for i in ids]
    )
    relay.add_task("shared", [running])
    interval = 0.1
    async with running_bot(fake, bot_settings(relay, database, POLL_INTERVAL_SECONDS=interval)):
        for user in range(3):
            await fake.interact(options={"task_id": "shared"}, user_id=1_000 + user)
        await fake.wait_for(lambda: relay.fetch_count("shared") >= 3)
        started, before = time.monotonic(), relay.fetch_count("shared")
        await fake.wait_for(lambda: relay.fetch_count("shared") >= before + 10)
        elapsed = time.monotonic() - started
    # Three loops of their own would poll three times per interval; one shared loop cannot
    # make ten polls in less than about nine intervals, however slow the machine is.
    assert elapsed >= 9 * interval * 0.9


async def test_the_message_is_edited_only_when_what_it_shows_changes(
    fake: FakeDiscord, relay: FakeRelay, database: Path
) -> None:
    ids = clip_ids_for("steady", 2)
    queued = task_payload("steady", "QUEUED", clips=[clip("nested", i, "queued") for i in ids])
    done = task_payload("steady", "SUCCESS", clips=[clip("nested", i) for i in ids])
    relay.add_task("steady", [queued] * 8 + [done])
    async with running_bot(fake, bot_settings(relay, database)):
        message = fake.message_for(await ask(fake, "steady"))
        assert message is not None
        await fake.wait_for(lambda: shows_final_status(message))
    assert relay.fetch_count("steady") == 9
    assert status_sequence(message) == ["Queued", "Done"]


async def test_polling_stops_once_the_task_is_finished(
    fake: FakeDiscord, relay: FakeRelay, database: Path
) -> None:
    relay.add_task("ends", music_timeline("ends"))
    async with running_bot(fake, bot_settings(relay, database)) as bot:
        message = fake.message_for(await ask(fake, "ends"))
        assert message is not None
        await fake.wait_for(lambda: shows_final_status(message))
        await fake.wait_for(lambda: bot.tracker.stats().tasks == 0)
        polls = relay.fetch_count("ends")
        await asyncio.sleep(5 * 0.1)  # five poll intervals in which nothing may happen
    assert relay.fetch_count("ends") == polls == 5


# -- Discord's side -----------------------------------------------------------------------


async def test_mentions_never_ping_and_hostile_relay_text_is_never_rejected(
    fake: FakeDiscord, relay: FakeRelay, database: Path
) -> None:
    hostile_clips = [
        {
            "id": f"evil-{n}",
            "status": "complete",
            "title": "@everyone <@&123> [click](javascript:alert(1)) **" + "x" * 10_000,
            "audio_url": "javascript:alert(1)" if n % 2 else f"https://cdn1.suno.ai/evil-{n}.mp3",
            "video_url": "data:text/html,boom",
            "image_url": "https://cdn2.suno.ai/" + "a" * 3000 + ".jpeg",
            "metadata": {"tags": "@here " + "t" * 10_000, "prompt": "`" * 5000, "duration": 1e300},
        }
        for n in range(12)
    ]
    relay.add_task(
        "hostile",
        [
            task_payload("hostile", "IN_PROGRESS", clips=hostile_clips),
            task_payload("hostile", "SUCCESS", clips=hostile_clips, fail_reason="@everyone " * 500),
        ],
    )
    async with running_bot(fake, bot_settings(relay, database)):
        message = fake.message_for(await ask(fake, "hostile"))
        assert message is not None
        await fake.wait_for(lambda: shows_final_status(message))
    assert fake.rejected == []
    bodies = sent_to_discord(fake)
    assert bodies
    assert all(body.get("allowed_mentions") == {"parse": []} for body in bodies)
    urls = [url for _, url in link_buttons(message)] + images(message.components)
    assert urls and all(url.startswith("https://") for url in urls)
    assert "@everyone" not in text_of(message)
    assert "@here" not in text_of(message)


async def test_a_rate_limited_edit_is_retried_and_the_message_still_finishes(
    fake: FakeDiscord, relay: FakeRelay, database: Path
) -> None:
    relay.add_task("limited", music_timeline("limited"))
    fake.rate_limit_next("PATCH", "/webhooks/*/messages/@original", retry_after=0.2, times=2)
    async with running_bot(fake, bot_settings(relay, database)):
        message = fake.message_for(await ask(fake, "limited"))
        assert message is not None
        await fake.wait_for(lambda: shows_final_status(message))
    assert [r.status for r in fake.requests if r.status == 429] == [429, 429]
    assert fake.rejected == []


async def test_a_deleted_message_ends_its_watch_quietly_while_others_go_on(
    fake: FakeDiscord, relay: FakeRelay, database: Path
) -> None:
    ids = clip_ids_for("gone", 2)
    queued = task_payload("gone", "QUEUED", clips=[clip("nested", i, "queued") for i in ids])
    streaming = task_payload(
        "gone", "IN_PROGRESS", clips=[clip("nested", i, "streaming") for i in ids]
    )
    done = task_payload("gone", "SUCCESS", clips=[clip("nested", i) for i in ids])
    relay.add_task("gone", [queued, queued, queued, streaming, streaming, done])
    async with running_bot(fake, bot_settings(relay, database)) as bot:
        first = fake.message_for(await ask(fake, "gone"))
        second = fake.message_for(await ask(fake, "gone"))
        assert first is not None and second is not None
        fake.delete_message(first.id)
        await fake.wait_for(lambda: shows_final_status(second))
        await fake.wait_for(lambda: bot.tracker.stats().watches == 0)
    assert not shows_final_status(first)
    assert sorted(stored_outcomes(database)) == sorted([WatchOutcome.LOST, WatchOutcome.FINISHED])


async def test_after_the_token_expires_edits_go_through_the_bots_channel_access(
    fake: FakeDiscord, relay: FakeRelay, database: Path
) -> None:
    ids = clip_ids_for("long", 2)
    steps = [
        task_payload(
            "long", "IN_PROGRESS", f"{p}%", clips=[clip("nested", i, "streaming") for i in ids]
        )
        for p in range(1, 60, 2)
    ]
    steps.append(task_payload("long", "SUCCESS", clips=[clip("nested", i) for i in ids]))
    relay.add_task("long", steps)
    # A token made 15 minutes minus 3 s ago: it expires while the task is still running.
    created = datetime.now(UTC) - TOKEN_LIFETIME + timedelta(seconds=3)
    settings = bot_settings(relay, database, INTERACTION_EXPIRY_MARGIN_SECONDS=1)
    async with running_bot(fake, settings):
        interaction = await fake.interact(options={"task_id": "long"}, created_at=created)
        await interaction.wait_callback()
        message = fake.message_for(interaction)
        assert message is not None
        await fake.wait_for(lambda: shows_final_status(message), timeout=15)
    vias = [edit.via for edit in message.edits]
    assert vias[0] == "callback"
    switch = vias.index("channel")
    assert set(vias[1:switch]) == {"webhook"}
    assert set(vias[switch:]) == {"channel"}
    assert not [r for r in fake.requests if r.status == 401]


async def test_a_token_that_dies_early_is_used_once_and_never_again(
    fake: FakeDiscord, relay: FakeRelay, database: Path
) -> None:
    ids = clip_ids_for("dies", 2)
    steps = [
        task_payload(
            "dies", "IN_PROGRESS", f"{p}%", clips=[clip("nested", i, "streaming") for i in ids]
        )
        for p in range(1, 20)
    ]
    steps.append(task_payload("dies", "SUCCESS", clips=[clip("nested", i) for i in ids]))
    relay.add_task("dies", steps)
    async with running_bot(fake, bot_settings(relay, database)):
        interaction = await fake.interact(options={"task_id": "dies"})
        await interaction.wait_callback()
        message = fake.message_for(interaction)
        assert message is not None
        await fake.wait_for(lambda: len(message.edits) >= 3)
        fake.expire_token(interaction.token)
        await fake.wait_for(lambda: shows_final_status(message))
    rejected_token_calls = [r for r in fake.requests if r.status == 401]
    assert len(rejected_token_calls) == 1
    assert message.edits[-1].via == "channel"


async def test_a_private_status_says_live_updates_ended_before_its_token_expires(
    fake: FakeDiscord, relay: FakeRelay, database: Path
) -> None:
    ids = clip_ids_for("secret", 2)
    relay.add_task(
        "secret",
        [
            task_payload(
                "secret", "IN_PROGRESS", clips=[clip("nested", i, "streaming") for i in ids]
            )
        ],
    )
    created = datetime.now(UTC) - TOKEN_LIFETIME + timedelta(seconds=3)
    settings = bot_settings(relay, database, INTERACTION_EXPIRY_MARGIN_SECONDS=1.5)
    async with running_bot(fake, settings) as bot:
        interaction = await fake.interact(
            options={"task_id": "secret", "private": True}, created_at=created
        )
        await interaction.wait_callback()
        message = fake.message_for(interaction)
        assert message is not None
        await fake.wait_for(lambda: "Live updates ended" in text_of(message), timeout=10)
        await fake.wait_for(lambda: bot.tracker.stats().watches == 0)
        assert not interaction.token_expired()
    assert {edit.via for edit in message.edits} == {"callback", "webhook"}
    assert not [r for r in fake.requests if r.status == 401 or r.path.startswith("/channels")]
    assert stored_outcomes(database) == [WatchOutcome.LOST]


async def test_a_watch_that_outlives_its_timeout_says_auto_refresh_stopped(
    fake: FakeDiscord, relay: FakeRelay, database: Path
) -> None:
    ids = clip_ids_for("forever", 2)
    relay.add_task(
        "forever",
        [task_payload("forever", "QUEUED", clips=[clip("nested", i, "queued") for i in ids])],
    )
    async with running_bot(fake, bot_settings(relay, database, WATCH_TIMEOUT_SECONDS=1)) as bot:
        message = fake.message_for(await ask(fake, "forever"))
        assert message is not None
        await fake.wait_for(lambda: "Auto-refresh stopped" in text_of(message))
        await fake.wait_for(lambda: bot.tracker.stats().tasks == 0)
        polls = relay.fetch_count("forever")
    assert "/suno status" in text_of(message)
    assert relay.fetch_count("forever") == polls
    assert stored_outcomes(database) == [WatchOutcome.TIMED_OUT]


# -- command sync -------------------------------------------------------------------------


async def test_commands_sync_to_the_development_guild_when_it_is_set(
    fake: FakeDiscord, relay: FakeRelay, database: Path
) -> None:
    settings = bot_settings(relay, database, DISCORD_GUILD_ID=fake.guild_id)
    async with running_bot(fake, settings):
        pass
    [commands] = fake.registered_commands.values()
    assert list(fake.registered_commands) == [str(fake.guild_id)]
    [suno] = commands
    assert suno["name"] == "suno"
    [status] = suno["options"]
    assert status["name"] == "status"
    options = {option["name"]: option for option in status["options"]}
    assert options["task_id"]["required"] is True and options["task_id"]["type"] == 3
    assert options["private"].get("required", False) is False


async def test_global_commands_are_synced_only_when_the_tree_changed(
    fake: FakeDiscord, relay: FakeRelay, database: Path
) -> None:
    settings = bot_settings(relay, database)
    for _ in range(3):
        async with running_bot(fake, settings):
            pass
    puts = [r for r in fake.requests if r.method == "PUT" and r.path.endswith("/commands")]
    assert len(puts) == 1
    assert "global" in fake.registered_commands
