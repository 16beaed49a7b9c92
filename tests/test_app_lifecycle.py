"""SunoBot's own lifecycle: nothing it started keeps running against the store after close()."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bot.runner import assembled_bot
from tests.kit.fake_discord import FAKE_BOT_TOKEN, FakeDiscord
from tests.kit.fake_relay import FakeRelay
from tests.kit.harness import bot_settings
from tests.test_store import new_watch


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


@pytest.mark.parametrize(
    ("shard_ids", "shard_of_server", "expected"),
    [
        ("0", 1, True),  # another process's shard: Discord's answer to the edit decides
        ("0", 0, False),  # this process's shard, yet not in its cache: not in that server
        (None, 1, False),  # every shard in this process
    ],
)
async def test_a_server_missing_from_the_cache_is_judged_by_whose_shard_it_is(
    fake: FakeDiscord,
    relay: FakeRelay,
    database: Path,
    shard_ids: str | None,
    shard_of_server: int,
    expected: bool,
) -> None:
    settings = bot_settings(relay, database).model_copy(
        update={"shard_count": 2, "shard_ids": shard_ids}
    )
    guild_id = (1_300_000_000 << 22) + 7
    guild_id += ((shard_of_server - (guild_id >> 22) % 2) % 2) << 22
    async with assembled_bot(settings) as bot:
        await bot.login(FAKE_BOT_TOKEN)  # a sharded client is closed only once it logged in
        watch = await bot.store.add(new_watch(guild_id=guild_id, ephemeral=False))

        assert bot.runs_shard_of(guild_id) is (shard_ids is None or shard_of_server == 0)
        assert bot.can_edit_channel(watch) is expected
