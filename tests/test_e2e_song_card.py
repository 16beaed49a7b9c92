"""The finished card end to end: its songs attached after the final state (or refused, leaving
the links), its buttons pressed by whoever may and may not, before and after a restart, and
the one reply that mentions who asked to be told."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import AsyncIterator
from contextlib import closing
from pathlib import Path
from typing import Any

import discord
import pytest

from tests.kit.cards import files
from tests.kit.fake_cdn import FakeCdn, mp3_bytes
from tests.kit.fake_discord import DEFAULT_USER_ID, EPHEMERAL, FakeDiscord, FakeMessage
from tests.kit.fake_relay import FakeRelay
from tests.kit.harness import bot_settings, link_buttons, running_bot, text_of
from tests.kit.payloads import music_timeline

LYRICS = "[Verse]\nCity lights are calling me home"
OTHER_USER = DEFAULT_USER_ID + 100
THIRD_USER = DEFAULT_USER_ID + 200
MODERATOR = DEFAULT_USER_ID + 300
MANAGE_MESSAGES = discord.Permissions(
    view_channel=True, send_messages=True, manage_messages=True
).value


@pytest.fixture
async def cdn() -> AsyncIterator[FakeCdn]:
    async with FakeCdn() as cdn:
        yield cdn


def song_timeline(task_id: str, urls: list[str], *, running: int = 0) -> list[dict[str, Any]]:
    """A music task whose finished clips' MP3s are at `urls`; `running` more polls before it
    succeeds."""
    timeline = music_timeline(task_id, clip_count=len(urls))
    done = timeline[-1]
    for clip, url in zip(done["data"], urls, strict=True):
        clip["audio_url"] = url
    for step in timeline:
        for clip in step["data"] or []:
            clip["metadata"]["prompt"] = LYRICS
    return [*timeline[1:-1], *[timeline[-2]] * running, done]


def shows_done(message: FakeMessage) -> bool:
    return "**Status:** Done" in text_of(message)


def stored(database: Path, column: str) -> list[Any]:
    with closing(sqlite3.connect(database)) as connection:
        rows = connection.execute(f"SELECT {column} FROM watches ORDER BY id").fetchall()  # noqa: S608
    return [value for (value,) in rows]


def edits_with_files(message: FakeMessage) -> list[int]:
    return [i for i, edit in enumerate(message.edits) if edit.payload.get("attachments")]


async def ask(
    fake: FakeDiscord, database: Path, task_id: str, **options: str | bool | int
) -> FakeMessage:
    """Runs `/suno status`; its message, once the bot has recorded which message it is."""
    limit = options.pop("attachment_size_limit", None)
    interaction = await fake.interact(
        options={"task_id": task_id, **options},
        attachment_size_limit=int(limit) if limit is not None else None,
    )
    await interaction.wait_callback()
    message = fake.message_for(interaction)
    assert message is not None
    await fake.wait_for(lambda: message.id in stored(database, "message_id"))
    return message


def private_answers(fake: FakeDiscord) -> list[str]:
    return [text_of(m) for m in fake.messages.values() if m.flags & EPHEMERAL]


# The song plays in the chat


async def test_the_songs_are_attached_in_an_edit_after_the_final_state(
    fake: FakeDiscord, relay: FakeRelay, cdn: FakeCdn, database: Path
) -> None:
    songs = [mp3_bytes(40_000), mp3_bytes(30_000)]
    urls = [cdn.put("a.mp3", songs[0]), cdn.put("b.mp3", songs[1])]
    relay.add_task("song", song_timeline("song", urls))
    settings = bot_settings(relay, database, AUDIO_HOSTS=cdn.host)
    async with running_bot(fake, settings):
        message = await ask(fake, database, "song")
        await fake.wait_for(lambda: len(message.attachments) == 2)
        await fake.wait_for(lambda: stored(database, "audio") == ["attached"])
    final = next(i for i, edit in enumerate(message.edits) if "Done" in str(edit.payload))
    [attaching] = edits_with_files(message)
    assert final < attaching, "the finished card goes out before the songs"
    assert [a["size"] for a in message.attachments] == [40_000, 30_000]
    assert all(a["filename"].endswith(".mp3") for a in message.attachments)
    assert all(a["content_type"] == "audio/mpeg" for a in message.attachments)
    # The card plays each song in its own block (a File component naming its attachment).
    assert files(message.components) == [
        f"attachment://{a['filename']}" for a in message.attachments
    ]
    assert shows_done(message)
    assert [label for label, _ in link_buttons(message)] == [
        "MP3 · 1",
        "MP4 · 1",
        "MP3 · 2",
        "MP4 · 2",
    ]
    # The CDN never saw the relay key, nor any credentials.
    for request in cdn.requests:
        assert "Authorization" not in request.headers
        assert settings.suno_api_key.get_secret_value() not in str(request.headers)
    assert private_answers(fake) == []


async def test_a_card_of_many_songs_gets_only_the_songs_it_has_room_to_play(
    fake: FakeDiscord, relay: FakeRelay, cdn: FakeCdn, database: Path
) -> None:
    urls = [cdn.put(f"s{n}.mp3", mp3_bytes(2000)) for n in range(12)]
    relay.add_task("many", song_timeline("many", urls))
    settings = bot_settings(relay, database, AUDIO_HOSTS=cdn.host)
    async with running_bot(fake, settings):
        message = await ask(fake, database, "many")
        await fake.wait_for(lambda: stored(database, "audio") in (["attached"], ["given_up"]))
    played = files(message.components)
    assert played == [f"attachment://{a['filename']}" for a in message.attachments]
    assert len(cdn.requests) == len(played), "no song is downloaded that the card cannot play"
    assert len(link_buttons(message)) >= 1


async def test_songs_cut_off_by_a_stop_are_attached_after_the_restart_and_only_then(
    fake: FakeDiscord, relay: FakeRelay, cdn: FakeCdn, database: Path
) -> None:
    url = cdn.stall("a.mp3")
    relay.add_task("cut", song_timeline("cut", [url]))
    settings = bot_settings(relay, database, AUDIO_HOSTS=cdn.host, AUDIO_TIMEOUT_SECONDS=60)
    async with running_bot(fake, settings):
        message = await ask(fake, database, "cut")
        await fake.wait_for(lambda: len(cdn.requested("a.mp3")) == 1)
    assert stored(database, "outcome") == ["finished"]
    assert stored(database, "audio") == [None]

    cdn.put("a.mp3", mp3_bytes(1000))
    async with running_bot(fake, settings):
        await fake.wait_for(lambda: stored(database, "audio") == ["attached"])
    assert [a["size"] for a in message.attachments] == [1000]
    assert len(cdn.requested("a.mp3")) == 2
    # Settled for good: the next start has nothing left to do for it.
    assert stored(database, "announced") == [1]
    assert stored(database, "audio_attempts") == [2]


async def test_attach_audio_false_downloads_nothing(
    fake: FakeDiscord, relay: FakeRelay, cdn: FakeCdn, database: Path
) -> None:
    relay.add_task("off", song_timeline("off", [cdn.put("a.mp3", mp3_bytes(1000))]))
    settings = bot_settings(relay, database, AUDIO_HOSTS=cdn.host, ATTACH_AUDIO=False)
    async with running_bot(fake, settings) as bot:
        message = await ask(fake, database, "off")
        await fake.wait_for(lambda: shows_done(message))
        await fake.wait_for(lambda: bot.tracker.stats().watches == 0)
    assert cdn.requests == []
    assert message.attachments == []
    assert stored(database, "audio") == ["given_up"]


def _private(cdn: FakeCdn) -> tuple[str, str]:
    cdn.put("a.mp3", mp3_bytes(1000))
    return "localhost", cdn.url("a.mp3", host="localhost")


def _off_list(cdn: FakeCdn) -> tuple[str, str]:
    cdn.put("a.mp3", mp3_bytes(1000))
    return "cdn1.suno.ai", cdn.url("a.mp3")


def _redirect_off_list(cdn: FakeCdn) -> tuple[str, str]:
    cdn.put("a.mp3", mp3_bytes(1000))
    return cdn.host, cdn.redirect("moved.mp3", cdn.url("a.mp3", host="localhost"))


def _too_large_declared(cdn: FakeCdn) -> tuple[str, str]:
    return cdn.host, cdn.put("a.mp3", mp3_bytes(150_000))


def _too_large_undeclared(cdn: FakeCdn) -> tuple[str, str]:
    return cdn.host, cdn.put("a.mp3", mp3_bytes(150_000), declare_length=False)


def _not_audio(cdn: FakeCdn) -> tuple[str, str]:
    return cdn.host, cdn.put("a.mp3", b"<html>sign in</html>", content_type="text/html")


def _slow(cdn: FakeCdn) -> tuple[str, str]:
    return cdn.host, cdn.stall("a.mp3")


@pytest.mark.parametrize(
    "case",
    [
        _private,
        _off_list,
        _redirect_off_list,
        _too_large_declared,
        _too_large_undeclared,
        _not_audio,
        _slow,
    ],
)
async def test_a_refused_download_leaves_the_links_only_card(
    fake: FakeDiscord,
    relay: FakeRelay,
    cdn: FakeCdn,
    database: Path,
    case: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    hosts, url = case(cdn)
    relay.add_task("refused", song_timeline("refused", [url]))
    settings = bot_settings(relay, database, AUDIO_HOSTS=hosts, AUDIO_TIMEOUT_SECONDS=1)
    with caplog.at_level(logging.INFO, logger="bot.audio"):
        async with running_bot(fake, settings):
            message = await ask(fake, database, "refused", attachment_size_limit=100_000)
            await fake.wait_for(lambda: stored(database, "audio") == ["given_up"])
    [line] = [r.getMessage() for r in caplog.records if r.name == "bot.audio"]
    assert line.startswith("not attaching song 1 of task refused: ")
    assert "a.mp3" not in line and "moved.mp3" not in line, "no URL path in the log"
    assert shows_done(message)
    assert message.attachments == []
    assert files(message.components) == []
    assert edits_with_files(message) == []
    assert [label for label, _ in link_buttons(message)] == ["MP3 · 1", "MP4 · 1"]
    assert len(fake.messages) == 1, "nobody is told about it"
    assert fake.rejected == []


# Buttons that keep working


def button(fake: FakeDiscord, message: FakeMessage, control: str) -> str:
    [custom_id] = [c for c in fake.custom_ids(message.id) if c.startswith(f"suno:{control}:")]
    return custom_id


async def press(
    fake: FakeDiscord, message: FakeMessage, control: str, **who: Any
) -> tuple[int, str | None]:
    """Presses a button; the callback type and the text of the private answer, if any."""
    before = set(fake.messages)
    interaction = await fake.press_button(message.id, button(fake, message, control), **who)
    callback = await interaction.wait_callback()
    if callback.type == 4:
        return 4, str((callback.data or {}).get("content"))
    new = [fake.messages[i] for i in set(fake.messages) - before]
    return callback.type, text_of(new[0]) if new else None


async def test_a_running_card_has_refresh_stop_and_notify_and_a_done_one_lyrics(
    fake: FakeDiscord, relay: FakeRelay, database: Path
) -> None:
    relay.add_task("buttons", song_timeline("buttons", ["https://cdn1.suno.ai/x.mp3"], running=5))
    async with running_bot(fake, bot_settings(relay, database, ATTACH_AUDIO=False)):
        message = await ask(fake, database, "buttons")
        assert fake.custom_ids(message.id) == [
            "suno:lyrics:buttons",
            "suno:refresh:buttons",
            "suno:stop:buttons",
            "suno:notify:buttons",
        ]
        await fake.wait_for(lambda: shows_done(message))
    assert fake.custom_ids(message.id) == ["suno:lyrics:buttons"]
    assert [label for label, _ in link_buttons(message)] == ["MP3 · 1", "MP4 · 1"]


async def test_stop_is_refused_privately_to_others_and_done_by_a_moderator(
    fake: FakeDiscord, relay: FakeRelay, database: Path
) -> None:
    relay.add_task("stop", song_timeline("stop", ["https://cdn1.suno.ai/x.mp3"], running=1000))
    async with running_bot(fake, bot_settings(relay, database, ATTACH_AUDIO=False)) as bot:
        message = await ask(fake, database, "stop")
        kind, text = await press(fake, message, "stop", user_id=OTHER_USER)
        assert kind == 4
        assert text == "Only the requester or a moderator can stop this."
        await fake.wait_for(lambda: bot.tracker.stats().watches == 1)
        assert stored(database, "outcome") == ["active"]

        kind, _ = await press(fake, message, "stop", user_id=MODERATOR, permissions=MANAGE_MESSAGES)
        assert kind == 6
        await fake.wait_for(lambda: "Live updates stopped" in text_of(message))
        await fake.wait_for(lambda: stored(database, "outcome") == ["stopped"])
        assert fake.custom_ids(message.id) == ["suno:lyrics:stop", "suno:refresh:stop"]
        await fake.wait_for(lambda: bot.tracker.stats().watches == 0)


async def test_the_requester_stops_and_refresh_revives_the_card_after_a_restart(
    fake: FakeDiscord, relay: FakeRelay, database: Path
) -> None:
    relay.add_task("revive", song_timeline("revive", ["https://cdn1.suno.ai/x.mp3"], running=30))
    settings = bot_settings(relay, database, ATTACH_AUDIO=False)
    async with running_bot(fake, settings):
        message = await ask(fake, database, "revive")
        kind, _ = await press(fake, message, "stop")
        assert kind == 6
        await fake.wait_for(lambda: stored(database, "outcome") == ["stopped"])

    relay.add_task("revive", song_timeline("revive", ["https://cdn1.suno.ai/x.mp3"]))
    async with running_bot(fake, settings) as bot:
        assert bot.tracker.stats().watches == 0
        kind, _ = await press(fake, message, "refresh", user_id=OTHER_USER)
        assert kind == 6
        await fake.wait_for(lambda: shows_done(message))
        await fake.wait_for(lambda: stored(database, "outcome") == ["finished"])
        pressed = await fake.press_button(message.id, "suno:lyrics:revive", user_id=OTHER_USER)
        await pressed.wait_callback()
        lyrics = fake.message_for(pressed)
        assert lyrics is not None
        await fake.wait_for(lambda: "Lyrics" in text_of(lyrics))
    assert lyrics.ephemeral
    assert "City lights are calling me home" in text_of(lyrics)


async def test_stop_and_notify_keep_their_rules_after_a_restart(
    fake: FakeDiscord, relay: FakeRelay, database: Path
) -> None:
    relay.add_task("again", song_timeline("again", ["https://cdn1.suno.ai/x.mp3"], running=1000))
    settings = bot_settings(relay, database, ATTACH_AUDIO=False)
    async with running_bot(fake, settings):
        message = await ask(fake, database, "again")
    async with running_bot(fake, settings) as bot:
        await fake.wait_for(lambda: bot.tracker.stats().watches == 1)
        kind, text = await press(fake, message, "stop", user_id=OTHER_USER)
        assert (kind, text) == (4, "Only the requester or a moderator can stop this.")
        kind, text = await press(fake, message, "notify", user_id=OTHER_USER)
        assert (kind, text) == (4, "You'll be mentioned here when this task finishes.")
        kind, _ = await press(fake, message, "stop")
        assert kind == 6
        await fake.wait_for(lambda: stored(database, "outcome") == ["stopped"])
    with closing(sqlite3.connect(database)) as connection:
        assert connection.execute("SELECT user_id FROM subscribers").fetchall() == [(OTHER_USER,)]


async def test_refresh_has_a_cooldown_per_message(
    fake: FakeDiscord, relay: FakeRelay, database: Path
) -> None:
    relay.add_task("cool", song_timeline("cool", ["https://cdn1.suno.ai/x.mp3"], running=1000))
    async with running_bot(fake, bot_settings(relay, database, ATTACH_AUDIO=False)):
        message = await ask(fake, database, "cool")
        kind, _ = await press(fake, message, "refresh")
        assert kind == 6
        kind, text = await press(fake, message, "refresh", user_id=OTHER_USER)
    assert kind == 4
    assert text == "This card was just refreshed — try again in a few seconds."


async def test_buttons_of_a_forgotten_task_still_answer(
    fake: FakeDiscord, relay: FakeRelay, database: Path
) -> None:
    relay.add_task("gone", song_timeline("gone", ["https://cdn1.suno.ai/x.mp3"], running=1000))
    settings = bot_settings(relay, database, ATTACH_AUDIO=False)
    async with running_bot(fake, settings):
        message = await ask(fake, database, "gone")
    with closing(sqlite3.connect(database)) as connection:
        connection.execute("DELETE FROM watches")
        connection.commit()
    async with running_bot(fake, settings):
        for control in ("stop", "notify"):
            kind, text = await press(fake, message, control)
            assert kind == 4
            assert text is not None and "no longer follows this task" in text
        kind, _ = await press(fake, message, "refresh")
        assert kind == 6
        await fake.wait_for(lambda: stored(database, "outcome") == ["active"])


async def test_lyrics_come_privately_in_pages(
    fake: FakeDiscord, relay: FakeRelay, database: Path
) -> None:
    timeline = song_timeline("words", ["https://cdn1.suno.ai/x.mp3"])
    lines = [f"[Verse {n}] line number {n} of a very long song" for n in range(400)]
    timeline[-1]["data"][0]["metadata"]["prompt"] = "\n".join(lines)
    relay.add_task("words", timeline)
    async with running_bot(fake, bot_settings(relay, database, ATTACH_AUDIO=False)):
        message = await ask(fake, database, "words")
        await fake.wait_for(lambda: shows_done(message))
        interaction = await fake.press_button(message.id, "suno:lyrics:words")
        await interaction.wait_callback()
        lyrics = fake.message_for(interaction)
        assert lyrics is not None and lyrics.ephemeral
        await fake.wait_for(lambda: "Lyrics" in text_of(lyrics))
        assert "line number 0 " in text_of(lyrics)
        assert "Page 1 of" in text_of(lyrics)
        [_, forward] = fake.custom_ids(lyrics.id)
        assert forward == "suno:page:1:words"
        turn = await fake.press_button(lyrics.id, forward)
        await turn.wait_callback()
        await fake.wait_for(lambda: "Page 2 of" in text_of(lyrics))
    assert "line number 0 " not in text_of(lyrics)
    assert len([m for m in fake.messages.values() if m.ephemeral]) == 1


# The completion reply


async def test_the_completion_reply_mentions_exactly_the_requester_and_subscribers(
    fake: FakeDiscord, relay: FakeRelay, database: Path
) -> None:
    relay.add_task("ping", song_timeline("ping", ["https://cdn1.suno.ai/x.mp3"], running=40))
    async with running_bot(fake, bot_settings(relay, database, ATTACH_AUDIO=False)) as bot:
        message = await ask(fake, database, "ping", notify=True)
        kind, text = await press(fake, message, "notify", user_id=OTHER_USER)
        assert (kind, text) == (4, "You'll be mentioned here when this task finishes.")
        await press(fake, message, "notify", user_id=THIRD_USER)
        kind, text = await press(fake, message, "notify", user_id=THIRD_USER)
        assert text == "You won't be mentioned when this task finishes."
        await fake.wait_for(lambda: shows_done(message))
        await fake.wait_for(lambda: len(fake.replies_to(message.id)) == 1)
        await fake.wait_for(lambda: bot.tracker.stats().watches == 0)
    [reply] = fake.replies_to(message.id)
    assert reply.content.startswith(f"<@{DEFAULT_USER_ID}> <@{OTHER_USER}> ")
    assert f"<@{THIRD_USER}>" not in reply.content
    assert reply.allowed_mentions == {"parse": [], "users": [DEFAULT_USER_ID, OTHER_USER]}
    # Every edit of the card kept pinging off.
    for edit in message.edits[1:]:
        mentions = edit.payload.get("allowed_mentions")
        assert mentions is None or mentions.get("parse") == []
    assert stored(database, "announced") == [1]


async def test_no_reply_when_nobody_asked(
    fake: FakeDiscord, relay: FakeRelay, database: Path
) -> None:
    relay.add_task("quiet", song_timeline("quiet", ["https://cdn1.suno.ai/x.mp3"]))
    async with running_bot(fake, bot_settings(relay, database, ATTACH_AUDIO=False)) as bot:
        message = await ask(fake, database, "quiet")
        await fake.wait_for(lambda: shows_done(message))
        await fake.wait_for(lambda: bot.tracker.stats().watches == 0)
    assert fake.replies_to(message.id) == []
    assert len(fake.messages) == 1


async def test_without_channel_access_the_reply_comes_through_the_interaction(
    fake: FakeDiscord, relay: FakeRelay, database: Path
) -> None:
    relay.add_task("dm", song_timeline("dm", ["https://cdn1.suno.ai/x.mp3"], running=3))
    async with running_bot(fake, bot_settings(relay, database, ATTACH_AUDIO=False)) as bot:
        message = await ask(fake, database, "dm", notify=True)
        fake.revoke_channel_access(message.channel_id)
        await fake.wait_for(lambda: shows_done(message))
        await fake.wait_for(lambda: bot.tracker.stats().watches == 0)
        await fake.wait_for(lambda: len(fake.messages) == 2)
    [note] = [m for m in fake.messages.values() if m.id != message.id]
    assert note.content.startswith(f"<@{DEFAULT_USER_ID}> ")
    assert note.allowed_mentions == {"parse": [], "users": [DEFAULT_USER_ID]}
    assert not note.ephemeral


async def test_a_task_already_done_gets_its_songs_and_no_mention(
    fake: FakeDiscord, relay: FakeRelay, cdn: FakeCdn, database: Path
) -> None:
    relay.add_task("ready", song_timeline("ready", [cdn.put("a.mp3", mp3_bytes(3000))])[-1:])
    settings = bot_settings(relay, database, AUDIO_HOSTS=cdn.host)
    async with running_bot(fake, settings):
        message = await ask(fake, database, "ready", notify=True)
        await fake.wait_for(lambda: stored(database, "audio") == ["attached"])
    assert shows_done(message)
    assert [a["size"] for a in message.attachments] == [3000]
    assert fake.replies_to(message.id) == []
    assert len(fake.messages) == 1
