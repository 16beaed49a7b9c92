"""Shares the watched tasks out between the processes on one PostgreSQL store.

A task is a (relay key, task id) pair: members who follow one task id with keys of their own
are polled apart, so each pair has its own lease. Each task with an unfinished watch has one
leader: the process holding its task lease polls it once per interval and edits every message
watching it, whichever shard the command came from (edits go through the interaction token or
the bot's REST token; neither needs the shard's gateway).

- A process that receives a command for a task nobody leads claims the task and follows it;
  when another process leads it, the new watch is handed over with a notification (NOTIFY),
  and the leader reads it and follows it at once.
- Every `sync_every` seconds each process renews its leases, claims free tasks up to its
  share (tasks / processes) or lets go of what it holds above the share, and reads the
  watches of its tasks it does not follow yet (which also catches a missed notification).
- A process that dies stops renewing: its leases lapse after `ttl` seconds and the others
  claim its tasks at their next sync. A process that stops releases its leases and tells the
  others, who claim them at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from bot.suno.errors import RelayError
from bot.suno.models import Task
from bot.tracking.background import Background
from bot.tracking.ownership import MEMBER_PREFIX
from bot.tracking.poller import PollKey
from bot.tracking.store import StoreError, Watch

log = logging.getLogger(__name__)


class TaskLeases(Protocol):
    """What the store offers for sharing tasks (bot.tracking.postgres implements it)."""

    async def claim_task(self, poll_key: PollKey, owner: str, ttl: float) -> bool: ...

    async def claim_free_tasks(self, owner: str, ttl: float, limit: int) -> list[PollKey]: ...

    async def renew_tasks(self, owner: str, ttl: float) -> set[PollKey]: ...

    async def release_tasks(
        self, owner: str, poll_keys: Sequence[PollKey] | None = None, *, announce: bool = True
    ) -> int: ...

    async def active_task_count(self) -> int: ...

    async def lease_count(self, prefix: str) -> int: ...

    async def unfollowed_watches(self, owner: str, following: Sequence[int]) -> list[Watch]: ...

    async def active_watch(self, watch_id: int) -> Watch | None: ...

    async def hand_over(self, watch: Watch) -> None: ...

    async def send_control(self, action: str, watch_id: int) -> None: ...

    async def listen(
        self,
        on_handover: Callable[[int, PollKey], None],
        on_release: Callable[[str], None],
        on_control: Callable[[str, int], None] | None = None,
    ) -> None: ...


class Followers(Protocol):
    """The tracker, as the coordinator drives it."""

    def follow(
        self,
        watch: Watch,
        *,
        task: Task | None,
        poll_now: bool = False,
        failure: RelayError | None = None,
    ) -> None: ...

    def drop(self, poll_key: PollKey) -> None: ...

    def following(self) -> list[int]: ...

    def polls(self, poll_key: PollKey) -> bool: ...

    def stop(self, watch: Watch, *, here: bool = False) -> bool: ...

    def refresh(self, watch: Watch, *, here: bool = False) -> bool: ...


@dataclass(frozen=True, slots=True)
class ClusterTiming:
    ttl: float = 15.0
    sync_every: float = 5.0
    # A process holding more than this times its share lets go of the excess (a process that
    # started first, or one that stayed while others joined).
    shed_above: float = 1.2
    # Shares are whole relay batches: the cluster then asks the relay as few times per
    # interval as one process would (⌈tasks / batch⌉), not once more per process.
    batch: int = 1

    @classmethod
    def for_settings(cls, lease_seconds: float, poll_interval: float, batch: int) -> ClusterTiming:
        """Renewals three times per lease; a sync no rarer than a poll interval."""
        sync_every = min(lease_seconds / 3, max(poll_interval, 0.5))
        return cls(ttl=lease_seconds, sync_every=sync_every, batch=batch)


class Coordinator:
    """This process's part of the cluster: which tasks it leads, kept in step with the store."""

    def __init__(self, store: TaskLeases, owner: str, timing: ClusterTiming | None = None) -> None:
        self._store = store
        self.owner = owner
        self._timing = timing or ClusterTiming()
        self._followers: Followers | None = None
        # The (key, task id) pairs this process leads.
        self.held: set[PollKey] = set()
        # Watches that ended lately: the store may still call them active for a moment.
        self._ended: tuple[set[int], set[int]] = (set(), set())
        self._wake = asyncio.Event()
        self._renewed_at = -math.inf  # monotonic
        self._runner: asyncio.Task[None] | None = None
        self._background = Background("cluster")
        self._spawn = self._background.spawn
        self._closed = False

    def attach(self, followers: Followers) -> None:
        self._followers = followers

    @property
    def _tracker(self) -> Followers:
        if self._followers is None:
            raise RuntimeError("the coordinator has no tracker attached")
        return self._followers

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> int:
        """Joins the work: listens for handovers, takes up a share of the tasks; returns
        how many watches it took up."""
        try:
            taken = await self._sync()
        except StoreError as exc:
            # The loop below tries again every sync; until then others lead the tasks.
            log.warning("could not join the cluster's work yet (%s); trying again", exc)
            taken = 0
        if self._runner is None:
            self._runner = asyncio.create_task(self._run(), name="cluster-sync")
        return taken

    async def close(self) -> None:
        """Stops syncing and lets go of every task, so the other processes take over now."""
        if self._closed:
            return
        self._closed = True
        runner, self._runner = self._runner, None
        await self._background.cancel(runner)
        # Every lease of this owner, also those whose release was still pending.
        self.held.clear()
        try:
            released = await self._store.release_tasks(self.owner)
        except StoreError as exc:
            log.warning("could not hand the tasks over (%s); they lapse instead", exc)
            return
        if released:
            log.info("handed %d tasks over to the other processes", released)

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._timing.sync_every):
                    await self._wake.wait()
            self._wake.clear()
            try:
                await self._sync()
            except StoreError as exc:
                log.warning("could not sync with the cluster (%s); trying again", exc)
                self._let_go_if_lapsed()
            except Exception:
                log.exception("cluster sync failed")

    # -- the sync ------------------------------------------------------------------------

    async def _sync(self) -> int:
        try:
            await self._store.listen(self._on_handover, self._on_release, self._on_control)
        except StoreError as exc:
            # Without notifications, handed-over watches are found by the scan below.
            log.warning("not listening for handovers (%s); relying on the scan", exc)
        before = set(self.held)
        held = await self._store.renew_tasks(self.owner, self._timing.ttl)
        self._renewed_at = time.monotonic()
        lost = before - held
        # Claims made while the renewal ran are kept: they are newer than its answer.
        self.held = (self.held - lost) | held
        for poll_key in lost:
            log.info("task %s is led by another process now", _describe(poll_key))
            self._tracker.drop(poll_key)
        await self._balance()
        ended = self._ended[0] | self._ended[1]
        self._ended = (set(), self._ended[0])
        following = [*self._tracker.following(), *ended]
        return self._take_up(await self._store.unfollowed_watches(self.owner, following))

    async def _balance(self) -> None:
        """Claims free tasks up to this process's share, or lets go of the excess."""
        members = max(1, await self._store.lease_count(MEMBER_PREFIX))
        batch = self._timing.batch
        share = math.ceil(await self._store.active_task_count() / members / batch) * batch
        if len(self.held) < share:
            limit = share - len(self.held)
            claimed = await self._store.claim_free_tasks(self.owner, self._timing.ttl, limit)
            self.held.update(claimed)
        elif len(self.held) > share * self._timing.shed_above + 1:
            shed = sorted(self.held, key=_order)[: len(self.held) - share]
            for poll_key in shed:
                self.held.discard(poll_key)
                self._tracker.drop(poll_key)
            await self._store.release_tasks(self.owner, shed)
            log.info("let go of %d tasks for the other processes to lead", len(shed))

    def _take_up(self, watches: list[Watch]) -> int:
        tracker = self._tracker
        for watch in watches:
            poll_key = (watch.key_id, watch.task_id)
            if poll_key in self.held:
                tracker.follow(watch, task=None, poll_now=not tracker.polls(poll_key))
        return len(watches)

    def _let_go_if_lapsed(self) -> None:
        """Without a renewal for a whole lease, another process may lead these tasks now:
        stop polling them rather than poll them twice."""
        if time.monotonic() - self._renewed_at < self._timing.ttl:
            return
        for poll_key in self.held:
            self._tracker.drop(poll_key)
        self.held.clear()

    # -- new watches ---------------------------------------------------------------------

    def offer(
        self, watch: Watch, *, task: Task | None, poll_now: bool, failure: RelayError | None
    ) -> None:
        """A watch made here: follow it when this process leads (or can claim) its task,
        else hand it to the leader."""
        self._spawn(self._offer(watch, task=task, poll_now=poll_now, failure=failure))

    async def _offer(
        self, watch: Watch, *, task: Task | None, poll_now: bool, failure: RelayError | None
    ) -> None:
        poll_key = (watch.key_id, watch.task_id)
        if poll_key in self.held or await self._store.claim_task(
            poll_key, self.owner, self._timing.ttl
        ):
            self.held.add(poll_key)
            self._tracker.follow(watch, task=task, poll_now=poll_now, failure=failure)
        else:
            await self._store.hand_over(watch)

    def _on_handover(self, watch_id: int, poll_key: PollKey) -> None:
        if poll_key in self.held:
            self._spawn(self._receive(watch_id))

    async def _receive(self, watch_id: int) -> None:
        watch = await self._store.active_watch(watch_id)
        if watch is None:
            return
        poll_key = (watch.key_id, watch.task_id)
        if poll_key in self.held:
            poll_now = not self._tracker.polls(poll_key)
            self._tracker.follow(watch, task=None, poll_now=poll_now)

    # -- buttons pressed on messages another process keeps current -----------------------

    def pass_on(self, action: str, watch: Watch) -> None:
        """A button (stop, refresh) pressed here on a watch another process keeps current:
        that process does it."""
        self._spawn(self._store.send_control(action, watch.id))

    def _on_control(self, action: str, watch_id: int) -> None:
        self._spawn(self._control(action, watch_id))

    async def _control(self, action: str, watch_id: int) -> None:
        watch = await self._store.active_watch(watch_id)
        if watch is None or (watch.key_id, watch.task_id) not in self.held:
            return  # ended, or another process keeps it current
        if action == "stop":
            self._tracker.stop(watch, here=True)
        elif action == "refresh":
            self._tracker.refresh(watch, here=True)

    def _on_release(self, owner: str) -> None:
        if owner != self.owner:
            self._wake.set()

    # -- ends ----------------------------------------------------------------------------

    def watch_ended(self, watch_id: int) -> None:
        self._ended[0].add(watch_id)

    def task_done(self, poll_key: PollKey) -> None:
        """No watch of `poll_key` is left here: its lease goes, for a later watch to claim."""
        if poll_key in self.held:
            self.held.discard(poll_key)
            self._spawn(self._release(poll_key))

    async def _release(self, poll_key: PollKey) -> None:
        # Nobody needs waking for a task whose watches all ended.
        await self._store.release_tasks(self.owner, [poll_key], announce=False)


def _order(poll_key: PollKey) -> tuple[str, int]:
    """A stable order of (key, task id) pairs (the operator's key, None, first)."""
    key_id, task_id = poll_key
    return (task_id, key_id or 0)


def _describe(poll_key: PollKey) -> str:
    key_id, task_id = poll_key
    return task_id if key_id is None else f"{task_id} (relay key #{key_id})"
