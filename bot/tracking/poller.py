"""Asks the relay for the tasks that are due: one poll per task id, in batches when it can."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import math
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from bot.suno.errors import BatchUnsupported, RelayError, TaskNotFound
from bot.suno.models import Task
from bot.tracking.clock import Clock
from bot.tracking.policy import (
    MAX_CONCURRENT_BATCHES,
    MAX_CONCURRENT_FETCHES,
    TASKS_PER_TURN,
    PollPolicy,
)

log = logging.getLogger(__name__)


class TaskSource(Protocol):
    """The relay, asked with the key of row `key_id` (None: the operator's key)."""

    async def fetch(self, task_id: str, key_id: int | None = None) -> Task: ...

    async def fetch_many(
        self, task_ids: Sequence[str], key_id: int | None = None
    ) -> list[Task]: ...

    def forget(self, task_id: str) -> None:
        """The task is no longer polled (with any key)."""


# A task is polled per key: a relay shows a task only to its creator's key, so an answer
# read with one key is never shown to a watcher who chose another.
PollKey = tuple[int | None, str]


@dataclass(eq=False, slots=True)
class PolledTask:
    """What the poller knows of one task id; times are on the clock's monotonic timeline."""

    task_id: str
    next_poll: float
    last: Task | None = None  # the newest answer
    failures: int = 0  # failed polls in a row
    not_found: int = 0  # "no such task" answers in a row
    in_flight: bool = False
    answered: bool = False  # the relay was asked at least once, whatever it said
    key_id: int | None = None  # the key it is polled with (None: the operator's)

    @property
    def poll_key(self) -> PollKey:
        return (self.key_id, self.task_id)

    @property
    def has_news(self) -> bool:
        """Whether anything is known of the task, so a last edit can say where it ended."""
        return self.answered or self.last is not None


class PollListener(Protocol):
    def on_answer(self, polled: PolledTask, task: Task) -> None:
        """The relay answered with the task."""

    def on_failure(self, polled: PolledTask, error: Exception) -> None:
        """A poll failed; the task is asked again later."""

    def on_gone(self, polled: PolledTask, error: TaskNotFound) -> None:
        """The relay no longer knows the task; it is not asked again."""


class Poller:
    """Decides which task ids are due, coalesces them into batches and reports every answer.

    A task is polled only while `wanted` says someone still follows it. Whether the relay
    has a batch endpoint is learnt from its first answer to one.
    """

    def __init__(
        self,
        *,
        source: TaskSource,
        policy: PollPolicy,
        clock: Clock,
        batch_size: int,
        listener: PollListener,
        wanted: Callable[[PolledTask], bool],
        spawn: Callable[[Coroutine[Any, Any, None]], None],
        wake: Callable[[float], None],
    ) -> None:
        self._source = source
        self._policy = policy
        self._clock = clock
        self._batch_size = batch_size
        self._listener = listener
        self._wanted = wanted
        self._spawn = spawn
        self._wake = wake
        self.tasks: dict[PollKey, PolledTask] = {}
        # (next_poll, tie-breaker, task), one entry per schedule change; an entry whose time is
        # no longer its task's next_poll is stale and skipped when it comes up.
        self._schedule: list[tuple[float, int, PolledTask]] = []
        self._order = itertools.count()
        self.batch_mode: bool | None = None  # None until the relay has shown whether it batches
        self._reprobe_at = math.inf  # when to try the batch endpoint again (monotonic)
        self._fetch_slots = asyncio.Semaphore(MAX_CONCURRENT_FETCHES)
        self._batch_slots = asyncio.Semaphore(MAX_CONCURRENT_BATCHES)

    def track(
        self,
        task_id: str,
        *,
        poll_now: bool,
        last: Task | None,
        failure: RelayError | None = None,
        key_id: int | None = None,
    ) -> PolledTask:
        """Starts (or keeps) polling `task_id` with key `key_id`; `last` is an answer already
        in hand, `failure` how the last ask failed (the next poll then backs off as after any
        failed poll)."""
        now = self._clock.monotonic()
        polled = self.tasks.get((key_id, task_id))
        if polled is None:
            first = now if poll_now else self._policy.next_poll(now)
            polled = PolledTask(task_id, next_poll=first, key_id=key_id)
            self.tasks[polled.poll_key] = polled
            if failure is not None:
                self._failed(polled, failure)
        elif poll_now:
            polled.next_poll = min(polled.next_poll, now)
        # Also for a known task: one no longer wanted dropped out of the schedule.
        self._plan(polled)
        if last is not None and polled.last is None:
            polled.last = last
        return polled

    def forget(self, poll_key: PollKey) -> None:
        self.tasks.pop(poll_key, None)
        self._source.forget(poll_key[1])

    def polls(self, polled: PolledTask) -> bool:
        """Whether `polled` waits for its next poll (not in flight and still wanted)."""
        return not polled.in_flight and self._wanted(polled)

    def _plan(self, polled: PolledTask) -> None:
        heapq.heappush(self._schedule, (polled.next_poll, next(self._order), polled))

    def _current(self, when: float, polled: PolledTask) -> bool:
        """Whether a schedule entry still stands: its task's time, tracked, waiting, wanted."""
        return (
            when == polled.next_poll
            and self.tasks.get(polled.poll_key) is polled
            and self.polls(polled)
        )

    def next_due(self) -> float:
        """When the next poll is due (monotonic); infinity when none is planned."""
        schedule = self._schedule
        while schedule and not self._current(schedule[0][0], schedule[0][2]):
            heapq.heappop(schedule)
        return schedule[0][0] if schedule else math.inf

    def _take_until(self, until: float, *, settled_only: bool = False) -> list[PolledTask]:
        """Every current entry due by `until`, out of the schedule; with `settled_only`, tasks
        backing off after a failure stay where they are (a relay's Retry-After must hold)."""
        taken: list[PolledTask] = []
        seen: set[PolledTask] = set()
        kept: list[tuple[float, int, PolledTask]] = []
        schedule = self._schedule
        while schedule and schedule[0][0] <= until:
            entry = heapq.heappop(schedule)
            when, _, polled = entry
            if not self._current(when, polled) or polled in seen:
                continue
            if settled_only and polled.failures:
                kept.append(entry)
            else:
                taken.append(polled)
                seen.add(polled)
        for entry in kept:
            heapq.heappush(schedule, entry)
        return taken

    def poll_due(self) -> None:
        """Starts a poll of every task that is due, in batches when the relay takes them."""
        now = self._clock.monotonic()
        if self.next_due() > now:
            return
        due = self._take_until(now)
        if not due:
            return
        batching = self.batch_mode is not False or now >= self._reprobe_at
        if len(self.tasks) > 1 and batching:
            due += self._take_until(self._policy.ride_along_until(now), settled_only=True)
        for polled in due:
            polled.in_flight = True
        for same_key in _by_key(due):
            if len(same_key) > 1 and batching:
                for start in range(0, len(same_key), self._batch_size):
                    self._spawn(self._poll_batch(same_key[start : start + self._batch_size], now))
            else:
                for polled in same_key:
                    self._spawn(self._poll_one(polled, now))

    async def _poll_one(self, polled: PolledTask, started: float) -> None:
        try:
            async with self._fetch_slots:
                task = await self._source.fetch(polled.task_id, polled.key_id)
        except RelayError as exc:
            self._failed(polled, exc)
        except Exception as exc:
            log.exception("poll of %s failed unexpectedly", polled.task_id)
            self._failed(polled, exc)
        else:
            self._answered(polled, task, started)
        finally:
            polled.in_flight = False
            self._wake(polled.next_poll)

    async def _poll_batch(self, batch: list[PolledTask], started: float) -> None:
        async with self._batch_slots:
            await self._read_batch(batch, started)

    async def _read_batch(self, batch: list[PolledTask], started: float) -> None:
        try:
            tasks = await self._source.fetch_many(
                [polled.task_id for polled in batch], batch[0].key_id
            )
        except BatchUnsupported:
            if self.batch_mode is not False:
                log.info(
                    "the relay has no batch fetch; polling tasks one by one, asking again in %.0fs",
                    self._policy.batch_reprobe,
                )
            self.batch_mode = False
            self._reprobe_at = self._clock.monotonic() + self._policy.batch_reprobe
            await asyncio.gather(*(self._poll_one(polled, started) for polled in batch))
            return
        except Exception as exc:
            self._batch_failed(batch, exc)
            return
        if self.batch_mode is False:
            log.info("the relay now has a batch fetch; polling tasks in batches")
        self.batch_mode = True
        self._reprobe_at = math.inf
        found = {task.task_id: task for task in tasks}
        missing = []
        for number, polled in enumerate(batch, 1):
            task = found.get(polled.task_id)
            if task is None:
                missing.append(polled)
                continue
            self._answered(polled, task, started)
            polled.in_flight = False
            if number % TASKS_PER_TURN == 0:
                await asyncio.sleep(0)
        # Relays leave unknown ids out of a batch silently; only a direct fetch can tell.
        await asyncio.gather(*(self._poll_one(polled, started) for polled in missing))
        self._wake(min(polled.next_poll for polled in batch))

    def _batch_failed(self, batch: list[PolledTask], error: Exception) -> None:
        if not isinstance(error, RelayError):
            log.error("batch poll failed unexpectedly", exc_info=error)
        # One answer time for the whole batch keeps its tasks on one schedule.
        answered = self._clock.monotonic()
        for polled in batch:
            self._failed(polled, error, now=answered)
            polled.in_flight = False
        self._wake(min(polled.next_poll for polled in batch))

    def _answered(self, polled: PolledTask, task: Task, started: float) -> None:
        polled.answered = True
        polled.failures = 0
        polled.not_found = 0
        polled.last = task
        polled.next_poll = self._policy.next_poll(started)
        self._plan(polled)
        self._listener.on_answer(polled, task)

    def _failed(self, polled: PolledTask, error: Exception, *, now: float | None = None) -> None:
        polled.answered = True
        polled.failures += 1
        if isinstance(error, TaskNotFound):
            polled.not_found += 1
            if self._policy.gives_up_on_not_found(polled.not_found):
                log.info("task %s is no longer known to the relay", polled.task_id)
                self._listener.on_gone(polled, error)
                return
        retry_after = getattr(error, "retry_after", None)
        delay = self._policy.retry_delay(
            polled.failures, float(retry_after) if isinstance(retry_after, int | float) else None
        )
        polled.next_poll = (self._clock.monotonic() if now is None else now) + delay
        self._plan(polled)
        log.info("poll of %s failed (%s); retrying in %.1fs", polled.task_id, error, delay)
        self._listener.on_failure(polled, error)


def _by_key(due: list[PolledTask]) -> list[list[PolledTask]]:
    """The due tasks, one list per key they are polled with (a batch asks with one key)."""
    groups: dict[int | None, list[PolledTask]] = {}
    for polled in due:
        groups.setdefault(polled.key_id, []).append(polled)
    return list(groups.values())
