"""`/suno status`: validate, acknowledge within Discord's window, show the task, hand it on."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from datetime import timedelta

import discord
from discord import app_commands
from discord.ext import commands

from bot.app import SunoBot
from bot.i18n import command_text
from bot.keys import KeyChoice, KeySource
from bot.render import (
    DIGEST_MARK,
    PICK_EVENT,
    ClipPicker,
    Notice,
    RenderedMessage,
    render_error,
    render_picked,
    task_digest,
)
from bot.suno.errors import RelayError, RelayKeyRejected, TaskNotFound
from bot.suno.ids import normalize_task_id
from bot.suno.models import Task
from bot.tracking.editor import release_layout
from bot.tracking.store import NewWatch, Watch, WatchOutcome
from bot.tree import reply_error

log = logging.getLogger(__name__)

# Discord allows 3 s for the first answer, counted from before the bot even sees the
# interaction; waiting longer than this for the relay means deferring instead.
ACKNOWLEDGE_BUDGET_SECONDS = 1.5

Interaction = discord.Interaction[SunoBot]


# What the requester is told when the relay does not know the task or refuses the key, by
# whose key asked (with member keys on): theirs, the server's or the bot's.
_NOT_FOUND = {
    KeySource.OWN: "error.task_not_found.own",
    KeySource.SERVER: "error.task_not_found.server",
    KeySource.BOT: "error.task_not_found.bot",
}
_KEY_REJECTED = {
    KeySource.OWN: "error.member_key_rejected",
    KeySource.SERVER: "error.server_key_rejected",
    KeySource.BOT: "error.key_rejected",
}


# Names stay English in every client (`/suno status task_id` is what people share and what
# the messages say); descriptions are translated for each client by the tree's translator.
# Installable to a server and to a member's account: a member who installed the app can show
# their song wherever they are, even where the bot is not (it then edits only through the
# interaction, for its 15 minutes, and says so when live updates end).
@app_commands.allowed_installs(guilds=True, users=True)
@app_commands.allowed_contexts(guilds=True, dms=True, private_channels=True)
class Suno(commands.GroupCog, group_name="suno", group_description=command_text("command.suno")):
    def __init__(self, bot: SunoBot) -> None:
        self.bot = bot
        super().__init__()

    @app_commands.command(name="status", description=command_text("command.status"))
    @app_commands.describe(
        task_id=command_text("command.status.task_id"),
        private=command_text("command.status.private"),
        notify=command_text("command.status.notify"),
    )
    async def status(
        self, interaction: Interaction, task_id: str, private: bool = False, notify: bool = False
    ) -> None:
        task_id = normalize_task_id(task_id)
        choice = await self.bot.keys.choose(interaction.user.id, interaction.guild_id)
        fetch = asyncio.ensure_future(self.bot.keyed_relay.fetch(task_id, choice.key_id))
        try:
            done, _ = await asyncio.wait({fetch}, timeout=ACKNOWLEDGE_BUDGET_SECONDS)
            if not done:
                await self._answer_late(
                    interaction, task_id, fetch, choice, private=private, notify=notify
                )
                return
            failure = _transient(fetch.exception())
            if failure is not None:
                # The relay may be fine a second later: the message waits and the tracker asks.
                locale = _card_locale(interaction, private=private)
                rendered = self.bot.presenter.unanswered(
                    task_id, locale=locale, notice=Notice.RELAY_RETRYING
                )
                await self._reply(
                    interaction,
                    task_id,
                    rendered,
                    choice,
                    failure=failure,
                    private=private,
                    notify=notify,
                )
            elif isinstance(fetch.exception(), RelayError):
                # A missing task or a refused key: a private note, and nothing to watch.
                error = fetch.exception()
                assert isinstance(error, RelayError)
                await reply_error(interaction, self._message_key(error, choice))
            else:
                task = fetch.result()
                rendered = self._render(interaction, task, private=private)
                await self._reply(
                    interaction,
                    task_id,
                    rendered,
                    choice,
                    task=task,
                    private=private,
                    notify=notify,
                )
        finally:
            fetch.cancel()

    def _message_key(self, error: RelayError, choice: KeyChoice) -> str:
        """What the requester reads for a relay failure; a missing task or a refused key
        names whose key asked (and, where members may bring one, how to use their own)."""
        if isinstance(error, TaskNotFound) and self.bot.keys.enabled:
            return _NOT_FOUND[choice.source]
        if isinstance(error, RelayKeyRejected):
            return _KEY_REJECTED[choice.source]
        return error.message_key

    async def _reply(
        self,
        interaction: Interaction,
        task_id: str,
        rendered: RenderedMessage,
        choice: KeyChoice,
        *,
        private: bool,
        notify: bool = False,
        task: Task | None = None,
        failure: RelayError | None = None,
    ) -> None:
        """Answers with `rendered`; the watch that keeps it current is stored before (a task
        already finished is stored too, so its buttons find it and its songs follow)."""
        new_watch = self._new_watch(interaction, task_id, choice, private=private, notify=notify)
        watch = await self.bot.store.add(new_watch)
        view = rendered.view()
        try:
            callback = await interaction.response.send_message(view=view, ephemeral=private)
        except discord.HTTPException:
            # No message was created (the interaction is gone): nothing to keep up to date.
            await self.bot.store.finish(watch.id, WatchOutcome.LOST)
            raise
        finally:
            release_layout(view)
        message_id = callback.message_id if callback is not None else None
        if task is not None and task.is_terminal:
            await self._finish_at_once(interaction, watch, task, message_id)
            return
        await self._start_watch(watch, task, rendered.fingerprint, message_id, failure=failure)

    async def _finish_at_once(
        self, interaction: Interaction, watch: Watch, task: Task, message_id: int | None
    ) -> None:
        """A watch whose first message already shows the finished task: nothing to keep
        current, only what follows a finished task."""
        if message_id is not None:
            await self.bot.store.set_message_id(watch.id, message_id)
        await self.bot.store.finish(watch.id, WatchOutcome.FINISHED)
        # The requester sees it done already: nobody is mentioned, the songs still follow.
        watch = dataclasses.replace(watch, message_id=message_id, notify_requester=False)
        self.bot.tracker.follow_up(watch, task, interaction.token)

    async def _answer_late(
        self,
        interaction: Interaction,
        task_id: str,
        fetch: asyncio.Future[Task],
        choice: KeyChoice,
        *,
        private: bool,
        notify: bool,
    ) -> None:
        callback = await interaction.response.defer(ephemeral=private, thinking=True)
        # Stored before the relay answers, so a restart can still finish the "thinking" message.
        new_watch = self._new_watch(interaction, task_id, choice, private=private, notify=notify)
        watch = await self.bot.store.add(new_watch)
        message_id = callback.message_id if callback is not None else None
        if message_id is not None:
            await self.bot.store.set_message_id(watch.id, message_id)
        task: Task | None = None
        failure: RelayError | None = None
        try:
            task = await fetch
        except RelayError as exc:
            if not exc.transient:
                await self.bot.store.finish(watch.id, WatchOutcome.FINISHED)
                message_key = self._message_key(exc, choice)
                await self._replace_with_error(interaction, message_key, private=private)
                return
            failure = exc
        rendered = (
            self._render(interaction, task, private=private)
            if task is not None
            else self.bot.presenter.unanswered(
                task_id,
                locale=_card_locale(interaction, private=private),
                notice=Notice.RELAY_RETRYING,
            )
        )
        try:
            # A deferred reply cannot carry the Components V2 flag; this first edit sets it.
            await interaction.edit_original_response(view=rendered.view())
        except discord.HTTPException as exc:
            # The tracker's next poll shows the task instead; the "thinking" message never stays.
            log.info("first edit of watch %s failed: HTTP %s", watch.id, exc.status)
            await self._start_watch(watch, task, None, message_id, failure=failure)
            return
        if task is not None and task.is_terminal:
            await self._finish_at_once(interaction, watch, task, message_id)
            return
        await self._start_watch(watch, task, rendered.fingerprint, message_id, failure=failure)

    async def _replace_with_error(
        self, interaction: Interaction, message_key: str, *, private: bool
    ) -> None:
        if private:
            message = render_error(message_key, locale=str(interaction.locale))
            await interaction.edit_original_response(view=message.view())
            return
        # A public "thinking" message cannot become private: replace it with a private note.
        await interaction.delete_original_response()
        await reply_error(interaction, message_key)

    async def _start_watch(
        self,
        watch: Watch,
        task: Task | None,
        fingerprint: str | None,
        message_id: int | None,
        *,
        failure: RelayError | None = None,
    ) -> None:
        """Hands the watch to the tracker; `fingerprint` is what the message shows, if known,
        and `failure` why the relay gave no task (the tracker then retries with backoff)."""
        if message_id is not None:
            await self.bot.store.set_message_id(watch.id, message_id)
        if fingerprint is not None:
            await self.bot.store.set_fingerprint(watch.id, fingerprint)
        watch = dataclasses.replace(watch, message_id=message_id, last_fingerprint=fingerprint)
        poll_now = fingerprint is None and failure is None
        self.bot.tracker.add(watch, task=task, poll_now=poll_now, failure=failure)

    def _render(self, interaction: Interaction, task: Task, *, private: bool) -> RenderedMessage:
        locale = _card_locale(interaction, private=private)
        return self.bot.presenter.task(task, locale=locale, private=private)

    def _new_watch(
        self,
        interaction: Interaction,
        task_id: str,
        choice: KeyChoice,
        *,
        private: bool,
        notify: bool = False,
    ) -> NewWatch:
        now = discord.utils.utcnow()
        return NewWatch(
            task_id=task_id,
            application_id=interaction.application_id,
            guild_id=interaction.guild_id,
            channel_id=interaction.channel_id,
            requester_id=interaction.user.id,
            locale=_card_locale(interaction, private=private),
            ephemeral=private,
            interaction_id=interaction.id,
            interaction_token=interaction.token,
            token_expires_at=interaction.expires_at,
            deadline_at=now + timedelta(seconds=self.bot.settings.watch_timeout_seconds),
            key_id=choice.key_id,
            attachment_size_limit=interaction.filesize_limit,
            notify_requester=notify and not private,
        )


class ClipPicks(commands.Cog):
    """Answers a card's clip picker with the chosen clips, privately: from the followed task,
    else from the relay; a card whose task is gone gets a short private note instead."""

    def __init__(self, bot: SunoBot) -> None:
        self.bot = bot

    @commands.Cog.listener(f"on_{PICK_EVENT}")
    async def on_clip_pick(self, interaction: Interaction, ref: str, values: list[str]) -> None:
        try:
            await self._answer_pick(interaction, ref, values)
        except Exception:
            log.exception("could not answer a clip pick for %s", ref)
            if not interaction.response.is_done():
                await reply_error(interaction, "error.internal")
                return
            failed = render_error("error.internal", locale=_user_locale(interaction))
            with contextlib.suppress(discord.HTTPException):
                await self._edit_private(interaction, failed)

    async def _answer_pick(self, interaction: Interaction, ref: str, values: list[str]) -> None:
        locale = _user_locale(interaction)
        task = self._followed_task(ref)
        if task is None and ref.startswith(DIGEST_MARK):
            await reply_error(interaction, "error.card_unknown")
            return
        if task is None:
            # The relay may take a while: the private answer starts as "thinking".
            await interaction.response.defer(ephemeral=True, thinking=True)
            # Read with the key of whoever asks, as `/suno status` would be.
            choice = await self.bot.keys.choose(interaction.user.id, interaction.guild_id)
            try:
                task = await self.bot.keyed_relay.fetch(ref, choice.key_id)
            except RelayError as exc:
                key = (
                    "error.card_unknown"
                    if exc.message_key == "error.task_not_found"
                    else exc.message_key
                )
                await self._edit_private(interaction, render_error(key, locale=locale))
                return
        rendered = render_picked(task, values, locale=locale)
        if rendered is None:
            rendered = render_error("error.picked_nothing", locale=locale)
        if interaction.response.is_done():
            await self._edit_private(interaction, rendered)
        else:
            await interaction.response.send_message(view=rendered.view(), ephemeral=True)

    def _followed_task(self, ref: str) -> Task | None:
        tracker = self.bot.tracker
        if not ref.startswith(DIGEST_MARK):
            return tracker.latest(ref)
        digest = ref.removeprefix(DIGEST_MARK)
        found = (tid for tid in tracker.followed_ids() if task_digest(tid) == digest)
        task_id = next(found, None)
        return tracker.latest(task_id) if task_id is not None else None

    async def _edit_private(self, interaction: Interaction, rendered: RenderedMessage) -> None:
        # The deferred reply takes the Components V2 flag with this edit.
        await interaction.edit_original_response(view=rendered.view())


def _user_locale(interaction: Interaction) -> str:
    return str(interaction.locale)


def _card_locale(interaction: Interaction, *, private: bool) -> str:
    """The language of the status message: a public card speaks the server's language (the
    user's outside a server); a private one, and every error, the user's."""
    if private or interaction.guild_locale is None:
        return str(interaction.locale)
    return str(interaction.guild_locale)


def _transient(error: BaseException | None) -> RelayError | None:
    """`error` when it is a relay failure worth retrying (not a missing task or a bad key)."""
    return error if isinstance(error, RelayError) and error.transient else None


async def setup(bot: commands.Bot) -> None:
    assert isinstance(bot, SunoBot)
    await bot.add_cog(Suno(bot))
    await bot.add_cog(ClipPicks(bot))
    # Pickers on cards sent before a restart keep working: their custom id names the task.
    bot.add_dynamic_items(ClipPicker)
