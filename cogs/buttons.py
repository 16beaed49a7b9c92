"""What the card's buttons do: lyrics privately, refresh, stop updates, notify me."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import discord
from discord.ext import commands

from bot.app import SunoBot
from bot.controls import LyricsPageButton
from bot.i18n import default_catalog
from bot.keys import KeyChoice
from bot.safety import escape, truncate
from bot.suno.errors import RelayError
from bot.suno.models import Task
from bot.tracking.store import NewWatch, Watch, WatchOutcome
from bot.tree import reply_error

log = logging.getLogger(__name__)

# One Refresh per message this often, however many people press it: the relay is shared.
REFRESH_COOLDOWN_SECONDS = 10.0
# A page of lyrics: a card's text (4 000 characters), with room for its heading and page number.
PAGE_CHARACTERS = 4000 - 300
_COOLDOWN_MEMORY = 1000

Interaction = discord.Interaction[Any]


def lyrics_pages(task: Task) -> list[str]:
    """The task's lyrics, each song's once, cut into pages at line ends where possible."""
    sections: list[str] = []
    seen: set[str] = set()
    for number, clip in enumerate(task.clips, start=1):
        text = (clip.lyrics or "").strip()
        if text and text not in seen:
            seen.add(text)
            heading = escape(truncate(clip.title, 200)) if clip.title else f"#{number}"
            sections.append(f"**{heading}**\n{escape(text)}")
    if not sections and task.lyrics is not None and (task.lyrics.text or "").strip():
        sections.append(escape((task.lyrics.text or "").strip()))
    pages: list[str] = []
    for section in sections:
        pages.extend(_split(section, PAGE_CHARACTERS))
    return pages


def _split(text: str, limit: int) -> list[str]:
    pages: list[str] = []
    current = ""
    for line in text.splitlines(keepends=True):
        while len(line) > limit:
            if current:
                pages.append(current)
                current = ""
            pages.append(line[:limit])
            line = line[limit:]
        if len(current) + len(line) > limit:
            pages.append(current)
            current = ""
        current += line
    if current.strip():
        pages.append(current)
    return [page.rstrip() for page in pages]


class Buttons(commands.Cog):
    """The handler behind every card's buttons (set as `bot.controls` while loaded)."""

    def __init__(self, bot: SunoBot) -> None:
        self.bot = bot
        self._catalog = default_catalog()
        self._refreshed: dict[int, float] = {}  # message id -> monotonic time of the last refresh

    async def cog_load(self) -> None:
        self.bot.controls = self

    async def cog_unload(self) -> None:
        self.bot.controls = None

    # shared

    def _t(self, interaction: Interaction, key: str, **params: object) -> str:
        return self._catalog.text(str(interaction.locale), key, **params)

    async def _say(self, interaction: Interaction, key: str) -> None:
        """A short private answer to whoever pressed."""
        text = self._t(interaction, key)
        if interaction.response.is_done():
            await interaction.followup.send(text, ephemeral=True)
        else:
            await interaction.response.send_message(text, ephemeral=True)

    async def _guarded(self, interaction: Interaction, work: Callable[[], Awaitable[None]]) -> None:
        """Runs a press; whatever fails, the presser gets a private answer, never "This
        interaction failed"."""
        try:
            await work()
        except RelayError as exc:
            log.info("button press failed: %s", exc)
            await reply_error(interaction, exc.message_key)
        except Exception:
            log.exception("button press failed")
            await reply_error(interaction, "error.internal")

    async def _watch_of(self, interaction: Interaction) -> Watch | None:
        message = interaction.message
        if message is None:
            return None
        watch = await self.bot.store.by_message(message.id)
        metadata = message.interaction_metadata
        if watch is None and metadata is not None:
            watch = await self.bot.store.by_interaction(metadata.id)
        return watch

    # Lyrics

    async def lyrics(self, interaction: Interaction, task_id: str, page: int | None) -> None:
        await self._guarded(interaction, lambda: self._lyrics(interaction, task_id, page))

    async def _lyrics(self, interaction: Interaction, task_id: str, page: int | None) -> None:
        if page is None:
            await interaction.response.defer(ephemeral=True, thinking=True)
        else:
            await interaction.response.defer()  # the pager edits its own message
        watch = await self._watch_of(interaction)
        task_id = task_id or (watch.task_id if watch is not None else "")
        if not task_id:
            await self._say(interaction, "control.unknown_task")
            return
        task = self.bot.tracker.latest(task_id) or await self._read(interaction, task_id, watch)
        pages = lyrics_pages(task)
        if not pages:
            await interaction.edit_original_response(
                content=self._t(interaction, "control.no_lyrics")
            )
            return
        index = min(page or 0, len(pages) - 1)
        await interaction.edit_original_response(
            view=self._lyrics_card(interaction, task_id, pages, index)
        )

    async def _read(self, interaction: Interaction, task_id: str, watch: Watch | None) -> Task:
        """The task from the relay, with the key its card follows it with (a forgotten card:
        the key of whoever pressed, as `/suno status` would choose)."""
        if watch is not None and watch.task_id == task_id:
            key_id = watch.key_id
        else:
            key_id = (await self._key_of(interaction)).key_id
        return await self.bot.keyed_relay.fetch(task_id, key_id)

    async def _key_of(self, interaction: Interaction) -> KeyChoice:
        return await self.bot.keys.choose(interaction.user.id, interaction.guild_id)

    def _lyrics_card(
        self, interaction: Interaction, task_id: str, pages: list[str], index: int
    ) -> discord.ui.LayoutView:
        """One page of lyrics as a card; with more than one, the page number and the pager."""
        card: discord.ui.Container[discord.ui.LayoutView] = discord.ui.Container(
            accent_colour=discord.Colour.brand_green()
        )
        title = self._t(interaction, "label.lyrics")
        card.add_item(discord.ui.TextDisplay(f"### {title}\n{pages[index]}"))
        if len(pages) > 1:
            where = self._t(interaction, "lyrics.page", page=index + 1, pages=len(pages))
            card.add_item(discord.ui.TextDisplay(f"-# {where}"))
            card.add_item(
                discord.ui.ActionRow(*self._pager(interaction, task_id, index, len(pages)))
            )
        view = discord.ui.LayoutView(timeout=None)
        view.add_item(card)
        return view

    def _pager(
        self, interaction: Interaction, task_id: str, index: int, pages: int
    ) -> list[LyricsPageButton]:
        return [
            LyricsPageButton(
                task_id,
                max(index - 1, 0),
                self._t(interaction, "button.previous"),
                disabled=index == 0,
            ),
            LyricsPageButton(
                task_id,
                min(index + 1, pages - 1),
                self._t(interaction, "button.next"),
                disabled=index == pages - 1,
            ),
        ]

    # Refresh

    async def refresh(self, interaction: Interaction, task_id: str) -> None:
        await self._guarded(interaction, lambda: self._refresh(interaction, task_id))

    def _cooling_down(self, message_id: int) -> bool:
        now = time.monotonic()
        last = self._refreshed.get(message_id)
        if last is not None and now - last < REFRESH_COOLDOWN_SECONDS:
            return True
        if len(self._refreshed) >= _COOLDOWN_MEMORY:
            cutoff = now - REFRESH_COOLDOWN_SECONDS
            self._refreshed = {m: t for m, t in self._refreshed.items() if t >= cutoff}
        self._refreshed[message_id] = now
        return False

    async def _refresh(self, interaction: Interaction, task_id: str) -> None:
        message = interaction.message
        if message is None:
            await self._say(interaction, "control.unknown_task")
            return
        if self._cooling_down(message.id):
            await self._say(interaction, "control.cooldown")
            return
        await interaction.response.defer()  # the card itself shows the answer
        watch = await self._watch_of(interaction)
        task_id = task_id or (watch.task_id if watch is not None else "")
        if not task_id:
            await self._say(interaction, "control.unknown_task")
            return
        tracker = self.bot.tracker
        if watch is not None and tracker.follows(watch):
            tracker.refresh(watch)
            return
        # Stopped, timed out, or forgotten: this press's token keeps the card current again.
        watch = await self._revive(interaction, message, task_id, watch)
        tracker.add(watch, task=None, poll_now=True)

    async def _revive(
        self, interaction: Interaction, message: discord.Message, task_id: str, watch: Watch | None
    ) -> Watch:
        deadline = discord.utils.utcnow() + timedelta(
            seconds=self.bot.settings.watch_timeout_seconds
        )
        store = self.bot.store
        if watch is not None:
            return await store.revive(
                watch.id,
                token=interaction.token,
                token_expires_at=interaction.expires_at,
                deadline_at=deadline,
            )
        locale = interaction.guild_locale or interaction.locale
        choice = await self._key_of(interaction)
        added = await store.add(
            NewWatch(
                task_id=task_id,
                application_id=interaction.application_id,
                guild_id=interaction.guild_id,
                channel_id=interaction.channel_id,
                requester_id=interaction.user.id,
                locale=str(locale),
                ephemeral=message.flags.ephemeral,
                interaction_id=interaction.id,
                interaction_token=interaction.token,
                token_expires_at=interaction.expires_at,
                deadline_at=deadline,
                attachment_size_limit=interaction.filesize_limit,
                key_id=choice.key_id,
            )
        )
        await store.set_message_id(added.id, message.id)
        return dataclasses.replace(added, message_id=message.id)

    # Stop updates

    async def stop(self, interaction: Interaction, task_id: str) -> None:
        await self._guarded(interaction, lambda: self._stop(interaction))

    async def _stop(self, interaction: Interaction) -> None:
        watch = await self._watch_of(interaction)
        if watch is None:
            await self._say(interaction, "control.unknown_task")
            return
        moderator = interaction.guild_id is not None and interaction.permissions.manage_messages
        if interaction.user.id != watch.requester_id and not moderator:
            await self._say(interaction, "control.stop_not_allowed")
            return
        if not self.bot.tracker.follows(watch):
            await self._say(interaction, "control.already_stopped")
            return
        await interaction.response.defer()  # the card's last edit says it stopped
        self.bot.tracker.stop(watch)

    # Notify me

    async def notify(self, interaction: Interaction, task_id: str) -> None:
        await self._guarded(interaction, lambda: self._notify(interaction))

    async def _notify(self, interaction: Interaction) -> None:
        watch = await self._watch_of(interaction)
        if watch is None:
            await self._say(interaction, "control.unknown_task")
        elif watch.ephemeral:
            await self._say(interaction, "control.notify_private")
        elif watch.outcome is WatchOutcome.FINISHED:
            await self._say(interaction, "control.notify_finished")
        elif await self.bot.store.toggle_subscriber(watch.id, interaction.user.id):
            await self._say(interaction, "control.notify_on")
        else:
            await self._say(interaction, "control.notify_off")


async def setup(bot: commands.Bot) -> None:
    assert isinstance(bot, SunoBot)
    await bot.add_cog(Buttons(bot))
