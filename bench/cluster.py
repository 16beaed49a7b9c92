"""Cluster: 1, 2 and 4 bot processes on one PostgreSQL, one process killed, and the single
process on PostgreSQL against SQLite.

Every watch is registered at process `k % N` (two watchers per task, so the second watch of a
task mostly lands on a process that does not lead it and is handed over). The figures:
relay requests per interval for the whole cluster against ⌈tasks / batch⌉, edits against
the visible states, peak RSS and CPU per poll cycle per process; with 4 processes one is
SIGKILLed and the time until each of its tasks is polled again is measured, then every task
finishes and the watches left unfinished are counted (lost); with 2 processes, a new watch
on a task the other process leads is timed to its first edit, with the handover by
NOTIFY and by the per-sync scan alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

from bench.driver import RELAY_KEY, RESULTS_DIR, BotProcess, settings_for
from bench.kit import LeanFakeDiscord, SeededWatch, StampedRelay, seed_status_messages
from bench.relay_load import TARGET_FACTOR, ideal_requests
from bench.report import Row
from bench.scale import first_message_body
from bench.stats import summarize
from bench.workload import add_ramping_tasks, visible_states
from tests.kit.fake_discord import FakeMessage
from tests.kit.payloads import envelope, music_timeline
from tests.kit.postgres_server import PostgresServer, running_postgres

SCENARIO = "7 cluster"
CHUNK = 500


@dataclass(frozen=True)
class Params:
    tasks: int
    watchers: int  # per task
    interval: float
    settle_cycles: int
    window_cycles: int
    lease: float
    probes: int  # new watches handed over, per handover mode


FULL = Params(
    tasks=10_000, watchers=2, interval=5.0, settle_cycles=4, window_cycles=5, lease=15.0,
    probes=200,
)  # fmt: skip
QUICK = Params(
    tasks=300, watchers=2, interval=1.0, settle_cycles=4, window_cycles=3, lease=3.0, probes=20
)


class ClusterRelay(StampedRelay):
    """Also notes, for the task ids it is told to watch, when each was first polled."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.watched: set[str] = set()
        self.first_poll: dict[str, float] = {}

    def watch_polls(self, task_ids: Sequence[str]) -> None:
        self.watched = set(task_ids)
        self.first_poll = {}

    def batch_requested(self, task_ids: tuple[str, ...]) -> None:
        super().batch_requested(task_ids)
        now = time.monotonic()
        for task_id in self.watched.intersection(task_ids):
            self.first_poll.setdefault(task_id, now)


class FirstEdits(LeanFakeDiscord):
    """Notes when the messages it is told about were first edited."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.awaited: set[int] = set()
        self.first_edit: dict[int, float] = {}
        self.add_edit_listener(self._note)

    def _note(self, message: FakeMessage) -> None:
        if message.id in self.awaited:
            self.first_edit.setdefault(message.id, time.monotonic())

    def edits(self) -> int:
        return sum(
            n
            for (method, _, status), n in self.counts.items()
            if method == "PATCH" and status < 300
        )


@dataclass
class Cluster:
    fake: FirstEdits
    relay: ClusterRelay
    bots: list[BotProcess]
    instances: list[str] = field(default_factory=list)


@asynccontextmanager
async def cluster(
    label: str, processes: int, database_url: str, params: Params, *, handover: str = "notify"
) -> AsyncIterator[Cluster]:
    """The fakes here, `processes` bot processes (shards 0..N-1 of N) on `database_url`."""
    fake = FirstEdits()
    relay = ClusterRelay(api_key=RELAY_KEY, record=False)
    async with fake, relay:
        found = Cluster(fake, relay, [])
        try:
            for index in range(processes):
                bot = await BotProcess.spawn(RESULTS_DIR / "logs" / f"{label}-{index}.log")
                found.bots.append(bot)
                shards = (
                    {"SHARD_COUNT": processes, "SHARD_IDS": str(index)} if processes > 1 else {}
                )
                values = settings_for(
                    relay,
                    Path("unused.sqlite3"),
                    POLL_INTERVAL_SECONDS=params.interval,
                    DATABASE_URL=database_url,
                    CLUSTER_LEASE_SECONDS=params.lease,
                    **shards,
                )
                reply = await bot.call(
                    "start",
                    kind="ours",
                    api_base=fake.api_base,
                    gateway=fake.gateway_url,
                    settings=values,
                    handover=handover,
                )
                found.instances.append(str(reply["instance"]))
            yield found
        finally:
            for bot in found.bots:
                await bot.close()


@asynccontextmanager
async def fresh_database(server: PostgresServer) -> AsyncIterator[str]:
    """A new, empty database on `server`; dropped afterwards."""
    name = f"bench_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(server.url())
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield server.url(name)
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def until(condition: Callable[[], bool], seconds: float) -> None:
    """Waits until `condition()` holds or `seconds` passed, whichever comes first."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            while True:
                if condition():
                    return
                await asyncio.sleep(0.05)


async def scalar(url: str, sql: str) -> int:
    connection = await asyncpg.connect(url)
    try:
        return int(await connection.fetchval(sql))
    finally:
        await connection.close()


