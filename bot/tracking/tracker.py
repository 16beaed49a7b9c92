"""Keeps every watched status message current: one relay poll per task id per interval."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from bot.render import Notice, RenderedMessage, render_error, render_task
from bot.suno.errors import BatchUnsupported, RelayError, TaskNotFound
from bot.suno.models import Task
from bot.tracking.editor import EditResult, MessageContent
from bot.tracking.store import Watch, WatchOutcome, WatchStore

log = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 300.0
# A single failed poll is common and recovers on its own; say "retrying" only when it persists.
FAILURES_BEFORE_NOTICE = 2
# A task the relay stops knowing about mid-watch is given a few chances before the watch ends.
NOT_FOUND_BEFORE_GIVING_UP = 3
MAX_CONCURRENT_FETCHES = 64
# Edits in flight at once. A change seen by thousands of watches would otherwise open a
# connection to Discord per message at the same moment (10 000 watches: +150 MB and seconds
# of event-loop stalls); queued edits still send only the newest state of their message.
MAX_CONCURRENT_EDITS = 64
# Batches read at once, and tasks handled between two turns of the event loop: a hundred
# batches answered together were parsed and rendered back to back, stalling the loop (and
# every interaction that arrived meanwhile) for ~1.6 s with 10 000 watches.
MAX_CONCURRENT_BATCHES = 4
TASKS_PER_TURN = 10
MAX_EDIT_RETRIES = 8
# Expired interaction tokens are credentials no longer needed: drop them from the store soon.
HOUSEKEEPING_SECONDS = 300.0
KEEP_ENDED_WATCHES = timedelta(days=7)


class TaskSource(Protocol):
    async def fetch(self, task_id: str) -> Task: ...

    async def fetch_many(self, task_ids: Sequence[str]) -> list[Task]: ...


class Editor(Protocol):
    async def edit_original(
        self, application_id: int, token: str, message: MessageContent
    ) -> EditResult: ...

    async def edit_channel_message(
        self, channel_id: int, message_id: int, message: MessageContent
    ) -> EditResult: ...


@dataclass(eq=False)
class _Watcher:
    watch: Watch
    token: str | None
    message_id: int | None
    fingerprint: str | None
    # Wall-clock times (time.time()), read from `watch` once: every tick compares them.
    deadline: float = 0.0  # auto-refresh stops
    switch_at: float = 0.0  # the interaction token is no longer used
    pending: RenderedMessage | None = None
    # The answer (and notice) the newest message was rendered from: an identical answer,
    # the common case, renders the identical message and is skipped.
    rendered_from: tuple[Task, Notice | None] | None = None
    outcome: WatchOutcome | None = None  # set once the pending edit is the last one
    editing: bool = False
    ended: bool = False

    @property
    def id(self) -> int:
        return self.watch.id


@dataclass(eq=False)
class _Entry:
    task_id: str
    next_poll: float
    watchers: dict[int, _Watcher] = field(default_factory=dict)
    last: Task | None = None
    failures: int = 0
    not_found: int = 0
    in_flight: bool = False
    answered: bool = False  # the relay was asked at least once, whatever it said


@dataclass(frozen=True, slots=True)
class TrackerStats:
    tasks: int
    watches: int
    batch_mode: bool | None


class Tracker:
    """Polls the relay for every watched task and edits each watching message when it changes."""

    def __init__(
        self,
        *,
        source: TaskSource,
        store: WatchStore,
        editor: Editor,
        poll_interval: float,
        watch_timeout: float,
        batch_size: int,
        token_margin: float,
        can_edit_channel: Callable[[Watch], bool],
    ) -> None:
        self._source = source
        self._store = store
        self._editor = editor
        self._interval = poll_interval
        self._timeout_minutes = max(1, round(watch_timeout / 60))
        self._batch_size = batch_size
        self._token_margin = token_margin
        self._can_edit_channel = can_edit_channel
        self._entries: dict[str, _Entry] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._wake = asyncio.Event()
        # When the loop looks again unless woken (monotonic); it is woken only for sooner work.
        self._planned = math.inf
        self._runner: asyncio.Task[None] | None = None
        self._fetch_slots = asyncio.Semaphore(MAX_CONCURRENT_FETCHES)
        self._edit_slots = asyncio.Semaphore(MAX_CONCURRENT_EDITS)
        self._batch_slots = asyncio.Semaphore(MAX_CONCURRENT_BATCHES)
        self._batch_mode: bool | None = None  # None until the relay has shown whether it batches

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        if self._runner is None:
            self._runner = asyncio.create_task(self._run(), name="tracker")

    async def close(self) -> None:
        """Stops polling and editing; every store write already made stays committed."""
        runner, self._runner = self._runner, None
        pending = [*self._tasks, *([runner] if runner else [])]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        self._tasks.clear()

    def stats(self) -> TrackerStats:
        watches = sum(len(entry.watchers) for entry in self._entries.values())
        return TrackerStats(tasks=len(self._entries), watches=watches, batch_mode=self._batch_mode)

    # -- watches -------------------------------------------------------------------------

    def add(self, watch: Watch, *, task: Task | None, poll_now: bool = False) -> None:
        """Starts keeping `watch`'s message current; `task` is what it shows already, if known."""
        entry = self._entries.get(watch.task_id)
        if entry is None:
            first_poll = time.monotonic() + (0.0 if poll_now else self._interval)
            entry = self._entries[watch.task_id] = _Entry(watch.task_id, next_poll=first_poll)
        elif poll_now:
            entry.next_poll = min(entry.next_poll, time.monotonic())
        if task is not None and entry.last is None:
            entry.last = task
        watcher = entry.watchers[watch.id] = _Watcher(
            watch=watch,
            token=watch.interaction_token,
            message_id=watch.message_id,
            fingerprint=watch.last_fingerprint,
            deadline=watch.deadline_at.timestamp(),
            switch_at=watch.token_expires_at.timestamp() - self._token_margin,
        )
        # Each tick looks at every watch; waking one per added watch made adding n watches
        # cost n² (a burst of 10 000 took minutes and stalled the gateway).
        deadline_in = self._next_deadline(watcher) - _now()
        self._wake_for(min(entry.next_poll, time.monotonic() + deadline_in))

    def _wake_for(self, due: float) -> None:
        """Wakes the loop when something is due (monotonic) before it planned to look again."""
        if due < self._planned:
            self._wake.set()

    async def resume(self) -> int:
        """Takes up every unfinished watch in the store; returns how many."""
        await self._housekeep()
        watches = await self._store.active()
        for watch in watches:
            self.add(watch, task=None, poll_now=True)
        return len(watches)

    # -- scheduling ----------------------------------------------------------------------

    async def _housekeep(self) -> None:
        now = datetime.now(UTC)
        purged = await self._store.purge_expired_tokens(now)
        pruned = await self._store.prune_finished(now - KEEP_ENDED_WATCHES)
        if purged or pruned:
            log.debug("dropped %d expired tokens and %d ended watches", purged, pruned)

    async def _housekeep_forever(self) -> None:
        while True:
            await asyncio.sleep(HOUSEKEEPING_SECONDS)
            try:
                await self._housekeep()
            except Exception:
                log.exception("store housekeeping failed")

    async def _run(self) -> None:
        self._spawn(self._housekeep_forever())
        while True:
            self._wake.clear()
            pause = self._interval
            try:
                self._enforce_deadlines()
                self._poll_due()
                pause = self._seconds_to_next_event()
            except Exception:
                log.exception("tracker tick failed")
            self._planned = time.monotonic() + pause
            await self._sleep(pause)
            self._planned = math.inf

    async def _sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._wake.wait()

    def _seconds_to_next_event(self) -> float:
        now_mono, now_wall = time.monotonic(), _now()
        soonest = math.inf
        for entry in self._entries.values():
            if not entry.in_flight and _has_live_watcher(entry):
                soonest = min(soonest, entry.next_poll - now_mono)
            if not _has_news(entry):
                continue  # its first answer wakes the loop; deadlines wait for it
            for watcher in entry.watchers.values():
                if watcher.outcome is None:
                    soonest = min(soonest, self._next_deadline(watcher) - now_wall)
        return 3600.0 if soonest is math.inf else max(soonest, 0.0)

    def _next_deadline(self, watcher: _Watcher) -> float:
        # Runs for every watch on every tick, so it only compares numbers: whether the
        # channel route exists (Discord's permission cache, ~20 µs) is asked once, at the switch.
        if watcher.token is not None:
            return min(watcher.deadline, watcher.switch_at)
        return watcher.deadline

    def _has_channel_route(self, watcher: _Watcher) -> bool:
        """Whether the bot token can edit the watch's message once the interaction token is gone."""
        watch = watcher.watch
        if watcher.message_id is None or watch.channel_id is None:
            return False
        try:
            return self._can_edit_channel(watch)
        except Exception:
            # Unsure: let Discord's answer to the channel edit decide, as for an uncached channel.
            log.exception("could not tell whether watch %s can edit its channel", watch.id)
            return True

    def _token_switch_at(self, watcher: _Watcher) -> float:
        return watcher.switch_at

    def _enforce_deadlines(self) -> None:
        now = _now()
        for entry in list(self._entries.values()):
            for watcher in list(entry.watchers.values()):
                if watcher.outcome is not None:
                    continue
                # A watch resumed after its deadline still gets one poll to show where it ended.
                if now >= watcher.deadline and _has_news(entry):
                    self._conclude(entry, watcher, Notice.AUTO_REFRESH_STOPPED)
                    self._set_outcome(watcher, WatchOutcome.TIMED_OUT)
                elif watcher.token is not None and now >= watcher.switch_at:
                    if self._has_channel_route(watcher):
                        watcher.token = None  # the bot's own channel edits take over
                    else:
                        self._conclude(entry, watcher, Notice.LIVE_UPDATES_ENDED)
                        self._set_outcome(watcher, WatchOutcome.LOST)

    def _conclude(self, entry: _Entry, watcher: _Watcher, notice: Notice) -> None:
        if entry.last is not None:
            self._show(watcher, entry.last, notice=notice)
        elif watcher.fingerprint is None:
            self._queue(
                watcher, render_error("error.relay_unavailable", locale=watcher.watch.locale)
            )

    def _poll_due(self) -> None:
        now = time.monotonic()
        # A task whose every watcher is concluded only waits for its last edits: never poll it.
        ready = [
            entry
            for entry in self._entries.values()
            if not entry.in_flight and _has_live_watcher(entry)
        ]
        due = [entry for entry in ready if entry.next_poll <= now]
        if not due:
            return
        if len(ready) > 1 and self._batch_mode is not False:
            # Watches start at any moment, so the tasks' schedules drift apart; healthy tasks
            # due within half an interval ride along, so a batch polls them all at once. A
            # task backing off keeps its own schedule (a relay's Retry-After must hold).
            soon = now + self._interval / 2
            due += [
                entry for entry in ready if now < entry.next_poll <= soon and entry.failures == 0
            ]
        for entry in due:
            entry.in_flight = True
        if len(due) > 1 and self._batch_mode is not False:
            for start in range(0, len(due), self._batch_size):
                self._spawn(self._poll_batch(due[start : start + self._batch_size], now))
        else:
            for entry in due:
                self._spawn(self._poll_one(entry, now))

    # -- polling -------------------------------------------------------------------------

    async def _poll_one(self, entry: _Entry, started: float) -> None:
        try:
            async with self._fetch_slots:
                task = await self._source.fetch(entry.task_id)
        except RelayError as exc:
            self._on_failure(entry, exc)
        except Exception as exc:
            log.exception("poll of %s failed unexpectedly", entry.task_id)
            self._on_failure(entry, exc)
        else:
            self._on_task(entry, task, started)
        finally:
            entry.in_flight = False
            self._wake_for(entry.next_poll)

    async def _poll_batch(self, entries: list[_Entry], started: float) -> None:
        async with self._batch_slots:
            await self._read_batch(entries, started)

    async def _read_batch(self, entries: list[_Entry], started: float) -> None:
        try:
            tasks = await self._source.fetch_many([entry.task_id for entry in entries])
        except BatchUnsupported:
            if self._batch_mode is not False:
                log.info("the relay has no batch fetch; polling tasks one by one")
            self._batch_mode = False
            await asyncio.gather(*(self._poll_one(entry, started) for entry in entries))
            return
        except Exception as exc:
            if not isinstance(exc, RelayError):
                log.exception("batch poll failed unexpectedly")
            # One answer time for the whole batch keeps its tasks on one schedule.
            answered = time.monotonic()
            for entry in entries:
                self._on_failure(entry, exc, now=answered)
                entry.in_flight = False
            self._wake_for(min(entry.next_poll for entry in entries))
            return
        self._batch_mode = True
        found = {task.task_id: task for task in tasks}
        missing = []
        for number, entry in enumerate(entries, 1):
            task = found.get(entry.task_id)
            if task is None:
                missing.append(entry)
                continue
            self._on_task(entry, task, started)
            entry.in_flight = False
            if number % TASKS_PER_TURN == 0:
                await asyncio.sleep(0)
        # Relays leave unknown ids out of a batch silently; only a direct fetch can tell.
        await asyncio.gather(*(self._poll_one(entry, started) for entry in missing))
        self._wake_for(min(entry.next_poll for entry in entries))

    def _on_task(self, entry: _Entry, task: Task, started: float) -> None:
        entry.answered = True
        entry.failures = 0
        entry.not_found = 0
        entry.last = task
        # Counted from when the poll started, so the tasks polled together stay together
        # however long each answer took.
        entry.next_poll = started + self._interval
        now = _now()
        for watcher in list(entry.watchers.values()):
            if watcher.outcome is not None:
                continue
            if task.is_terminal:
                self._show(watcher, task)
                self._set_outcome(watcher, WatchOutcome.FINISHED)
            elif now >= watcher.deadline:
                self._show(watcher, task, notice=Notice.AUTO_REFRESH_STOPPED)
                self._set_outcome(watcher, WatchOutcome.TIMED_OUT)
            else:
                self._show(watcher, task)

    def _on_failure(self, entry: _Entry, error: Exception, *, now: float | None = None) -> None:
        entry.answered = True
        entry.failures += 1
        if isinstance(error, TaskNotFound):
            entry.not_found += 1
            if entry.not_found >= NOT_FOUND_BEFORE_GIVING_UP:
                log.info("task %s is no longer known to the relay", entry.task_id)
                for watcher in list(entry.watchers.values()):
                    if watcher.outcome is None:
                        locale = watcher.watch.locale
                        self._queue(watcher, render_error(error.message_key, locale=locale))
                        self._set_outcome(watcher, WatchOutcome.FINISHED)
                return
        delay = min(self._interval * 2**entry.failures, MAX_BACKOFF_SECONDS)
        retry_after = getattr(error, "retry_after", None)
        if isinstance(retry_after, int | float):
            delay = max(delay, min(float(retry_after), MAX_BACKOFF_SECONDS))
        entry.next_poll = (time.monotonic() if now is None else now) + delay
        log.info("poll of %s failed (%s); retrying in %.1fs", entry.task_id, error, delay)
        if (
            entry.failures >= FAILURES_BEFORE_NOTICE
            and entry.last is not None
            and not isinstance(error, TaskNotFound)
        ):
            for watcher in entry.watchers.values():
                if watcher.outcome is None:
                    self._show(watcher, entry.last, notice=Notice.RELAY_RETRYING)

    # -- editing -------------------------------------------------------------------------

    def render(self, task: Task, *, locale: str, notice: Notice | None = None) -> RenderedMessage:
        """The message a watch of `task` shows; the command's first answer uses it too."""
        return render_task(
            task, locale=locale, notice=notice, watch_timeout_minutes=self._timeout_minutes
        )

    def _show(self, watcher: _Watcher, task: Task, *, notice: Notice | None = None) -> None:
        source = (task, notice)
        if watcher.rendered_from == source:
            return
        try:
            rendered = self.render(task, locale=watcher.watch.locale, notice=notice)
        except Exception:
            # One watch's message is left as it is; the task's other watches go on.
            log.exception("could not render task %s for watch %s", task.task_id, watcher.id)
            return
        self._queue(watcher, rendered)
        watcher.rendered_from = source

    def _queue(self, watcher: _Watcher, rendered: RenderedMessage) -> None:
        # Latest wins: while an edit is in flight only the newest state waits behind it.
        watcher.rendered_from = None
        watcher.pending = rendered
        self._ensure_draining(watcher)

    def _set_outcome(self, watcher: _Watcher, outcome: WatchOutcome) -> None:
        if watcher.outcome is None:
            watcher.outcome = outcome
        self._ensure_draining(watcher)

    def _ensure_draining(self, watcher: _Watcher) -> None:
        if not watcher.editing and not watcher.ended:
            watcher.editing = True
            self._spawn(self._drain(watcher))

    async def _drain(self, watcher: _Watcher) -> None:
        retries = 0
        try:
            while not watcher.ended:
                rendered = watcher.pending
                if rendered is None:
                    if watcher.outcome is not None:
                        await self._end(watcher, watcher.outcome)
                    return
                watcher.pending = None
                if rendered.fingerprint == watcher.fingerprint:
                    continue
                async with self._edit_slots:
                    if watcher.pending is not None:
                        # A newer state arrived while this edit waited for its turn: send that.
                        rendered, watcher.pending = watcher.pending, None
                        if rendered.fingerprint == watcher.fingerprint:
                            continue
                    try:
                        result = await self._edit(watcher, rendered)
                    except Exception:
                        log.exception("edit of watch %s failed unexpectedly", watcher.id)
                        result = EditResult.RETRY
                if result is EditResult.OK:
                    retries = 0
                    watcher.fingerprint = rendered.fingerprint
                    await self._remember(watcher, rendered.fingerprint)
                elif result is EditResult.GONE:
                    await self._end(watcher, WatchOutcome.LOST)
                elif result is EditResult.REJECTED:
                    # The same body would be refused again; remember it so it is not resent.
                    watcher.fingerprint = rendered.fingerprint
                elif retries < MAX_EDIT_RETRIES:
                    retries += 1
                    if watcher.pending is None:
                        watcher.pending = rendered
                    await asyncio.sleep(min(self._interval * 2**retries, MAX_BACKOFF_SECONDS))
                else:
                    log.warning("giving up on the message of watch %s", watcher.id)
                    await self._end(watcher, WatchOutcome.LOST)
        finally:
            watcher.editing = False

    async def _remember(self, watcher: _Watcher, fingerprint: str) -> None:
        try:
            await self._store.set_fingerprint(watcher.id, fingerprint)
        except Exception:
            # The message is right; after a restart it may only be edited once more than needed.
            log.exception("could not record what the message of watch %s shows", watcher.id)

    def _token_usable(self, watcher: _Watcher) -> bool:
        now = time.time()
        if now < self._token_switch_at(watcher):
            return True
        # Without a channel route the token is the only way to say that updates ended;
        # Discord takes it until the interaction expires.
        return now < watcher.watch.token_expires_at.timestamp() and not self._has_channel_route(
            watcher
        )

    async def _edit(self, watcher: _Watcher, rendered: RenderedMessage) -> EditResult:
        watch = watcher.watch
        if watcher.token is not None and self._token_usable(watcher):
            result = await self._editor.edit_original(watch.application_id, watcher.token, rendered)
            if result is not EditResult.TOKEN_DEAD:
                return result
            log.info("interaction token of watch %s no longer works", watch.id)
        # Past this point the token is never used again, even if the channel path fails too.
        watcher.token = None
        channel_id, message_id = watch.channel_id, watcher.message_id
        if channel_id is not None and message_id is not None and self._has_channel_route(watcher):
            return await self._editor.edit_channel_message(channel_id, message_id, rendered)
        return EditResult.GONE

    async def _end(self, watcher: _Watcher, outcome: WatchOutcome) -> None:
        if watcher.ended:
            return
        watcher.ended = True
        entry = self._entries.get(watcher.watch.task_id)
        if entry is not None:
            entry.watchers.pop(watcher.id, None)
            if not entry.watchers:
                del self._entries[entry.task_id]
        await self._store.finish(watcher.id, outcome)
        log.debug("watch %s ended: %s", watcher.id, outcome.value)

    # -- task ownership ------------------------------------------------------------------

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._reap)

    def _reap(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("tracker task failed", exc_info=task.exception())


def _now() -> float:
    return time.time()


def _has_live_watcher(entry: _Entry) -> bool:
    return any(watcher.outcome is None for watcher in entry.watchers.values())


def _has_news(entry: _Entry) -> bool:
    """Whether anything is known of the task, so a last edit can say where it ended."""
    return entry.answered or entry.last is not None
