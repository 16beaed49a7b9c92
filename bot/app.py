"""The bot object: wires settings, relay client, store and tracker into discord.py."""

from __future__ import annotations

import asyncio
import gc
import hashlib
import json
import logging
from collections.abc import Mapping
from typing import Any

import discord
from discord.ext import commands

from bot.audio import AudioDownloader, SongFiles
from bot.completion import Completion
from bot.config import Settings
from bot.controls import DYNAMIC_ITEMS, ControlHandler, with_controls
from bot.i18n import CommandTranslator, default_catalog
from bot.keys import KeyedRelay, MemberKeys
from bot.metrics import Metrics
from bot.render import Notice, RenderedMessage, render_error, render_task, render_unanswered
from bot.suno.client import RelayClient
from bot.suno.models import Task
from bot.tracking.cluster import ClusterTiming, Coordinator
from bot.tracking.editor import MessageContent, MessageEditor
from bot.tracking.ownership import new_owner_id
from bot.tracking.policy import PollPolicy
from bot.tracking.postgres import PostgresWatchStore
from bot.tracking.store import BotStore, Watch
from bot.tracking.tracker import Tracker
from bot.tree import SunoCommandTree

log = logging.getLogger(__name__)

# Young pass every 10 000 net allocations, middle pass every 10 young ones, full pass considered
# every 100 middle ones (and run only when the heap grew by a quarter, as always).
GC_THRESHOLDS = (10_000, 10, 100)

EXTENSIONS = ("cogs.suno", "cogs.keys", "cogs.buttons")
COMMAND_HASH_KEY = "command_tree_hash:global"
# Held while one process of a cluster syncs the commands; the others leave it to that one.
COMMAND_SYNC_LEASE = "command-sync"
COMMAND_SYNC_SECONDS = 60.0
# Every message the bot sends or edits: relay text must never ping anyone.
NO_MENTIONS = discord.AllowedMentions.none()
# What the invite link asks for (the README lists them): 117760.
INVITE_PERMISSIONS = discord.Permissions(
    view_channel=True,
    send_messages=True,
    embed_links=True,
    attach_files=True,  # the songs' MP3s, once the interaction token has expired
    read_message_history=True,
)


def invite_url(application_id: int) -> str:
    return discord.utils.oauth_url(
        application_id, permissions=INVITE_PERMISSIONS, scopes=("bot", "applications.commands")
    )


class StatusPresenter:
    """How a watch's message looks: the renderer, with the bot's watch timeout in its notices."""

    def __init__(self, watch_timeout_seconds: float) -> None:
        self._timeout_minutes = max(1, round(watch_timeout_seconds / 60))

    def task(
        self, task: Task, *, locale: str, notice: Notice | None = None, private: bool = False
    ) -> RenderedMessage:
        """The card for `task` with its buttons (`private`: seen by its requester only)."""
        return self._card(task, locale=locale, notice=notice, private=private, audio=None)

    def _card(
        self,
        task: Task,
        *,
        locale: str,
        notice: Notice | None,
        private: bool,
        audio: Mapping[str, str] | None,
    ) -> RenderedMessage:
        card = render_task(
            task,
            locale=locale,
            notice=notice,
            watch_timeout_minutes=self._timeout_minutes,
            audio=audio,
        )
        return with_controls(card, task.task_id, task, notice, locale=locale, private=private)

    def unanswered(self, task_id: str, *, locale: str, notice: Notice) -> RenderedMessage:
        card = render_unanswered(
            task_id, locale=locale, notice=notice, watch_timeout_minutes=self._timeout_minutes
        )
        return with_controls(card, task_id, None, notice, locale=locale)

    def finished_card(self, task: Task, watch: Watch, audio: Mapping[str, str]) -> MessageContent:
        """The finished card for the edit that attaches songs, each played in its song's block
        (`audio`: clip id -> file name) where the card has room."""
        return self._card(
            task, locale=watch.locale, notice=None, private=watch.ephemeral, audio=audio
        )

    def error(self, message_key: str, *, locale: str) -> RenderedMessage:
        return render_error(message_key, locale=locale)


