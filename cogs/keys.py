"""`/suno key` and `/suno-server-key`: members and server admins bring their own relay key."""

from __future__ import annotations

import logging
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.app import SunoBot
from bot.i18n import command_text, default_catalog
from bot.keys import KEY_MAX_CHARS, InvalidKey, KeyCheck, KeyOwner, check_key, normalize_key
from bot.tracking.store import StoredKey
from bot.tree import reply_error

log = logging.getLogger(__name__)

Interaction = discord.Interaction[SunoBot]
# Discord's limit on a modal's title and a text input's label.
MODAL_TEXT_LIMIT = 45
# A form nobody sends is forgotten after this long (it holds nothing until it is sent).
MODAL_TIMEOUT_SECONDS = 900.0


def _text(interaction: discord.Interaction[Any], key: str, **params: object) -> str:
    """A private answer's text, in the requester's language."""
    return default_catalog().text(str(interaction.locale), key, **params)


class _Owner:
    """Whose key a command is about: the requester's own, or the server's (with the words
    each answer uses for it)."""

    def __init__(self, kind: KeyOwner) -> None:
        self.kind = kind
        self.prefix = "key" if kind is KeyOwner.USER else "server_key"

    def id_of(self, interaction: Interaction) -> int | None:
        return interaction.user.id if self.kind is KeyOwner.USER else interaction.guild_id

    def allowed(self, interaction: Interaction) -> bool:
        """The server's key is for those who may manage the server; one's own, for anyone."""
        if self.kind is KeyOwner.USER:
            return True
        return interaction.guild_id is not None and interaction.permissions.manage_guild


USER = _Owner(KeyOwner.USER)
SERVER = _Owner(KeyOwner.GUILD)


class KeyModal(discord.ui.Modal):
    """Where the key is pasted: it never travels in a slash command's options, which
    Discord shows in the command's preview and keeps in the client's history."""

    def __init__(self, bot: SunoBot, owner: _Owner, interaction: Interaction) -> None:
        super().__init__(
            title=_text(interaction, f"{owner.prefix}.modal.title")[:MODAL_TEXT_LIMIT],
            timeout=MODAL_TIMEOUT_SECONDS,
        )
        self.bot = bot
        self.owner = owner
        self.key: discord.ui.TextInput[KeyModal] = discord.ui.TextInput(
            label=_text(interaction, "key.modal.label")[:MODAL_TEXT_LIMIT],
            style=discord.TextStyle.short,
            max_length=KEY_MAX_CHARS,
            required=True,
        )
        self.add_item(self.key)

    async def on_submit(self, interaction: Interaction) -> None:  # type: ignore[override]
        owner_id = self.owner.id_of(interaction)
        if owner_id is None or not self.owner.allowed(interaction):
            await _answer(interaction, "server_key.not_allowed")
            return
        try:
            key = normalize_key(self.key.value)
        except InvalidKey as exc:
            await _answer(interaction, exc.reason)
            return
        # The relay may take its time: the answer is private, so a private "thinking" first.
        await interaction.response.defer(ephemeral=True, thinking=True)
        verdict = await check_key(self.bot.relay, key)
        if verdict is KeyCheck.ACCEPTED:
            stored = await self.bot.keys.save(self.owner.kind, owner_id, key)
            text = _text(interaction, f"{self.owner.prefix}.set.accepted", last4=stored.last4)
        else:
            text = _text(interaction, f"key.set.{verdict.value}")
        await interaction.edit_original_response(content=text)

    async def on_error(  # type: ignore[override]
        self, interaction: Interaction, error: Exception
    ) -> None:
        log.error("saving a relay key failed", exc_info=error)
        await reply_error(interaction, "error.internal")


async def _answer(interaction: Interaction, key: str, **params: object) -> None:
    """A private answer, as the reply or (after a defer) the reply's edit."""
    text = _text(interaction, key, **params)
    if interaction.response.is_done():
        await interaction.edit_original_response(content=text)
    else:
        await interaction.response.send_message(text, ephemeral=True)


