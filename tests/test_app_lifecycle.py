"""SunoBot's own lifecycle: nothing it started keeps running against the store after close()."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bot.runner import assembled_bot
from tests.kit.fake_discord import FakeDiscord
from tests.kit.fake_relay import FakeRelay
from tests.kit.harness import bot_settings


async def test_closing_the_bot_while_it_resumes_watches_stops_the_resume(
    fake: FakeDiscord, relay: FakeRelay, database: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    resuming = asyncio.Event()
    cancelled: list[bool] = []

    async def slow_resume() -> int:
        resuming.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise
        return 0

    async with assembled_bot(bot_settings(relay, database)) as bot:
        monkeypatch.setattr(bot.tracker, "resume", slow_resume)
        async with fake.running(bot):
            await asyncio.wait_for(resuming.wait(), timeout=10)
            await asyncio.wait_for(bot.close(), timeout=5)
            # on_ready runs in a task discord.py does not await; close() ended it, so the
            # store (closed next) is not read by it afterwards.
            assert cancelled == [True]
