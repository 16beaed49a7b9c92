"""What follows a finished task's last edit: one reply that mentions whoever asked to be
told, then the songs' MP3s attached to the card in a second edit."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import discord

from bot.audio import SongFiles, playable_clips, song_filename
from bot.i18n import Catalog, default_catalog
from bot.safety import escape, truncate
from bot.suno.errors import RelayError
from bot.suno.models import Task, TaskStatus
from bot.tracking.editor import EditResult, MessageContent, MessageEditor
from bot.tracking.store import AudioState, FollowUpStore, Watch

log = logging.getLogger(__name__)

# Mentions in one completion reply: enough for a crowd, well within 2 000 characters.
MAX_MENTIONS = 50
# Tries at attaching a watch's songs, across restarts.
MAX_AUDIO_ATTEMPTS = 2
# After a restart, what follows a finished task is still done for watches that ended this
# recently; older cards are left as they are.
FOLLOW_UP_WINDOW = timedelta(hours=1)
_TITLE_LIMIT = 200
# Discord's component type of a file shown in a Components V2 message.
FILE_COMPONENT = 13


class TaskFetcher(Protocol):
    async def fetch(self, task_id: str, key_id: int | None = None) -> Task:
        """The task, read with the stored key `key_id` (None: the operator's key)."""
        ...


class CardRenderer(Protocol):
    """The finished card again, playing the files `audio` names (clip id -> file name)."""

    def __call__(self, task: Task, watch: Watch, audio: Mapping[str, str]) -> MessageContent: ...


def played_files(message: MessageContent) -> set[str]:
    """The attachments a card plays (its File components), by file name."""
    found: set[str] = set()
    view: Any = message.view()  # discord.py leaves to_components untyped
    pending: list[Any] = list(view.to_components())
    while pending:
        component = pending.pop()
        if isinstance(component, Mapping):
            media = component.get("file")
            if component.get("type") == FILE_COMPONENT and isinstance(media, Mapping):
                found.add(str(media.get("url", "")).removeprefix("attachment://"))
            pending.extend(component.get("components") or [])
    return found


def mentions_for(watch: Watch, subscribers: Sequence[int]) -> list[int]:
    """Who the completion reply mentions: the requester if they asked, then the subscribers."""
    users = [watch.requester_id] if watch.notify_requester else []
    users += [user for user in subscribers if user not in users]
    return users[:MAX_MENTIONS]


class Completion:
    """Runs once a watch's message shows its finished task."""

    def __init__(
        self,
        *,
        client: discord.Client,
        store: FollowUpStore,
        editor: MessageEditor,
        render: CardRenderer,
        songs: SongFiles | None,
        catalog: Catalog | None = None,
    ) -> None:
        self._client = client
        self._store = store
        self._editor = editor
        self._render = render
        self._songs = songs
        self._catalog = catalog or default_catalog()

    async def finished(self, watch: Watch, task: Task, token: str | None) -> None:
        """The reply first (it is quick), then the songs; neither is ever shown as an error."""
        try:
            await self.announce(watch, task, token)
        except Exception:
            log.exception("completion reply of watch %s failed", watch.id)
        try:
            if self._songs is not None and task.status is TaskStatus.SUCCESS:
                await self.attach(watch, task, token)
            else:
                await self._store.set_audio(watch.id, AudioState.GIVEN_UP)
        except Exception:
            log.exception("attaching the songs of watch %s failed", watch.id)

    async def resume(self, relay: TaskFetcher) -> int:
        """Finishes what a stop or crash interrupted for watches that ended lately; returns
        how many were looked at. Each is tried a bounded number of times, ever."""
        since = datetime.now(UTC) - FOLLOW_UP_WINDOW
        watches = await self._store.unfollowed(since)
        for watch in watches:
            try:
                task = await relay.fetch(watch.task_id, watch.key_id)
            except RelayError as exc:
                if not exc.transient:
                    await self._give_up(watch)
                continue
            if task.is_terminal:
                await self.finished(watch, task, None)
            else:
                await self._give_up(watch)
        return len(watches)

    async def _give_up(self, watch: Watch) -> None:
        await self._store.claim_announcement(watch.id)
        await self._store.set_audio(watch.id, AudioState.GIVEN_UP)

    # the reply

    async def announce(self, watch: Watch, task: Task, token: str | None) -> None:
        # Claimed first, whoever is to be mentioned: decided once, never again after a restart.
        if not await self._store.claim_announcement(watch.id):
            return
        if watch.ephemeral or watch.channel_id is None or watch.message_id is None:
            return
        users = mentions_for(watch, await self._store.subscribers(watch.id))
        if not users:
            return
        text = self._reply_text(watch, task, users)
        allowed = discord.AllowedMentions(
            everyone=False,
            roles=False,
            replied_user=False,
            users=[discord.Object(id=user) for user in users],
        )
        channel = self._client.get_partial_messageable(watch.channel_id)
        try:
            await channel.get_partial_message(watch.message_id).reply(
                text, allowed_mentions=allowed
            )
        except discord.HTTPException as exc:
            if token is None:
                log.info("completion reply of watch %s failed: HTTP %s", watch.id, exc.status)
                return
            # No access to the channel (a user-installed app): the interaction can still post.
            webhook = discord.Webhook.partial(watch.application_id, token, client=self._client)
            await webhook.send(text, allowed_mentions=allowed)

    def _reply_text(self, watch: Watch, task: Task, users: Sequence[int]) -> str:
        title = next((clip.title for clip in task.clips if clip.title), None)
        if title is None and task.lyrics is not None:
            title = task.lyrics.title
        key = "reply.done" if task.status is TaskStatus.SUCCESS else "reply.failed"
        mentions = " ".join(f"<@{user}>" for user in users)
        name = escape(truncate(title, _TITLE_LIMIT)) if title else task.task_id
        return self._catalog.text(watch.locale, key, mentions=mentions, title=name)

    # the songs

    async def attach(self, watch: Watch, task: Task, token: str | None) -> None:
        assert self._songs is not None
        if not await self._store.claim_audio_attempt(watch.id, MAX_AUDIO_ATTEMPTS):
            return
        # Only the songs the card has room to play: a listed card of many songs plays fewer.
        planned = {clip.id: song_filename(clip, n) for n, clip in playable_clips(task)}
        shown = played_files(self._render(task, watch, planned))
        wanted = {clip_id for clip_id, name in planned.items() if name in shown}
        files = await self._songs.fetch(task, watch.attachment_size_limit, wanted) if wanted else []
        if not files:
            await self._store.set_audio(watch.id, AudioState.GIVEN_UP)
            return
        message = self._render(task, watch, {song.clip_id: song.filename for song in files})
        result = await self._edit(watch, token, message, [song.to_file() for song in files])
        if result is EditResult.OK:
            await self._store.set_audio(watch.id, AudioState.ATTACHED)
            log.info("attached %d songs to the message of watch %s", len(files), watch.id)
            return
        log.info("attaching songs to watch %s failed (%s)", watch.id, result.value)
        if result is not EditResult.RETRY:
            await self._store.set_audio(watch.id, AudioState.GIVEN_UP)

    async def _edit(
        self, watch: Watch, token: str | None, message: MessageContent, files: list[discord.File]
    ) -> EditResult:
        if token is not None:
            result = await self._editor.edit_original(
                watch.application_id, token, message, files=files
            )
            if result is not EditResult.TOKEN_DEAD:
                return result
        if watch.ephemeral or watch.channel_id is None or watch.message_id is None:
            return EditResult.GONE
        for file in files:
            file.reset()
        return await self._editor.edit_channel_message(
            watch.channel_id, watch.message_id, message, files=files
        )
