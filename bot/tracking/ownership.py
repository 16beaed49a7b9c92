"""One process at a time works on a store: it holds the store's lease, and others wait for it.

A second process started on the same store (an operator starting the bot twice, or a rolling
deploy that starts the new container before stopping the old one) waits here, without
connecting anywhere, until the lease is free. Then it takes over.

The numbers:
- the lease lasts LEASE_TTL_SECONDS (15 s) and is renewed every RENEW_EVERY_SECONDS (5 s), so
  two renewals in a row may fail (a busy disk) before the hold lapses;
- a clean stop releases the lease, and the waiting process, which tries every
  RETRY_EVERY_SECONDS (1 s), takes over within about a second;
- after a crash (no release) it takes over at most 15 s after the last renewal, plus 1 s.

The holder checks the wall clock every second. After the machine was suspended the event
loop's timers have not moved, but the wall clock has: the renewal is due at once, and when
another process took the lease meanwhile the renewal is refused and this process stops
editing and shuts down (LeaseLost, exit 1); a supervisor that restarts it makes it wait again.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from bot.tracking.store import LeaseStore, StoreError

log = logging.getLogger(__name__)

STORE_LEASE = "store"
# On a shared store each process holds `member:<owner>`: the other processes count these to
# share the tasks out, and a member whose lease lapsed has lost its tasks too.
MEMBER_PREFIX = "member:"
LEASE_TTL_SECONDS = 15.0
RENEW_EVERY_SECONDS = 5.0
RETRY_EVERY_SECONDS = 1.0
CLOCK_CHECK_SECONDS = 1.0
# How quickly a process waiting for the lease notices it was asked to stop.
STOP_CHECK_SECONDS = 0.1


@dataclass(frozen=True, slots=True)
class LeaseTiming:
    ttl: float = LEASE_TTL_SECONDS
    renew_every: float = RENEW_EVERY_SECONDS
    retry_every: float = RETRY_EVERY_SECONDS
    clock_check: float = CLOCK_CHECK_SECONDS
    stop_check: float = STOP_CHECK_SECONDS


class LeaseLost(StoreError):
    """Another process took the store while this one was still working on it."""


def new_owner_id() -> str:
    """Names this process for the lease and the logs: host, process id and a random tag."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


async def while_owner(
    store: LeaseStore,
    work: Callable[[], Awaitable[None]],
    *,
    stopped: Callable[[], bool],
    stop: Callable[[], Awaitable[None]],
    keeper: LeaseKeeper | None = None,
) -> None:
    """Runs `work()` only while holding the store's lease, and lets go of the lease after it.

    Waits for the lease first; returns without running `work` if `stopped()` turns true
    meanwhile. Should the lease be lost, `stop()` is awaited (it must make `work` return) and
    LeaseLost is raised once `work` has returned. `keeper`, when given, replaces the default
    keeper of the store's lease (tests pass one with short timings).
    """
    keeper = keeper or LeaseKeeper(store)
    try:
        if not await keeper.wait_until_held(stopped) or stopped():
            log.info("stopped while waiting for the store")
            return
        await keeper.run(work, stop)
    finally:
        await keeper.release()


def membership_keeper(store: LeaseStore, owner: str, timing: LeaseTiming) -> LeaseKeeper:
    """The keeper of this process's membership of a cluster sharing one store."""
    return LeaseKeeper(
        store,
        name=f"{MEMBER_PREFIX}{owner}",
        owner=owner,
        timing=timing,
        subject="its place in the cluster",
        after_loss="so that no task is polled twice (started again, it joins the cluster again)",
    )


