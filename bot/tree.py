"""The command tree: one place that turns any command failure into a short, safe reply."""

from __future__ import annotations

import logging

import discord
from discord import app_commands

from bot.render import render_error
from bot.suno.errors import RelayError

log = logging.getLogger(__name__)


async def reply_error(interaction: discord.Interaction[discord.Client], message_key: str) -> None:
    """Shows the requester an error, as a reply or a follow-up, visible only to them."""
    message = render_error(message_key, locale=str(interaction.locale))
    try:
        if interaction.response.is_done():
            await interaction.followup.send(view=message.view(), ephemeral=True)
        else:
            await interaction.response.send_message(view=message.view(), ephemeral=True)
    except discord.HTTPException as exc:
        log.info("could not show an error to the requester: HTTP %s code %s", exc.status, exc.code)


class SunoCommandTree(app_commands.CommandTree[discord.Client]):
    async def on_error(
        self, interaction: discord.Interaction[discord.Client], error: app_commands.AppCommandError
    ) -> None:
        cause = error.original if isinstance(error, app_commands.CommandInvokeError) else error
        if isinstance(cause, RelayError):
            log.info("command failed: %s", cause)
            await reply_error(interaction, cause.message_key)
            return
        command = interaction.command.qualified_name if interaction.command else "?"
        log.error("command /%s failed", command, exc_info=cause)
        await reply_error(interaction, "error.internal")
