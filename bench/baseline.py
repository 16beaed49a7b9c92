"""The naive baseline bot: one fixed-interval poll-and-edit loop per status message."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.app import NO_MENTIONS
from bot.render import RenderedMessage, render_error, render_task
from bot.suno.client import RelayClient
from bot.suno.errors import RelayError
from bot.suno.models import Task

log = logging.getLogger(__name__)


class NaiveBot(commands.Bot):
    """What typical status bots do: reply once the relay has answered, then poll and edit.

    It uses the same relay client and renderer as the real bot, so only the strategy
    differs: no acknowledge budget, no shared polling, no batching, an edit on every poll.
    """

    def __init__(self, *, relay: RelayClient, poll_interval: float) -> None:
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=discord.Intents(guilds=True),
            allowed_mentions=NO_MENTIONS,
            help_command=None,
        )
        self.relay = relay
        self.poll_interval = poll_interval
        self.loops: set[asyncio.Task[None]] = set()

    async def setup_hook(self) -> None:
        await self.add_cog(NaiveSuno(self))
        await self.tree.sync()

    async def close(self) -> None:
        for loop in self.loops:
            loop.cancel()
        await asyncio.gather(*self.loops, return_exceptions=True)
        await super().close()

    def watch(self, interaction: discord.Interaction[Any], task_id: str) -> None:
        """Starts the message's own poll loop."""
        loop = asyncio.create_task(self._poll_loop(interaction, task_id))
        self.loops.add(loop)
        loop.add_done_callback(self.loops.discard)

    async def _poll_loop(self, interaction: discord.Interaction[Any], task_id: str) -> None:
        locale = str(interaction.locale)
        while True:
            await asyncio.sleep(self.poll_interval)
            try:
                task = await self.relay.fetch(task_id)
            except RelayError as exc:
                log.info("poll of %s failed: %s", task_id, exc)
                continue
            rendered = render_task(task, locale=locale)
            try:
                await interaction.edit_original_response(
                    view=rendered.view(), allowed_mentions=NO_MENTIONS
                )
            except discord.NotFound:
                return
            except discord.HTTPException as exc:
                log.info("edit for %s failed: %s", task_id, exc)
            if task.is_terminal:
                return


class NaiveSuno(commands.GroupCog, group_name="suno", group_description="Follow Suno songs"):
    def __init__(self, bot: NaiveBot) -> None:
        self.bot = bot
        super().__init__()

    @app_commands.command(name="status", description="Show a Suno task and keep it up to date")
    @app_commands.describe(
        task_id="The task id the Suno relay gave you",
        private="Show the status only to you (default: everyone in the channel)",
    )
    async def status(
        self, interaction: discord.Interaction[Any], task_id: str, private: bool = False
    ) -> None:
        try:
            task = await self.bot.relay.fetch(task_id)
        except RelayError as exc:
            error = render_error(exc.message_key, locale=str(interaction.locale))
            await interaction.response.send_message(
                view=error.view(), ephemeral=True, allowed_mentions=NO_MENTIONS
            )
            return
        await self._reply(interaction, task, private=private)
        if not task.is_terminal:
            self.bot.watch(interaction, task_id)

    async def _reply(
        self, interaction: discord.Interaction[Any], task: Task, *, private: bool
    ) -> None:
        rendered: RenderedMessage = render_task(task, locale=str(interaction.locale))
        await interaction.response.send_message(
            view=rendered.view(), ephemeral=private, allowed_mentions=NO_MENTIONS
        )
