"""Keeps one watch's message showing the newest state: latest-wins edits, token then channel."""

from __future__ import annotations

import asyncio
import logging
import math
from collections import deque
from collections.abc import Callable, Coroutine, Hashable
from typing import Any, Protocol

from bot.tracking.clock import Clock, on_monotonic
from bot.tracking.editor import EditResult, MessageContent
from bot.tracking.policy import PollPolicy
from bot.tracking.store import Watch, WatchOutcome, WatchStore

log = logging.getLogger(__name__)


class Message(MessageContent, Protocol):
    """A rendered message; equal fingerprints mean a user would see the same thing."""

    @property
    def fingerprint(self) -> str: ...


class Editor(Protocol):
    async def edit_original(
        self, application_id: int, token: str, message: MessageContent
    ) -> EditResult: ...

    async def edit_channel_message(
        self, channel_id: int, message_id: int, message: MessageContent
    ) -> EditResult: ...


class FinalEditObserver(Protocol):
    def final_edit(self, seconds: float) -> None:
        """A finished task's last state reached its message `seconds` after the relay said
        the task was finished."""


class MessageUpdater:
    """One watch's message: queues the newest state, sends it by the route that still works,
    and turns Discord's answers into the watch's outcome.

    While an edit is in flight only the newest state waits behind it. The interaction token
    is used until shortly before it expires, then the bot's own channel edit takes over.
    """

    # Tens of thousands of these live at once: no per-instance dict.
    __slots__ = (
        "_can_edit_channel",
        "_channel_refused",
        "_clock",
        "_created",
        "_editing",
        "_editor",
        "_ended",
        "_fingerprint",
        "_finished_at",
        "_last_attempt",
        "_last_shown",
        "_message_id",
        "_observer",
        "_on_channel_refused",
        "_on_due",
        "_on_end",
        "_pending",
        "_policy",
        "_queue",
        "_retries",
        "_source",
        "_spare_token",
        "_spawn",
        "_store",
        "_switch_at",
        "_token",
        "_token_expires",
        "deadline",
        "due_at",
        "ended_as",
        "outcome",
        "watch",
    )

    def __init__(
        self,
        watch: Watch,
        *,
        editor: Editor,
        store: WatchStore,
        policy: PollPolicy,
        clock: Clock,
        queue: EditQueue,
        token_margin: float,
        can_edit_channel: Callable[[Watch], bool],
        spawn: Callable[[Coroutine[Any, Any, None]], None],
        on_end: Callable[[MessageUpdater], None],
        on_channel_refused: Callable[[MessageUpdater], None],
        on_due: Callable[[MessageUpdater], None] | None = None,
        observer: FinalEditObserver | None = None,
    ) -> None:
        self.watch = watch
        self._editor = editor
        self._store = store
        self._policy = policy
        self._clock = clock
        self._queue = queue
        self._can_edit_channel = can_edit_channel
        self._spawn = spawn
        self._on_end = on_end
        self._on_channel_refused = on_channel_refused
        self._on_due = on_due
        self._observer = observer
        # The token in use, and `due_at`, kept together by `_use_token`.
        self._token: str | None = None
        self.due_at = math.inf
        # The token after the switch to channel edits, while it may still say goodbye.
        self._spare_token: str | None = None
        self._channel_refused = False
        self._message_id = watch.message_id
        self._fingerprint = watch.last_fingerprint
        # Monotonic times, converted once: every tick compares them.
        self.deadline = on_monotonic(clock, watch.deadline_at)  # auto-refresh stops
        self._token_expires = on_monotonic(clock, watch.token_expires_at)
        self._switch_at = self._token_expires - token_margin  # the token is no longer used
        self._created = on_monotonic(clock, watch.created_at)
        self._use_token(watch.interaction_token)
        self._last_attempt = -math.inf
        self._last_shown = -math.inf  # when an edit last went through (monotonic)
        self._finished_at: float | None = None  # when the relay said the task was finished
        self._pending: Message | None = None
        # What the newest message was made from: the same source again is skipped unrendered.
        self._source: Hashable | None = None
        self.outcome: WatchOutcome | None = None  # set once the pending edit is the last one
        # True from the moment the watch asks for its turn until its pending states are sent
        # (or it gives up), including while it waits for a retry or for the spacing of edits.
        self._editing = False
        self._retries = 0  # failed tries of the state being sent
        self._ended = False
        self.ended_as: WatchOutcome | None = None  # how the watch ended, once it has

    @property
    def id(self) -> int:
        return self.watch.id

    @property
    def route(self) -> str:
        """How the message is edited now: "token" (the interaction) or "channel"."""
        return "token" if self._token is not None else "channel"

    def _use_token(self, token: str | None) -> None:
        """Edits go through `token` from now on (None: through the channel, if at all)."""
        self._token = token
        # When this watch next needs the tracker without a poll (monotonic): every tick reads
        # it for every watch, so it is kept as a plain number. Whether the channel route
        # exists (Discord's permission cache, ~20 µs) is asked only once, at the switch.
        self.due_at = min(self.deadline, self._switch_at) if token is not None else self.deadline
        if self._on_due is not None:
            self._on_due(self)

    def live_token(self) -> str | None:
        """The interaction token while it may still edit the message (before the switch)."""
        token = self._token or self._spare_token
        if token is None or self._clock.monotonic() >= self._switch_at:
            return None
        return token

    def past_token_switch(self, now: float) -> bool:
        return self._token is not None and now >= self._switch_at

    def switch_to_channel(self) -> bool:
        """Stops using the interaction token; False when no other route can edit the message."""
        if not self._has_channel_route():
            return False
        self._spare_token = self._token
        self._use_token(None)
        return True

    def shows_source(self, source: Hashable) -> bool:
        return self._source == source

    def update(self, message: Message, *, source: Hashable | None = None) -> None:
        """Makes `message` the next state to send; `source` is what it was made from."""
        self._pending = message
        self._source = source
        self._ensure_draining()

    def conclude(self, outcome: WatchOutcome, *, finished_at: float | None = None) -> None:
        """The queued state is the last: once it is sent the watch ends with `outcome`.
        `finished_at` is when the relay said the task was finished (monotonic), if it did."""
        if self.outcome is None:
            self.outcome = outcome
            self._finished_at = finished_at
        self._ensure_draining()

    def _ensure_draining(self) -> None:
        if not self._editing and not self._ended:
            self._editing = True
            self._queue.request(self)

    async def take_turn(self) -> None:
        """Sends the pending states, one edit after another (the edit queue calls this); a wait
        for a retry or for the spacing of edits gives the turn back and asks again after it."""
        try:
            wait = await self._drain()
        except BaseException:
            self._editing = False
            raise
        if wait is None:
            self._editing = False
        else:
            asyncio.get_running_loop().call_later(wait, self._queue.request, self)

    async def _drain(self) -> float | None:
        """Seconds until the next try when it must wait; None once nothing is left to send."""
        while not self._ended:
            message = self._take()
            if message is None:
                if self.outcome is not None:
                    await self._end(self.outcome)
                return None
            wait = self._spacing_wait()
            if wait > 0:
                # Whatever arrives meanwhile replaces it: the edit after the wait is the newest.
                self._pending = message
                return wait
            result = await self._send(message)
            delay = await self._after(message, result)
            if delay is not None:
                return delay
        return None

    def _take(self) -> Message | None:
        """The pending state, unless the message already shows it."""
        message, self._pending = self._pending, None
        if message is None or message.fingerprint == self._fingerprint:
            return None
        return message

    def _spacing_wait(self) -> float:
        # Discord caps edits of messages older than an hour; those are spaced out, and the
        # latest-wins queue makes the edit that follows the wait carry the newest state.
        now = self._clock.monotonic()
        spacing = self._policy.edit_spacing(now - self._created)
        return self._last_attempt + spacing - now

    async def _send(self, message: Message) -> EditResult:
        self._last_attempt = self._clock.monotonic()
        try:
            return await self._edit(message)
        except Exception:
            log.exception("edit of watch %s failed unexpectedly", self.id)
            return EditResult.RETRY

    async def _after(self, message: Message, result: EditResult) -> float | None:
        """Acts on Discord's answer to one edit; returns the wait before a retry, if any."""
        if result is EditResult.OK:
            self._retries = 0
            self._last_shown = self._clock.monotonic()
            self._fingerprint = message.fingerprint
            await self._remember(message.fingerprint)
            return None
        if result is EditResult.GONE:
            if self._fall_back_to_token(message):
                return None
            await self._end(WatchOutcome.LOST)
        elif result is EditResult.REJECTED:
            # The same body would be refused again; remember it so it is not resent.
            self._retries = 0
            self._fingerprint = message.fingerprint
        elif self._policy.retries_edit(self._retries, capped=result is EditResult.CAPPED):
            if self._pending is None:
                self._pending = message
            self._retries += 1
            return self._policy.edit_retry_delay(self._retries, capped=result is EditResult.CAPPED)
        else:
            log.warning("giving up on the message of watch %s", self.id)
            await self._end(WatchOutcome.LOST)
        return None

    def _fall_back_to_token(self, message: Message) -> bool:
        """After the channel refused an edit, the interaction token takes over again while it
        lives: for one last edit saying live updates ended, or for the final state itself."""
        if self._spare_token is None or self._clock.monotonic() >= self._token_expires:
            return False
        log.info("channel edit of watch %s refused; finishing through the interaction", self.id)
        self._use_token(self._spare_token)
        self._spare_token = None
        self._channel_refused = True
        if self.outcome is None:
            self._on_channel_refused(self)
        elif self._pending is None:
            self._pending = message
        return True

    async def _remember(self, fingerprint: str) -> None:
        try:
            await self._store.set_fingerprint(self.id, fingerprint)
        except Exception:
            # The message is right; after a restart it may only be edited once more than needed.
            log.exception("could not record what the message of watch %s shows", self.id)

    def _has_channel_route(self) -> bool:
        """Whether the bot token can edit the message once the interaction token is gone."""
        if self._channel_refused or self._message_id is None or self.watch.channel_id is None:
            return False
        try:
            return self._can_edit_channel(self.watch)
        except Exception:
            # Unsure: let Discord's answer to the channel edit decide, as for an uncached channel.
            log.exception("could not tell whether watch %s can edit its channel", self.id)
            return True

    def _token_usable(self) -> bool:
        now = self._clock.monotonic()
        if now < self._switch_at:
            return True
        # Without a channel route the token is the only way to say that updates ended;
        # Discord takes it until the interaction expires.
        return now < self._token_expires and not self._has_channel_route()

    async def _edit(self, message: Message) -> EditResult:
        watch = self.watch
        if self._token is not None and self._token_usable():
            result = await self._editor.edit_original(watch.application_id, self._token, message)
            if result is not EditResult.TOKEN_DEAD:
                return result
            log.info("interaction token of watch %s no longer works", watch.id)
            self._use_token(None)  # never used again, even if the channel path fails too
        elif self._token is not None:
            # Past the switch: the channel takes over; the token is kept only to say goodbye.
            self._spare_token = self._token
            self._use_token(None)
        channel_id, message_id = watch.channel_id, self._message_id
        if channel_id is not None and message_id is not None and self._has_channel_route():
            return await self._editor.edit_channel_message(channel_id, message_id, message)
        return EditResult.GONE

    async def _end(self, outcome: WatchOutcome) -> None:
        if self._ended:
            return
        self._ended = True
        self.ended_as = outcome
        self._report_final_edit(outcome)
        self._on_end(self)
        await self._store.finish(self.id, outcome)
        log.debug("watch %s ended: %s", self.id, outcome.value)

    def _report_final_edit(self, outcome: WatchOutcome) -> None:
        finished_at = self._finished_at
        if (
            self._observer is not None
            and outcome is WatchOutcome.FINISHED
            and finished_at is not None
            and self._last_shown >= finished_at
        ):
            self._observer.final_edit(self._last_shown - finished_at)


class EditQueue:
    """At most `limit` messages are edited at once; the others wait for their turn in order.

    A poll that changes ten thousand tasks queues ten thousand messages: each waits as one
    entry here, not as a task of its own blocked on a semaphore, and `limit` workers take
    them in turn.
    """

    def __init__(self, limit: int, spawn: Callable[[Coroutine[Any, Any, None]], None]) -> None:
        self._limit = limit
        self._spawn = spawn
        self._waiting: deque[MessageUpdater] = deque()
        self._working = 0
        self._closed = False

    def request(self, updater: MessageUpdater) -> None:
        """Gives `updater` a turn as soon as a worker is free."""
        if self._closed:
            return
        if self._working < self._limit:
            self._working += 1
            self._spawn(self._work(updater))
        else:
            self._waiting.append(updater)

    def close(self) -> None:
        """No more turns (the tracker is stopping)."""
        self._closed = True
        self._waiting.clear()

    async def _work(self, updater: MessageUpdater) -> None:
        try:
            while True:
                try:
                    await updater.take_turn()
                except Exception:
                    log.exception("edit of watch %s failed unexpectedly", updater.id)
                if self._closed or not self._waiting:
                    return
                updater = self._waiting.popleft()
        finally:
            self._working -= 1