class LeaseKeeper:
    """Takes one named lease, keeps renewing it while work runs, and releases it."""

    def __init__(
        self,
        store: LeaseStore,
        *,
        name: str = STORE_LEASE,
        owner: str | None = None,
        timing: LeaseTiming | None = None,
        clock: Callable[[], float] = time.time,
        subject: str = "the store",
        after_loss: str = (
            "so that one instance at a time works on the store (started again, this instance"
            " waits for the lease)"
        ),
    ) -> None:
        self._store = store
        self.name = name
        # What the lease stands for, and why losing it stops the process, in the log lines.
        self.subject = subject
        self.after_loss = after_loss
        self.owner = owner or new_owner_id()
        self._timing = timing or LeaseTiming()
        self._clock = clock
        self._held = False
        # Why the lease was lost, once it was.
        self.lost: str | None = None

    async def wait_until_held(self, stopped: Callable[[], bool]) -> bool:
        """Tries until the lease is ours (True) or `stopped()` is true (False).

        Logs one line per other holder it waits for, not one per try.
        """
        announced: str | None = None
        while not stopped():
            # Set before the attempt: cancelled right after a successful one, it is released.
            self._held = True
            if await self._store.acquire_lease(self.name, self.owner, self._timing.ttl):
                self._log_taken(announced)
                return True
            self._held = False
            holder = await self._store.lease_holder(self.name)
            if holder is not None and holder.owner != announced:
                announced = holder.owner
                log.warning(
                    "another instance (%s) holds the store until %s; waiting, and taking over"
                    " when it stops or its lease lapses (%g s after its last renewal)",
                    holder.owner,
                    _clock_time(holder.expires_at),
                    self._timing.ttl,
                )
            await self._pause(self._timing.retry_every, stopped)
        return False

    def _log_taken(self, previous: str | None) -> None:
        if previous is None:
            log.info(
                "holding %s as %s (lease of %g s, renewed every %g s)",
                self.subject,
                self.owner,
                self._timing.ttl,
                self._timing.renew_every,
            )
        else:
            log.info("took over the store from %s; now holding it as %s", previous, self.owner)

    async def _pause(self, seconds: float, stopped: Callable[[], bool]) -> None:
        # `stopped` is a plain predicate (the bot's is_closed), so it is looked at between naps.
        naps = max(1, math.ceil(seconds / self._timing.stop_check))
        for _ in range(naps):
            if stopped():
                return
            await asyncio.sleep(seconds / naps)

    async def run(
        self, work: Callable[[], Awaitable[None]], stop: Callable[[], Awaitable[None]]
    ) -> None:
        """Runs `work()` while renewing the lease; raises LeaseLost if it was lost meanwhile."""
        renewal = asyncio.create_task(self._keep(stop), name="store-lease-renewal")
        try:
            await work()
        finally:
            if self.lost is None:
                renewal.cancel()
            # When the lease was lost, the renewal task is running `stop()`: let it finish.
            await asyncio.gather(renewal, return_exceptions=True)
        if self.lost is not None:
            raise LeaseLost(f"{self.lost}; stopped editing and shutting down, {self.after_loss}")

    async def _keep(self, stop: Callable[[], Awaitable[None]]) -> None:
        try:
            self.lost = await self._renew_until_lost()
        except Exception as exc:
            # Without renewals the lease lapses and another instance takes over: stop first.
            log.exception("renewing the store lease failed")
            self.lost = f"renewing the store lease failed ({type(exc).__name__})"
        self._held = False
        await stop()

    async def _renew_until_lost(self) -> str:
        renewed_at = self._clock()
        while True:
            # Short naps read against the wall clock, so a suspend is noticed within one nap.
            await asyncio.sleep(self._timing.clock_check)
            now = self._clock()
            if now - renewed_at < self._timing.renew_every:
                continue
            try:
                if await self._store.renew_lease(self.name, self.owner, self._timing.ttl):
                    renewed_at = now
                    continue
            except StoreError as exc:
                if now < renewed_at + self._timing.ttl:
                    log.warning("could not renew the store lease (%s); trying again", exc)
                    continue
                return f"could not renew the store lease before it lapsed ({exc})"
            return await self._taken_by()

    async def _taken_by(self) -> str:
        try:
            holder = await self._store.lease_holder(self.name)
        except StoreError:
            holder = None
        who = f"another instance ({holder.owner})" if holder else "another instance"
        return (
            f"lost {self.subject} to {who}: this instance's lease lapsed (was it paused or the"
            f" machine suspended for more than {self._timing.ttl:g} s?)"
        )

    async def release(self) -> None:
        """Lets go of the lease if this keeper still holds it, so a successor starts at once."""
        if not self._held:
            return
        self._held = False
        try:
            released = await self._store.release_lease(self.name, self.owner)
        except StoreError as exc:
            log.warning(
                "could not release the store lease (%s); another instance can take over"
                " once it lapses, within %g s",
                exc,
                self._timing.ttl,
            )
            return
        if released:
            log.info("released %s", self.subject)


async def describe_holder(store: LeaseStore) -> str:
    """Who works on the store now, in words, for the operator's self-test."""
    try:
        holder = await store.lease_holder(STORE_LEASE)
    except StoreError as exc:
        return f"could not read which instance holds it ({exc})"
    if holder is None:
        return "no running instance holds it"
    return f"held by {holder.owner} until {_clock_time(holder.expires_at)}"


class MemberCount(Protocol):
    async def lease_count(self, prefix: str) -> int: ...


async def describe_members(store: MemberCount) -> str:
    """How many processes run on a shared store now, in words, for the self-test."""
    try:
        members = await store.lease_count(MEMBER_PREFIX)
    except StoreError as exc:
        return f"could not read the cluster's members ({exc})"
    if members == 0:
        return "no process of the cluster runs now"
    return f"{members} process{'es' if members != 1 else ''} of the cluster running now"


def _clock_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