class SunoBot(commands.Bot):
    """Owns the tracker; the relay client and store are made by the caller and handed in."""

    def __init__(
        self,
        *,
        settings: Settings,
        relay: RelayClient,
        store: BotStore,
        keys: MemberKeys,
        metrics: Metrics | None = None,
        instance: str | None = None,
        **client_options: Any,
    ) -> None:
        metrics = metrics or Metrics()
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=discord.Intents(guilds=True),
            allowed_mentions=NO_MENTIONS,
            tree_cls=SunoCommandTree,
            help_command=None,
            http_trace=metrics.discord_trace(),
            **client_options,
        )
        # Names this process in the store's leases (the same name as its membership).
        self.instance = instance or new_owner_id()
        self.settings = settings
        self.relay = relay
        self.store = store
        self.metrics = metrics
        # Members' and servers' relay keys (off without KEY_ENCRYPTION_SECRET).
        self.keys = keys
        # The relay with the key each request chose: the command's first read and every poll.
        self.keyed_relay = KeyedRelay(relay, keys)
        editor = MessageEditor(self, observer=metrics)
        self.presenter = StatusPresenter(settings.watch_timeout_seconds)
        self.audio = (
            AudioDownloader(settings.audio_host_list, timeout=settings.audio_timeout_seconds)
            if settings.attach_audio
            else None
        )
        self.completion = Completion(
            client=self,
            store=store,
            editor=editor,
            render=self.presenter.finished_card,
            songs=SongFiles(self.audio) if self.audio is not None else None,
        )
        # What the card's buttons do; the buttons cog sets it when it loads.
        self.controls: ControlHandler | None = None
        self.tracker = Tracker(
            source=self.keyed_relay,
            store=store,
            editor=editor,
            presenter=self.presenter,
            policy=PollPolicy(settings.poll_interval_seconds),
            batch_size=settings.suno_batch_size,
            token_margin=settings.interaction_expiry_margin_seconds,
            can_edit_channel=self.can_edit_channel,
            observer=metrics,
            on_finished=self.completion.finished,
        )
        metrics.tracker_stats = self.tracker.stats
        self.coordinator: Coordinator | None = None
        if isinstance(store, PostgresWatchStore):
            # Several processes share this store: each follows its share of the tasks.
            timing = ClusterTiming.for_settings(
                settings.cluster_lease_seconds,
                settings.poll_interval_seconds,
                settings.suno_batch_size,
            )
            self.coordinator = Coordinator(store, self.instance, timing)
            self.coordinator.attach(self.tracker)
            self.tracker.share_with(self.coordinator)
        # Command descriptions in every supported language, for each client's own.
        self.command_translator = CommandTranslator(default_catalog())
        self._resumed = False
        self._resuming: asyncio.Task[object] | None = None

    async def setup_hook(self) -> None:
        # Buttons on every card ever sent keep working: their custom ids carry the task id.
        self.add_dynamic_items(*DYNAMIC_ITEMS)
        for extension in EXTENSIONS:
            await self.load_extension(extension)
        await self.tree.set_translator(self.command_translator)
        await self.sync_commands()
        self.tracker.start()
        if self.application_id is not None:
            log.info("invite the bot with %s", invite_url(self.application_id))

    async def on_connect(self) -> None:
        self.metrics.gateway(connected=True)

    async def on_resumed(self) -> None:
        self.metrics.gateway(connected=True)

    async def on_disconnect(self) -> None:
        self.metrics.gateway(connected=False)

    async def on_ready(self) -> None:
        log.info("connected as %s (%s guilds)", self.user, len(self.guilds))
        # READY fires again after a reconnect; the store is read only once per process.
        if not self._resumed:
            self._resumed = True
            # discord.py runs this handler in a task nobody awaits; close() cancels it, so that
            # it never reads the store after the store was closed.
            self._resuming = asyncio.current_task()
            try:
                resumed = await self.tracker.resume()
            finally:
                self._resuming = None
            self.metrics.watches_resumed(resumed)
            if resumed:
                log.info("resumed %d unfinished watches", resumed)
            _settle_heap()
            await self._follow_up_interrupted()

    async def _follow_up_interrupted(self) -> None:
        try:
            self._resuming = asyncio.current_task()
            followed = await self.completion.resume(self.keyed_relay)
        except Exception:
            log.exception("could not finish what follows the watches that ended before the stop")
            return
        finally:
            self._resuming = None
        if followed:
            log.info("looked again at %d watches that ended just before the stop", followed)

    async def close(self) -> None:
        resuming, self._resuming = self._resuming, None
        if resuming is not None and resuming is not asyncio.current_task():
            resuming.cancel()
            await asyncio.gather(resuming, return_exceptions=True)
        await self.tracker.close()
        if self.audio is not None:
            await self.audio.close()
        await super().close()
        self.metrics.gateway(connected=False)

    async def sync_commands(self) -> None:
        """Syncs to the development guild at every start; globally only when the tree changed.
        In a cluster one process does it while the others go on."""
        if not self.settings.clustered:
            await self._sync_commands()
            return
        if not await self.store.acquire_lease(
            COMMAND_SYNC_LEASE, self.instance, COMMAND_SYNC_SECONDS
        ):
            log.info("another process of the cluster syncs the commands")
            return
        try:
            await self._sync_commands()
        finally:
            await self.store.release_lease(COMMAND_SYNC_LEASE, self.instance)

    async def _sync_commands(self) -> None:
        guild_id = self.settings.discord_guild_id
        if guild_id is not None:
            guild = discord.Object(id=guild_id)
            self.tree.copy_global_to(guild=guild)
            synced = await self.tree.sync(guild=guild)
            log.info("synced %d commands to guild %s", len(synced), guild_id)
            return
        digest = await self.command_tree_hash()
        if await self.store.get_meta(COMMAND_HASH_KEY) == digest:
            log.info("global commands unchanged; not syncing")
            return
        synced = await self.tree.sync()
        await self.store.set_meta(COMMAND_HASH_KEY, digest)
        log.info("synced %d global commands", len(synced))

    async def command_tree_hash(self) -> str:
        """A hash of what a sync sends Discord, translations included: a changed description
        in any language is synced too."""
        translator = self.tree.translator
        payload = [
            await command.get_translated_payload(self.tree, translator)
            if translator is not None
            else command.to_dict(self.tree)
            for command in self.tree.get_commands()
        ]
        canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(canonical.encode()).hexdigest()

    def runs_shard_of(self, guild_id: int) -> bool:
        """Whether this process's gateway connections carry `guild_id`'s events."""
        shards, count = self.settings.shards, self.settings.shard_count
        if shards is None or count is None:
            return True
        # Discord's rule for which shard carries a server.
        return (guild_id >> 22) % count in shards

    def can_edit_channel(self, watch: Watch) -> bool:
        """Whether the bot token can edit the watch's message once the interaction token is gone."""
        if watch.ephemeral or watch.guild_id is None or watch.channel_id is None:
            return False
        guild = self.get_guild(watch.guild_id)
        if guild is None:
            # A server on another process's shard is not in this cache: Discord's answer to
            # the edit decides. On this process's shards: installed without the bot user, or
            # removed from the server.
            return not self.runs_shard_of(watch.guild_id)
        channel = guild.get_channel_or_thread(watch.channel_id)
        if channel is None or guild.me is None:
            # Not cached (a private thread, say): Discord's answer to the edit decides.
            return True
        return channel.permissions_for(guild.me).view_channel