class KeyCommands:
    """set / status / remove for one kind of owner; both command groups share them."""

    def __init__(self, bot: SunoBot, owner: _Owner) -> None:
        self.bot = bot
        self.owner = owner

    async def _refused(self, interaction: Interaction) -> bool:
        """Says no, and True, to someone who may not touch this key. Discord hides the server
        key's commands from members without Manage Server, but a server can change that."""
        if self.owner.allowed(interaction):
            return False
        await _answer(interaction, "server_key.not_allowed")
        return True

    async def set(self, interaction: Interaction) -> None:
        if await self._refused(interaction):
            return
        await interaction.response.send_modal(KeyModal(self.bot, self.owner, interaction))

    async def status(self, interaction: Interaction) -> None:
        if await self._refused(interaction):
            return
        stored = await self._stored(interaction)
        if stored is None:
            await _answer(interaction, f"{self.owner.prefix}.status.none")
            return
        await _answer(
            interaction,
            f"{self.owner.prefix}.status.set",
            last4=stored.last4,
            when=discord.utils.format_dt(stored.set_at, "R"),
        )

    async def remove(self, interaction: Interaction) -> None:
        if await self._refused(interaction):
            return
        stored = await self._stored(interaction)
        if stored is None:
            await _answer(interaction, f"{self.owner.prefix}.remove.none")
            return
        # Its watches end (each message says live updates ended) rather than fall back to
        # another key: a relay shows a task only to the key that made it, so another key
        # would only turn the message into "no task with that id".
        # Counted in both places: the watches followed here, and (in a cluster) those other
        # processes follow, which end at their next poll.
        ended = {*self.bot.tracker.end_key(stored.id), *await self.bot.keys.remove(stored.id)}
        await _answer(interaction, f"{self.owner.prefix}.remove.done", count=len(ended))

    async def _stored(self, interaction: Interaction) -> StoredKey | None:
        owner_id = self.owner.id_of(interaction)
        if owner_id is None:
            return None
        return await self.bot.keys.status(self.owner.kind, owner_id)


class KeyGroup(app_commands.Group):
    """`/suno key …`: a member's own relay key, in every place the commands work."""

    def __init__(self, bot: SunoBot) -> None:
        super().__init__(name="key", description=command_text("command.key"))
        self._commands = KeyCommands(bot, USER)

    @app_commands.command(name="set", description=command_text("command.key.set"))
    async def set_key(self, interaction: Interaction) -> None:
        await self._commands.set(interaction)

    @app_commands.command(name="status", description=command_text("command.key.status"))
    async def key_status(self, interaction: Interaction) -> None:
        await self._commands.status(interaction)

    @app_commands.command(name="remove", description=command_text("command.key.remove"))
    async def remove_key(self, interaction: Interaction) -> None:
        await self._commands.remove(interaction)


# Discord applies default permissions and contexts to top-level commands only, so the
# server's key has a command of its own: shown only in servers, to Manage Server.
@app_commands.allowed_installs(guilds=True, users=False)
@app_commands.allowed_contexts(guilds=True, dms=False, private_channels=False)
@app_commands.default_permissions(manage_guild=True)
class ServerKey(
    commands.GroupCog,
    group_name="suno-server-key",
    group_description=command_text("command.server_key"),
):
    """`/suno-server-key …`: the key everyone in the server without their own uses."""

    def __init__(self, bot: SunoBot) -> None:
        self._commands = KeyCommands(bot, SERVER)
        super().__init__()

    @app_commands.command(name="set", description=command_text("command.server_key.set"))
    async def set_key(self, interaction: Interaction) -> None:
        await self._commands.set(interaction)

    @app_commands.command(name="status", description=command_text("command.server_key.status"))
    async def key_status(self, interaction: Interaction) -> None:
        await self._commands.status(interaction)

    @app_commands.command(name="remove", description=command_text("command.server_key.remove"))
    async def remove_key(self, interaction: Interaction) -> None:
        await self._commands.remove(interaction)


async def setup(bot: commands.Bot) -> None:
    assert isinstance(bot, SunoBot)
    # Without KEY_ENCRYPTION_SECRET the key commands do not exist: nothing to set.
    if not bot.keys.enabled:
        return
    suno = bot.get_cog("Suno")
    assert isinstance(suno, commands.GroupCog) and suno.app_command is not None
    suno.app_command.add_command(KeyGroup(bot))
    await bot.add_cog(ServerKey(bot))
