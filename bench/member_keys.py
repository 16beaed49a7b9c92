"""Member keys: 1 000 tasks over 50 members' keys; relay requests per interval against the
ideal of one batch per key (Σ ⌈tasks of the key / batch size⌉)."""

from __future__ import annotations

import asyncio
import math
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from pydantic import SecretStr

from bench.kit import StampedRelay
from bench.relay_load import TARGET_FACTOR
from bench.report import Row
from bot.app import StatusPresenter
from bot.keys import KeyedRelay, KeyOwner, KeyRing, MemberKeys, new_secret
from bot.suno.client import RelayClient
from bot.tracking.policy import PollPolicy
from bot.tracking.store import NewWatch, SqliteWatchStore
from bot.tracking.tracker import Tracker
from tests.kit.payloads import task_payload
from tests.kit.recording_editor import RecordingEditor

SCENARIO = "6 member keys"
TASKS = 1_000
KEYS = 50
BATCH_SIZE = 100
# A few members with many songs (more than one batch each), most with a handful.
HEAVY_KEYS = 5
HEAVY_TASKS = 110


@dataclass(frozen=True)
class Params:
    interval: float
    warmup_cycles: int
    window_cycles: int


FULL = Params(interval=2.0, warmup_cycles=2, window_cycles=10)
QUICK = Params(interval=1.0, warmup_cycles=2, window_cycles=4)


def tasks_per_key() -> list[int]:
    """How many of the 1 000 tasks each of the 50 keys made."""
    light = (TASKS - HEAVY_KEYS * HEAVY_TASKS) // (KEYS - HEAVY_KEYS)
    counts = [HEAVY_TASKS] * HEAVY_KEYS + [light] * (KEYS - HEAVY_KEYS)
    counts[-1] += TASKS - sum(counts)
    return counts


def ideal_requests(batch_size: int) -> int:
    """The fewest requests per interval: each key's tasks in as few batches as it takes."""
    return sum(math.ceil(count / batch_size) for count in tasks_per_key())


@dataclass(frozen=True)
class _Rig:
    relay: StampedRelay
    store: SqliteWatchStore
    keys: MemberKeys


@asynccontextmanager
async def _rig(directory: Path) -> AsyncIterator[_Rig]:
    relay = StampedRelay(record=False)
    async with relay:
        store = await SqliteWatchStore.open(directory / "bench.sqlite3")
        try:
            yield _Rig(relay, store, MemberKeys(store, KeyRing([SecretStr(new_secret())])))
        finally:
            await store.close()


async def _case(params: Params, batch_size: int) -> dict[str, Any]:
    """The real tracker, store and relay client polling 1 000 running tasks over 50 keys."""
    with tempfile.TemporaryDirectory() as directory:
        async with _rig(Path(directory)) as rig, aiohttp.ClientSession() as session:
            relay = rig.relay
            client = RelayClient(
                session, relay.base_url, SecretStr(relay.api_key or ""), timeout=30
            )
            tracker = Tracker(
                source=KeyedRelay(client, rig.keys),
                store=rig.store,
                editor=RecordingEditor(),
                presenter=StatusPresenter(3600),
                policy=PollPolicy(params.interval),
                batch_size=batch_size,
                token_margin=60,
                can_edit_channel=lambda watch: True,
            )
            await _watch_everything(rig, tracker)
            tracker.start()
            try:
                await asyncio.sleep(params.warmup_cycles * params.interval)
                window_start = time.monotonic()
                await asyncio.sleep((params.window_cycles + 1.5) * params.interval)
            finally:
                await tracker.close()
            rate, counted = relay.rate(window_start, params.window_cycles, params.interval)
    return {"batch_size": batch_size, "requests_per_interval": rate, "counted": counted}


async def _watch_everything(rig: _Rig, tracker: Tracker) -> None:
    """Every task watched once, with the key of the member who made it."""
    relay, keys, store = rig.relay, rig.keys, rig.store
    now = datetime.now(UTC)
    number = 0
    for member, count in enumerate(tasks_per_key()):
        key = f"sk-bench-member-{member:02d}-{'x' * 24}"
        relay.accept_key(key)
        stored = await keys.save(KeyOwner.USER, 10_000 + member, key)
        for _ in range(count):
            number += 1
            task_id = f"keys-{number:05d}"
            relay.add_task(task_id, task_payload(task_id, "IN_PROGRESS"), key=key)
            watch = await store.add(
                NewWatch(
                    task_id=task_id,
                    application_id=1,
                    guild_id=2,
                    channel_id=3,
                    requester_id=10_000 + member,
                    locale="en-US",
                    ephemeral=False,
                    interaction_id=number,
                    interaction_token=f"token-{number}",
                    token_expires_at=now + timedelta(minutes=15),
                    deadline_at=now + timedelta(hours=1),
                    key_id=stored.id,
                )
            )
            tracker.add(watch, task=None, poll_now=True)


async def run(quick: bool) -> tuple[list[Row], list[dict[str, Any]]]:
    params = QUICK if quick else FULL
    ours = await _case(params, BATCH_SIZE)
    # The naive way: every task polled by itself, with its key.
    base = await _case(params, 1)
    ideal = ideal_requests(BATCH_SIZE)
    rows = [
        Row(
            SCENARIO,
            f"{TASKS} tasks over {KEYS} keys: relay requests",
            "req/interval",
            ours["requests_per_interval"],
            base["requests_per_interval"],
            target=TARGET_FACTOR * ideal,
            note=f"ideal {ideal} (Σ⌈tasks of a key / {BATCH_SIZE}⌉), "
            f"interval {params.interval:g} s",
        )
    ]
    details = [{"scenario": SCENARIO, "ideal": ideal, **ours}, {"scenario": SCENARIO, **base}]
    return rows, details
