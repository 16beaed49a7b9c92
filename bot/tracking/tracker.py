"""Follows every watched task: polls come in, each watching message is told what to show."""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import math
from collections import Counter
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from bot.keys import KeyRemoved
from bot.render import Notice
from bot.suno.errors import RelayError, RelayKeyRejected, TaskNotFound
from bot.suno.models import Task
from bot.tracking.background import Background
from bot.tracking.clock import Clock, SystemClock, now
from bot.tracking.policy import (
    HOUSEKEEPING_SECONDS,
    IDLE_SECONDS,
    KEEP_ENDED_WATCHES,
    MAX_CONCURRENT_EDITS,
    PollPolicy,
)
from bot.tracking.poller import PolledTask, Poller, PollKey, TaskSource
from bot.tracking.store import Watch, WatchOutcome, WatchStore
from bot.tracking.updater import Editor, EditQueue, FinalEditObserver, Message, MessageUpdater

log = logging.getLogger(__name__)

# The last message of a watch whose member or server key the relay stopped accepting.
KEY_REJECTED_MID_WATCH = "error.watch_key_rejected"


class Leadership(Protocol):
    """Who decides which tasks this process follows, when several share one store
    (bot.tracking.cluster.Coordinator)."""

    def offer(
        self, watch: Watch, *, task: Task | None, poll_now: bool, failure: RelayError | None
    ) -> None: ...

    def watch_ended(self, watch_id: int) -> None: ...

    def task_done(self, poll_key: PollKey) -> None: ...

    def pass_on(self, action: str, watch: Watch) -> None: ...

    async def start(self) -> int: ...

    async def close(self) -> None: ...


# Told about a watch whose message shows its finished task: the watch, the task, and the
# interaction token that can still edit the message (None: only the channel route is left).
FinishedCallback = Callable[[Watch, Task, "str | None"], Coroutine[Any, Any, None]]


class Presenter(Protocol):
    """Whoever owns the watches' presentation: turns a task or an error into a message."""

    def task(
        self, task: Task, *, locale: str, notice: Notice | None = None, private: bool = False
    ) -> Message:
        """`private`: the message is seen by its requester only."""
        ...

    def unanswered(self, task_id: str, *, locale: str, notice: Notice) -> Message:
        """A task the relay has given no answer about: its id and why the message waits."""
        ...

    def error(self, message_key: str, *, locale: str) -> Message: ...


@dataclass(eq=False, slots=True)
class _Followed:
    """One watched task: what the poller knows of it, and every message that shows it."""

    polled: PolledTask
    updaters: dict[int, MessageUpdater] = field(default_factory=dict)
    # Past their deadline before the task's first answer: they wait for it to say where it is.
    waiting: list[MessageUpdater] = field(default_factory=list)

    def live(self) -> bool:
        # A task whose every watcher is concluded only waits for its last edits: never poll it.
        return any(updater.outcome is None for updater in self.updaters.values())


@dataclass(frozen=True, slots=True)
class TrackerStats:
    tasks: int
    watches: int
    batch_mode: bool | None
    # Watches by how their message is edited now: "token" or "channel".
    routes: Mapping[str, int]