def spread(items: Sequence[SeededWatch], processes: int) -> list[list[SeededWatch]]:
    """Watch k goes to process k % N, as commands arrive over every shard."""
    return [list(items[index::processes]) for index in range(processes)]


async def register(found: Cluster, initial: dict[str, Any], watches: list[SeededWatch]) -> float:
    """Hands every watch to its process, all processes at once; the seconds it took."""
    started = time.monotonic()

    async def feed(bot: BotProcess, mine: list[SeededWatch]) -> None:
        for start in range(0, len(mine), CHUNK):
            chunk = mine[start : start + CHUNK]
            await bot.call(
                "watch",
                task=initial,
                watches=[{"interaction": w.interaction, "message_id": w.message_id} for w in chunk],
            )

    await asyncio.gather(
        *(
            feed(bot, mine)
            for bot, mine in zip(found.bots, spread(watches, len(found.bots)), strict=True)
        )
    )
    return time.monotonic() - started


def hold_at_first(relay: ClusterRelay, task_ids: list[str]) -> dict[str, Any]:
    """Scripts every id to stay at the ramp's first state; returns that answer (an envelope)."""
    first = music_timeline("template")[0]
    for task_id in task_ids:
        relay.add_task(task_id, {**first, "task_id": task_id})
    return envelope(first)


def expected_edits(watches: int) -> int:
    """Each watch shows the ramp's states once each: the first in the reply, the rest edits."""
    return watches * (visible_states(music_timeline("template")[:4]) - 1)


async def steady_figures(found: Cluster, params: Params) -> dict[str, Any]:
    """Relay requests per interval, CPU per cycle and peak RSS per process in steady state."""
    await asyncio.gather(*(bot.call("probe_start") for bot in found.bots))
    window_start = time.monotonic()
    await asyncio.sleep((params.window_cycles + 1.5) * params.interval)
    probes = await asyncio.gather(*(bot.call("probe_stop") for bot in found.bots))
    rate, _ = found.relay.rate(window_start, params.window_cycles, params.interval)
    cpu = [probe["cpu_s"] / (probe["wall_s"] / params.interval) for probe in probes]
    return {
        "relay_requests_per_interval": rate,
        "cpu_s_per_cycle": cpu,
        "peak_rss_mb": [probe["peak_rss_kib"] / 1024 for probe in probes],
        "tasks_led": [probe["tasks"] for probe in probes],
    }


async def handover_latency(
    found: Cluster, params: Params, initial: dict[str, Any]
) -> dict[str, float]:
    """New watches at process 1 on tasks process 0 leads: seconds to each first edit."""
    led = await found.bots[0].call("leases")
    chosen = list(led[: params.probes])
    seeded = seed_status_messages(
        found.fake, chosen, first_message_body(initial), user_id=1_181_000_000_900_000_000
    )
    found.fake.awaited = {w.message_id for w in seeded}
    registered: dict[int, float] = {}
    for watch in seeded:
        await found.bots[1].call(
            "watch",
            task=initial,
            watches=[{"interaction": watch.interaction, "message_id": watch.message_id}],
        )
        registered[watch.message_id] = time.monotonic()
    await until(
        lambda: len(found.fake.first_edit) >= len(seeded), params.interval * 4 + params.lease
    )
    return summarize(
        [found.fake.first_edit.get(mid, math.inf) - at for mid, at in registered.items()]
    )


async def kill_one(found: Cluster, url: str, params: Params, task_ids: list[str]) -> dict[str, Any]:
    """SIGKILLs the last process; how long until each of its tasks is polled again, and how
    many watches never reach their final state once every task has finished."""
    victim = found.bots[-1]
    led = list(await victim.call("leases"))
    found.relay.watch_polls(led)
    killed_at = time.monotonic()
    victim.kill()
    found.bots.remove(victim)
    await until(
        lambda: len(found.relay.first_poll) >= len(led), params.lease + 6 * params.interval + 30
    )
    repoll = [found.relay.first_poll.get(t, math.inf) - killed_at for t in led]
    finished = music_timeline("template")[-1]
    for task_id in task_ids:
        found.relay.add_task(task_id, {**finished, "task_id": task_id})
    active = "SELECT count(*) FROM watches WHERE outcome = 'active'"
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(8 * params.interval + 60):
            while True:
                if not await scalar(url, active):
                    break
                await asyncio.sleep(params.interval)
    lost = await scalar(url, "SELECT count(*) FROM watches WHERE outcome <> 'finished'")
    return {"tasks_of_killed": len(led), "repoll_s": summarize(repoll), "lost": lost}


