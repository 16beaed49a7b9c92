"""Durable watches end to end: stops, crashes and expired tokens never leave a message stuck."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import sys
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.tracking.store import WatchOutcome
from tests.kit.fake_discord import FAKE_BOT_TOKEN, TOKEN_LIFETIME, FakeDiscord, FakeMessage
from tests.kit.fake_relay import FakeRelay, RelayReply
from tests.kit.harness import bot_settings, running_bot, text_of
from tests.kit.payloads import clip, clip_ids_for, music_timeline, task_payload

REPO = Path(__file__).resolve().parent.parent


def shows_done(message: FakeMessage) -> bool:
    """Whether the message says anywhere that the task is done."""
    return "**Status:** Done" in text_of(message)


def stored(database: Path) -> list[tuple[str, str | None]]:
    """(outcome, token or None) of every stored watch, read from the file itself."""
    with closing(sqlite3.connect(database)) as connection:
        rows = connection.execute(
            "SELECT outcome, interaction_token FROM watches ORDER BY id"
        ).fetchall()
    return [(outcome, token) for outcome, token in rows]


def long_running(task_id: str, polls: int) -> list[dict[str, object]]:
    """A task that stays IN_PROGRESS for `polls` polls (progress moving), then succeeds."""
    ids = clip_ids_for(task_id, 2)
    steps: list[dict[str, object]] = [
        task_payload(
            task_id,
            "IN_PROGRESS",
            f"{1 + n * 90 // polls}%",
            clips=[clip("nested", i, "streaming") for i in ids],
        )
        for n in range(polls)
    ]
    steps.append(task_payload(task_id, "SUCCESS", clips=[clip("nested", i) for i in ids]))
    return steps


class BotProcess:
    """`python -m bot` as its own process, talking to the fakes over 127.0.0.1."""

    def __init__(self, fake: FakeDiscord, relay: FakeRelay, database: Path) -> None:
        self._args = [sys.executable, "-m", "tests.kit.launch_bot", fake.api_base, fake.gateway_url]
        self._env = {
            "PATH": os.environ.get("PATH", ""),
            "PYTHONPATH": str(REPO),
            "DISCORD_TOKEN": FAKE_BOT_TOKEN,
            "SUNO_API_BASE_URL": relay.base_url,
            "SUNO_API_KEY": relay.api_key or "",
            "DATABASE_URL": f"sqlite:///{database}",
            "POLL_INTERVAL_SECONDS": "0.1",
            "LOG_LEVEL": "DEBUG",
        }
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            *self._args,
            cwd=REPO,
            env=self._env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )

    async def watching(self, fake: FakeDiscord, task_id: str, *, edits: int) -> FakeMessage:
        """Starts the process, asks for `task_id`, and waits until its message was edited."""
        await self.start()
        await fake.wait_ready(timeout=30)
        interaction = await fake.interact(options={"task_id": task_id})
        await interaction.wait_callback()
        message = fake.message_for(interaction)
        assert message is not None
        await fake.wait_for(lambda: len(message.edits) >= edits)
        return message

    async def signal_and_wait(self, sig: signal.Signals) -> tuple[int, str]:
        assert self.process is not None
        self.process.send_signal(sig)
        output, _ = await asyncio.wait_for(self.process.communicate(), timeout=15)
        assert self.process.returncode is not None
        return self.process.returncode, output.decode(errors="replace")


async def test_a_graceful_stop_mid_task_resumes_and_finishes_the_original_message(
    fake: FakeDiscord, relay: FakeRelay, database: Path
) -> None:
    relay.add_task("redeploy", long_running("redeploy", polls=6))
    settings = bot_settings(relay, database)
    async with running_bot(fake, settings):
        interaction = await fake.interact(options={"task_id": "redeploy"})
        await interaction.wait_callback()
        message = fake.message_for(interaction)
        assert message is not None
        await fake.wait_for(lambda: len(message.edits) >= 3)
    edits_before_restart = len(message.edits)
    assert not shows_done(message)
    assert stored(database)[0][0] == WatchOutcome.ACTIVE

    async with running_bot(fake, settings) as bot:
        await fake.wait_for(lambda: shows_done(message))
        await fake.wait_for(lambda: bot.tracker.stats().watches == 0)
    assert len(message.edits) > edits_before_restart
    assert message.edits[-1].via == "webhook"
    assert len(fake.messages) == 1  # the original message was finished; nothing new was posted
    assert stored(database) == [(WatchOutcome.FINISHED, None)]


async def test_a_hard_kill_loses_nothing_that_was_acknowledged(
    fake: FakeDiscord, relay: FakeRelay, database: Path
) -> None:
    relay.add_task("crash", long_running("crash", polls=8))
    process = BotProcess(fake, relay, database)
    message = await process.watching(fake, "crash", edits=2)
    code, _ = await process.signal_and_wait(signal.SIGKILL)
    assert code == -signal.SIGKILL
    assert not shows_done(message)

    async with running_bot(fake, bot_settings(relay, database)) as bot:
        await fake.wait_for(lambda: shows_done(message))
        await fake.wait_for(lambda: bot.tracker.stats().watches == 0)
    assert stored(database) == [(WatchOutcome.FINISHED, None)]


async def test_a_crash_while_the_relay_is_slow_still_finishes_the_thinking_message(
    fake: FakeDiscord, relay: FakeRelay, database: Path
) -> None:
    steps = music_timeline("late")
    relay.add_task("late", [RelayReply(body={"code": "success", "data": steps[0]}, delay=30)])
    process = BotProcess(fake, relay, database)
    await process.start()
    await fake.wait_ready(timeout=30)
    interaction = await fake.interact(options={"task_id": "late"})
    callback = await interaction.wait_callback()
    assert callback.type == 5  # deferred while the relay hangs
    await fake.wait_for(lambda: len(stored(database)) == 1)
    await process.signal_and_wait(signal.SIGKILL)

    relay.add_task("late", steps[-1])
    async with running_bot(fake, bot_settings(relay, database)) as bot:
        message = fake.message_for(interaction)
        assert message is not None
        await fake.wait_for(lambda: shows_done(message))
        await fake.wait_for(lambda: bot.tracker.stats().watches == 0)
    assert not message.loading


async def test_when_the_token_expired_during_the_downtime_the_channel_edit_finishes_it(
    fake: FakeDiscord, relay: FakeRelay, database: Path
) -> None:
    relay.add_task("overnight", long_running("overnight", polls=4))
    settings = bot_settings(relay, database, INTERACTION_EXPIRY_MARGIN_SECONDS=0.5)
    created = datetime.now(UTC) - TOKEN_LIFETIME + timedelta(seconds=2.5)
    async with running_bot(fake, settings):
        interaction = await fake.interact(options={"task_id": "overnight"}, created_at=created)
        await interaction.wait_callback()
        message = fake.message_for(interaction)
        assert message is not None
        await fake.wait_for(lambda: len(message.edits) >= 2)
    await fake.wait_for(interaction.token_expired, timeout=10)

    async with running_bot(fake, settings) as bot:
        await fake.wait_for(lambda: shows_done(message))
        await fake.wait_for(lambda: bot.tracker.stats().watches == 0)
    assert message.edits[-1].via == "channel"
    assert not [r for r in fake.requests if r.status == 401]
    assert stored(database) == [(WatchOutcome.FINISHED, None)]


async def test_sigterm_stops_the_bot_cleanly_and_the_watch_resumes_later(
    fake: FakeDiscord, relay: FakeRelay, database: Path
) -> None:
    relay.add_task("docker-stop", long_running("docker-stop", polls=6))
    process = BotProcess(fake, relay, database)
    message = await process.watching(fake, "docker-stop", edits=2)

    code, output = await process.signal_and_wait(signal.SIGTERM)
    assert code == 0, output
    assert "shutting down" in output
    assert "Traceback" not in output
    assert FAKE_BOT_TOKEN not in output
    assert (relay.api_key or "-") not in output
    assert all(i.token not in output for i in fake.interactions.values())

    async with running_bot(fake, bot_settings(relay, database)) as bot:
        await fake.wait_for(lambda: shows_done(message))
        await fake.wait_for(lambda: bot.tracker.stats().watches == 0)


async def test_a_corrupt_database_is_reported_and_left_untouched(tmp_path: Path) -> None:
    database = tmp_path / "suno-bot.sqlite3"
    garbage = b"this is not a database\x00" * 200
    database.write_bytes(garbage)
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(REPO),
        "DISCORD_TOKEN": FAKE_BOT_TOKEN,
        "SUNO_API_BASE_URL": "http://127.0.0.1:9",
        "SUNO_API_KEY": "sk-unused",
        "DATABASE_URL": f"sqlite:///{database}",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode == 1
    text = output.decode()
    assert str(database) in text
    assert "restore a backup" in text
    assert "Traceback" not in text
    assert database.read_bytes() == garbage