class Tracker:
    """Keeps every watched message current: one relay poll per task id per interval, deadlines
    kept, and the last edit of each watch decided (finished, timed out, or lost)."""

    def __init__(
        self,
        *,
        source: TaskSource,
        store: WatchStore,
        editor: Editor,
        presenter: Presenter,
        policy: PollPolicy,
        batch_size: int,
        token_margin: float,
        can_edit_channel: Callable[[Watch], bool],
        clock: Clock | None = None,
        observer: FinalEditObserver | None = None,
        on_finished: FinishedCallback | None = None,
    ) -> None:
        self._store = store
        self._on_finished = on_finished
        self._observer = observer
        self._editor = editor
        self._presenter = presenter
        self._policy = policy
        self._clock = clock or SystemClock()
        self._token_margin = token_margin
        self._can_edit_channel = can_edit_channel
        self._background = Background("tracker")
        self._spawn = self._background.spawn
        self._poller = Poller(
            source=source,
            policy=self._policy,
            clock=self._clock,
            batch_size=batch_size,
            listener=self,
            wanted=self._wanted,
            spawn=self._spawn,
            wake=self._wake_for,
        )
        # Every watched task, by the key it is polled with and its task id.
        self._followed: dict[PollKey, _Followed] = {}
        # (due_at, tie-breaker, updater), one entry per change of an updater's due time; an
        # entry whose time is no longer the updater's is stale and skipped when it comes up.
        self._due: list[tuple[float, int, MessageUpdater]] = []
        self._order = itertools.count()
        self._wake = asyncio.Event()
        # When the loop looks again unless woken (monotonic); it is woken only for sooner work.
        self._planned = math.inf
        self._runner: asyncio.Task[None] | None = None
        self._edits = EditQueue(MAX_CONCURRENT_EDITS, self._spawn)
        self._leadership: Leadership | None = None

    def share_with(self, leadership: Leadership) -> None:
        """Follows only the tasks `leadership` gives this process (a cluster's share)."""
        self._leadership = leadership

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        if self._runner is None:
            self._runner = asyncio.create_task(self._run(), name="tracker")

    async def close(self) -> None:
        """Stops polling and editing; every store write already made stays committed.
        In a cluster the tasks are handed to the other processes."""
        if self._leadership is not None:
            await self._leadership.close()
        runner, self._runner = self._runner, None
        self._edits.close()
        await self._background.cancel(runner)

    def stats(self) -> TrackerStats:
        routes = Counter(
            updater.route
            for followed in self._followed.values()
            for updater in followed.updaters.values()
        )
        return TrackerStats(
            tasks=len(self._followed),
            watches=routes.total(),
            batch_mode=self._poller.batch_mode,
            routes=routes,
        )

    # -- watches -------------------------------------------------------------------------

    def add(
        self,
        watch: Watch,
        *,
        task: Task | None,
        poll_now: bool = False,
        failure: RelayError | None = None,
    ) -> None:
        """Starts keeping `watch`'s message current; `task` is what it shows already, if known,
        and `failure` what went wrong when the relay was last asked, if it failed. In a
        cluster a task another process leads is followed there."""
        if self._leadership is not None and not self.polls((watch.key_id, watch.task_id)):
            self._leadership.offer(watch, task=task, poll_now=poll_now, failure=failure)
            return
        self.follow(watch, task=task, poll_now=poll_now, failure=failure)

    def follow(
        self,
        watch: Watch,
        *,
        task: Task | None,
        poll_now: bool = False,
        failure: RelayError | None = None,
    ) -> None:
        """Keeps `watch`'s message current from this process (see `add`)."""
        poll_key = (watch.key_id, watch.task_id)
        followed = self._followed.get(poll_key)
        if followed is not None and watch.id in followed.updaters:
            return  # already kept current (a command answered before the store was resumed)
        polled = self._poller.track(
            watch.task_id, poll_now=poll_now, last=task, failure=failure, key_id=watch.key_id
        )
        if followed is None:
            followed = self._followed[poll_key] = _Followed(polled)
        updater = MessageUpdater(
            watch,
            editor=self._editor,
            store=self._store,
            policy=self._policy,
            clock=self._clock,
            queue=self._edits,
            token_margin=self._token_margin,
            can_edit_channel=self._can_edit_channel,
            spawn=self._spawn,
            on_end=self._forget,
            on_channel_refused=self._say_goodbye,
            on_due=self._plan,
            observer=self._observer,
        )
        followed.updaters[watch.id] = updater
        # Each tick looks at every watch; waking one per added watch made adding n watches
        # cost n² (a burst of 10 000 took minutes and stalled the gateway).
        self._wake_for(min(polled.next_poll, updater.due_at))

    async def resume(self) -> int:
        """Takes up every unfinished watch in the store (in a cluster: of this process's
        share of the tasks); returns how many."""
        await self._housekeep()
        if self._leadership is not None:
            return await self._leadership.start()
        watches = await self._store.active()
        for watch in watches:
            self.add(watch, task=None, poll_now=True)
        return len(watches)

    def follow_up(self, watch: Watch, task: Task, token: str | None) -> None:
        """Runs what follows a finished task for a watch whose message showed it at once."""
        if self._on_finished is not None and task.is_terminal:
            self._spawn(self._on_finished(watch, task, token))

    def refresh(self, watch: Watch, *, here: bool = False) -> bool:
        """Asks the relay about the watch's task now; False when nothing follows it. In a
        cluster the process that follows it does it, unless `here`."""
        if (watch.key_id, watch.task_id) not in self._followed:
            return not here and self._pass_on("refresh", watch)
        self._poller.track(watch.task_id, poll_now=True, last=None, key_id=watch.key_id)
        self._wake.set()
        return True

    def stop(self, watch: Watch, *, here: bool = False) -> bool:
        """Ends `watch` with a last edit saying updates were stopped; False when it was not
        live. In a cluster the process that follows it does it, unless `here`."""
        followed = self._followed.get((watch.key_id, watch.task_id))
        updater = followed.updaters.get(watch.id) if followed is not None else None
        if updater is None:
            return not here and self._pass_on("stop", watch)
        if followed is None or updater.outcome is not None:
            return False
        self._conclude(followed.polled, updater, Notice.UPDATES_STOPPED)
        updater.conclude(WatchOutcome.STOPPED)
        return True

    def follows(self, watch: Watch) -> bool:
        """Whether the watch's message is still kept current (in a cluster: by any process,
        as the store says)."""
        followed = self._followed.get((watch.key_id, watch.task_id))
        updater = followed.updaters.get(watch.id) if followed is not None else None
        if updater is None and self._leadership is not None:
            return watch.outcome is WatchOutcome.ACTIVE
        return updater is not None and updater.outcome is None

    def _pass_on(self, action: str, watch: Watch) -> bool:
        """In a cluster, a live watch this process does not follow is another's: it does
        `action`. False when nobody keeps the watch current."""
        if self._leadership is None or watch.outcome is not WatchOutcome.ACTIVE:
            return False
        self._leadership.pass_on(action, watch)
        return True

    def end_key(self, key_id: int) -> list[int]:
        """Ends every watch polled with key `key_id` (it is being removed): each message's
        last state says live updates ended. Returns the ids of the watches that ended."""
        ended = []
        for followed in [f for f in self._followed.values() if f.polled.key_id == key_id]:
            for updater in self._live(followed.polled):
                self._conclude(followed.polled, updater, Notice.LIVE_UPDATES_ENDED)
                updater.conclude(WatchOutcome.LOST)
                ended.append(updater.id)
        return ended

    def _forget(self, updater: MessageUpdater) -> None:
        poll_key = (updater.watch.key_id, updater.watch.task_id)
        followed = self._followed.get(poll_key)
        if followed is None:
            return
        task = followed.polled.last
        if (
            self._on_finished is not None
            and updater.ended_as is WatchOutcome.FINISHED
            and task is not None
            and task.is_terminal
        ):
            self._spawn(self._on_finished(updater.watch, task, updater.live_token()))
        followed.updaters.pop(updater.id, None)
        if self._leadership is not None:
            self._leadership.watch_ended(updater.id)
        if not followed.updaters:
            del self._followed[poll_key]
            self._poller.forget(poll_key)
            if self._leadership is not None:
                self._leadership.task_done(poll_key)

    def drop(self, poll_key: PollKey) -> None:
        """Stops following `poll_key` (key, task id) without ending its watches: another
        process leads it."""
        if self._followed.pop(poll_key, None) is not None:
            self._poller.forget(poll_key)

    def following(self) -> list[int]:
        """The ids of the watches this tracker keeps current."""
        return [watch_id for followed in self._followed.values() for watch_id in followed.updaters]

    def polls(self, poll_key: PollKey) -> bool:
        """Whether this process polls `poll_key` (key, task id)."""
        return poll_key in self._followed

    def _say_goodbye(self, updater: MessageUpdater) -> None:
        """The channel refused an edit: the message's last state says live updates ended."""
        followed = self._followed.get((updater.watch.key_id, updater.watch.task_id))
        if followed is not None:
            self._conclude(followed.polled, updater, Notice.LIVE_UPDATES_ENDED)
        updater.conclude(WatchOutcome.LOST)

    def _wanted(self, polled: PolledTask) -> bool:
        followed = self._followed.get(polled.poll_key)
        return followed is not None and followed.live()

    # -- the loop ------------------------------------------------------------------------

    def _wake_for(self, due: float) -> None:
        """Wakes the loop when something is due (monotonic) before it planned to look again."""
        if due < self._planned:
            self._wake.set()

    async def _run(self) -> None:
        self._spawn(self._housekeep_forever())
        while True:
            self._wake.clear()
            pause = self._policy.interval
            try:
                self._enforce_deadlines()
                self._poller.poll_due()
                pause = self._seconds_to_next_event()
            except Exception:
                log.exception("tracker tick failed")
            self._planned = self._clock.monotonic() + pause
            await self._sleep(pause)
            self._planned = math.inf

    async def _sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._wake.wait()

    def _plan(self, updater: MessageUpdater) -> None:
        """Puts `updater`'s new due time in the schedule."""
        heapq.heappush(self._due, (updater.due_at, next(self._order), updater))

    def _stands(self, when: float, updater: MessageUpdater) -> bool:
        followed = self._followed.get((updater.watch.key_id, updater.watch.task_id))
        return (
            when == updater.due_at
            and updater.outcome is None
            and followed is not None
            and followed.updaters.get(updater.id) is updater
        )

    def _next_deadline(self) -> float:
        due = self._due
        while due and not self._stands(due[0][0], due[0][2]):
            heapq.heappop(due)
        return due[0][0] if due else math.inf

    def _seconds_to_next_event(self) -> float:
        # Both schedules are heaps: a tick costs what is due, not what is watched.
        soonest = min(self._next_deadline(), self._poller.next_due())
        if soonest == math.inf:
            return IDLE_SECONDS
        return max(soonest - self._clock.monotonic(), 0.0)

    def _enforce_deadlines(self) -> None:
        current = self._clock.monotonic()
        due = self._due
        while due and due[0][0] <= current:
            when, _, updater = heapq.heappop(due)
            if self._stands(when, updater):
                self._keep_deadline(updater, current)

    def _keep_deadline(self, updater: MessageUpdater, current: float) -> None:
        followed = self._followed[(updater.watch.key_id, updater.watch.task_id)]
        polled = followed.polled
        # A watch resumed after its deadline still gets one poll to show where it ended.
        if current >= updater.deadline and polled.has_news:
            self._conclude(polled, updater, Notice.AUTO_REFRESH_STOPPED)
            updater.conclude(WatchOutcome.TIMED_OUT)
        elif updater.past_token_switch(current):
            if not updater.switch_to_channel():
                self._conclude(polled, updater, Notice.LIVE_UPDATES_ENDED)
                updater.conclude(WatchOutcome.LOST)
        elif current >= updater.deadline:
            # Past the deadline with nothing known yet: the task's first answer decides.
            followed.waiting.append(updater)

    def _news(self, polled: PolledTask) -> None:
        """The relay said something about the task: watches waiting for it are due again."""
        followed = self._followed.get(polled.poll_key)
        if followed is not None and followed.waiting:
            for updater in followed.waiting:
                self._plan(updater)
            followed.waiting.clear()
            self._wake_for(self._clock.monotonic())

    def _conclude(self, polled: PolledTask, updater: MessageUpdater, notice: Notice) -> None:
        """Queues a watch's last message: where its task stood, and why it stops changing."""
        if polled.last is not None:
            self._show(updater, polled.last, notice=notice)
        else:
            locale = updater.watch.locale
            updater.update(self._presenter.unanswered(polled.task_id, locale=locale, notice=notice))

    async def _housekeep(self) -> None:
        current = now(self._clock)
        purged = await self._store.purge_expired_tokens(current)
        pruned = await self._store.prune_finished(current - KEEP_ENDED_WATCHES)
        if purged or pruned:
            log.debug("dropped %d expired tokens and %d ended watches", purged, pruned)

    async def _housekeep_forever(self) -> None:
        while True:
            await asyncio.sleep(HOUSEKEEPING_SECONDS)
            try:
                await self._housekeep()
            except Exception:
                log.exception("store housekeeping failed")

    def latest(self, task_id: str) -> Task | None:
        """The newest answer about a followed task, read with any key; None for a task not
        followed (or not answered yet)."""
        for (_, followed_id), followed in self._followed.items():
            if followed_id == task_id and followed.polled.last is not None:
                return followed.polled.last
        return None

    def followed_ids(self) -> list[str]:
        return list(dict.fromkeys(task_id for _, task_id in self._followed))

    # -- what the poller found -----------------------------------------------------------

    def on_answer(self, polled: PolledTask, task: Task) -> None:
        self._news(polled)
        current = self._clock.monotonic()
        for updater in self._live(polled):
            if task.is_terminal:
                self._show(updater, task)
                updater.conclude(WatchOutcome.FINISHED, finished_at=current)
            elif current >= updater.deadline:
                self._show(updater, task, notice=Notice.AUTO_REFRESH_STOPPED)
                updater.conclude(WatchOutcome.TIMED_OUT)
            else:
                self._show(updater, task)

    def on_failure(self, polled: PolledTask, error: Exception) -> None:
        self._news(polled)
        if isinstance(error, KeyRemoved) and polled.key_id is not None:
            # Removed by its owner, through another process of a cluster: as on removal here.
            self.end_key(polled.key_id)
            return
        if isinstance(error, RelayKeyRejected) and polled.key_id is not None:
            self._key_rejected(polled.key_id)
            return
        last = polled.last
        if (
            last is None
            or not self._policy.shows_retrying(polled.failures)
            or isinstance(error, TaskNotFound)
        ):
            return
        for updater in self._live(polled):
            self._show(updater, last, notice=Notice.RELAY_RETRYING)

    def on_gone(self, polled: PolledTask, error: TaskNotFound) -> None:
        self._news(polled)
        for updater in self._live(polled):
            self._show_error(updater, error.message_key)
            updater.conclude(WatchOutcome.FINISHED)

    def _key_rejected(self, key_id: int) -> None:
        """A member's or server's key is no longer accepted: every watch polled with it ends,
        its message saying so to the key's owner (and nothing of the key itself)."""
        log.info("the relay rejected relay key #%d; ending its watches", key_id)
        for followed in [f for f in self._followed.values() if f.polled.key_id == key_id]:
            for updater in self._live(followed.polled):
                self._show_error(updater, KEY_REJECTED_MID_WATCH)
                updater.conclude(WatchOutcome.LOST)

    def _live(self, polled: PolledTask) -> list[MessageUpdater]:
        followed = self._followed.get(polled.poll_key)
        if followed is None:
            return []
        return [updater for updater in followed.updaters.values() if updater.outcome is None]

    # -- presentation --------------------------------------------------------------------

    def _show(self, updater: MessageUpdater, task: Task, *, notice: Notice | None = None) -> None:
        source = (task, notice)
        if updater.shows_source(source):
            return
        try:
            watch = updater.watch
            message = self._presenter.task(
                task, locale=watch.locale, notice=notice, private=watch.ephemeral
            )
        except Exception:
            # One watch's message is left as it is; the task's other watches go on.
            log.exception("could not render task %s for watch %s", task.task_id, updater.id)
            return
        updater.update(message, source=source)

    def _show_error(self, updater: MessageUpdater, message_key: str) -> None:
        updater.update(self._presenter.error(message_key, locale=updater.watch.locale))

    # -- task ownership ------------------------------------------------------------------