async def _case(
    label: str,
    processes: int,
    url: str,
    params: Params,
    *,
    kill: bool = False,
    handover: str | None = None,
) -> dict[str, Any]:
    async with cluster(label, processes, url, params, handover=handover or "notify") as found:
        found.fake.keep_bodies = False
        task_ids = [f"cl-{n:05d}" for n in range(params.tasks)]
        # Every task stands still until every watch is registered and handed to its leader,
        # then ramps: each watch then has the same states to show, however long it took to
        # register (a late watch would otherwise not see the states before it came).
        initial = hold_at_first(found.relay, task_ids)
        watch_ids = [task_id for task_id in task_ids for _ in range(params.watchers)]
        seeded = seed_status_messages(found.fake, watch_ids, first_message_body(initial))
        registration = await register(found, initial, seeded)
        await asyncio.sleep(params.interval)
        add_ramping_tasks(found.relay, task_ids)
        await asyncio.sleep(params.settle_cycles * params.interval)
        result: dict[str, Any] = {
            "label": label,
            "processes": processes,
            "watches": len(seeded),
            "tasks": params.tasks,
            "registration_s": registration,
            **(await steady_figures(found, params)),
            "edits": found.fake.edits(),
            "expected_edits": expected_edits(len(seeded)),
        }
        if handover is not None:
            result["handover_s"] = await handover_latency(found, params, initial)
        if kill:
            result["kill"] = await kill_one(found, url, params, task_ids)
    return result


async def _sqlite_case(params: Params) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="suno-bench-") as scratch:
        url = f"sqlite:///{Path(scratch) / 'watches.sqlite3'}"
        return await _case("cluster-sqlite", 1, url, params)


def _rows(results: dict[str, dict[str, Any]], params: Params) -> list[Row]:
    ideal = ideal_requests(params.tasks)
    rows: list[Row] = []
    for key in ("pg1", "pg2", "pg4"):
        result = results[key]
        n = result["processes"]
        name = f"{n} process{'es' if n > 1 else ''}"
        rows += [
            Row(SCENARIO, f"{name}: time to register {result['watches']} watches", "s",
                result["registration_s"]),
            Row(SCENARIO, f"{name}: relay requests per interval, whole cluster", "req/interval",
                result["relay_requests_per_interval"], target=TARGET_FACTOR * ideal,
                note=f"ideal {ideal}; each process's last batch may be partial: ≤ ideal + {n - 1}"),
            Row(SCENARIO, f"{name}: edits / visible states", "ratio",
                result["edits"] / result["expected_edits"], note="1.00 = each state shown once"),
            Row(SCENARIO, f"{name}: peak RSS per process (largest)", "MB",
                max(result["peak_rss_mb"])),
            Row(SCENARIO, f"{name}: CPU per poll cycle per process (mean)", "s",
                sum(result["cpu_s_per_cycle"]) / n),
        ]  # fmt: skip
    kill = results["pg4"]["kill"]
    rows += [
        Row(SCENARIO, "4 processes, one SIGKILLed: its tasks polled again, p50", "s",
            kill["repoll_s"]["p50"],
            note=f"{kill['tasks_of_killed']} tasks, lease {params.lease:g} s"),
        Row(SCENARIO, "4 processes, one SIGKILLed: its tasks polled again, p99", "s",
            kill["repoll_s"]["p99"]),
        Row(SCENARIO, "4 processes, one SIGKILLed: watches lost", "watches", kill["lost"],
            target=0),
    ]  # fmt: skip
    for mode in ("notify", "scan"):
        latency = results[f"handover-{mode}"]["handover_s"]
        rows += [
            Row(SCENARIO, f"new watch on another process's task → first edit p50 ({mode})", "s",
                latency["p50"]),
            Row(SCENARIO, f"new watch on another process's task → first edit p99 ({mode})", "s",
                latency["p99"]),
        ]  # fmt: skip
    pg, sqlite = results["pg1"], results["sqlite"]
    rows += [
        Row(SCENARIO, "1 process: PostgreSQL / SQLite, time to register", "ratio",
            pg["registration_s"] / sqlite["registration_s"]),
        Row(SCENARIO, "1 process: PostgreSQL / SQLite, CPU per poll cycle", "ratio",
            pg["cpu_s_per_cycle"][0] / sqlite["cpu_s_per_cycle"][0]),
        Row(SCENARIO, "1 process: PostgreSQL / SQLite, peak RSS", "ratio",
            pg["peak_rss_mb"][0] / sqlite["peak_rss_mb"][0]),
    ]  # fmt: skip
    return rows


async def run(quick: bool) -> tuple[list[Row], list[dict[str, Any]]]:
    params = QUICK if quick else FULL
    results: dict[str, dict[str, Any]] = {"sqlite": await _sqlite_case(params)}
    with _postgres() as server:
        cases: list[tuple[str, int, dict[str, Any]]] = [
            ("pg1", 1, {}),
            ("pg2", 2, {}),
            ("pg4", 4, {"kill": True}),
            ("handover-notify", 2, {"handover": "notify"}),
            ("handover-scan", 2, {"handover": "scan"}),
        ]
        for key, processes, options in cases:
            async with fresh_database(server) as url:
                results[key] = await _case(f"cluster-{key}", processes, url, params, **options)
    details = [{"scenario": SCENARIO, "case": key, **value} for key, value in results.items()]
    return _rows(results, params), details


@contextlib.contextmanager
def _postgres() -> Iterator[PostgresServer]:
    with running_postgres() as server:
        yield server