class ShardedSunoBot(SunoBot, commands.AutoShardedBot):
    """The bot over several gateway shards in one process (SHARD_COUNT, SHARD_IDS)."""


def make_bot(
    *,
    settings: Settings,
    relay: RelayClient,
    store: BotStore,
    keys: MemberKeys,
    metrics: Metrics | None = None,
    instance: str | None = None,
) -> SunoBot:
    """The bot for `settings`: one gateway connection, or the shards SHARD_IDS names."""
    shards = settings.shards
    if shards is None:
        return SunoBot(
            settings=settings,
            relay=relay,
            store=store,
            keys=keys,
            metrics=metrics,
            instance=instance,
        )
    return ShardedSunoBot(
        settings=settings,
        relay=relay,
        store=store,
        keys=keys,
        metrics=metrics,
        instance=instance,
        shard_count=settings.shard_count,
        shard_ids=shards,
    )


def _settle_heap() -> None:
    """Leaves what lives for the whole process (code, settings, the resumed watches) out of the
    garbage collector's passes, and lets it run less often.

    With the default thresholds (700, 10, 10) a bot with 10 000 watches ran a young pass about
    fifty times a second; every message edit builds a discord.py layout, a cyclic structure
    that only the collector frees, and the ones still in flight were promoted on each pass
    until full passes over the whole heap ran every few seconds, each stalling the event
    loop for a quarter of a second or more. A young pass every 10 000 allocations lets them
    be collected young; full passes are then rare (see BENCHMARKS.md).
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
