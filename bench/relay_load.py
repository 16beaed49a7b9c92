"""Relay load: relay requests per poll interval for K watchers of one task and for N tasks."""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from bench.driver import BOTS, BotKind, Environment, environment
from bench.report import Row
from bench.workload import add_running_tasks

SCENARIO = "2 relay load"
BATCH_SIZE = 100  # the bot's default SUNO_BATCH_SIZE
TARGET_FACTOR = 1.05
INTERACTIONS_PER_SECOND = 400
# The last watch is first polled one interval after it was added; schedules merge in the next.
SETTLE_INTERVALS = 6


@dataclass(frozen=True)
class Case:
    label: str
    tasks: int
    watchers: int  # per task
    interval: float
    arrivals: float = 0.0  # new watches (of new tasks) per second during the window


@dataclass(frozen=True)
class Params:
    cases: tuple[Case, ...]
    window_intervals: int


FULL = Params(
    cases=(
        Case("K=1 watcher of 1 task", 1, 1, 0.5),
        Case("K=5 watchers of 1 task", 1, 5, 0.5),
        Case("K=50 watchers of 1 task", 1, 50, 0.5),
        Case("N=100 tasks", 100, 1, 0.5),
        Case("N=1 000 tasks", 1_000, 1, 1.0),
        Case("N=100 tasks, 2 new watches/s", 100, 1, 1.0, arrivals=2.0),
    ),
    window_intervals=10,
)
QUICK = Params(
    cases=(
        Case("K=1 watcher of 1 task", 1, 1, 0.25),
        Case("K=5 watchers of 1 task", 1, 5, 0.25),
        Case("N=100 tasks", 100, 1, 0.25),
        Case("N=100 tasks, 8 new watches/s", 100, 1, 0.25, arrivals=8.0),
    ),
    window_intervals=4,
)


def ideal_requests(tasks: int, *, batching: bool = True) -> int:
    """The fewest relay requests per interval that keep every task current."""
    return math.ceil(tasks / BATCH_SIZE) if batching else tasks


async def register_via_gateway(
    env: Environment, task_ids: list[str], watchers: int, *, rate: float = INTERACTIONS_PER_SECOND
) -> None:
    """Runs `/suno status` for every (task, watcher) through the fake gateway, at a steady pace."""
    pairs = [(task_id, watcher) for task_id in task_ids for watcher in range(watchers)]
    interactions = []
    started = time.monotonic()
    for number, (task_id, watcher) in enumerate(pairs):
        due = started + number / rate
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        interactions.append(
            await env.fake.interact(options={"task_id": task_id}, user_id=20_000 + watcher)
        )
    ids = [interaction.id for interaction in interactions]
    await env.fake.wait_for(lambda: all(iid in env.fake.callbacks for iid in ids), timeout=60)


def edits_so_far(env: Environment) -> int:
    return sum(
        count
        for (method, kind, status), count in env.fake.counts.items()
        if method == "PATCH" and status < 300
    )


async def measure_window(env: Environment, intervals: int) -> dict[str, float]:
    """Relay requests per interval and message edits over `intervals` poll intervals."""
    edits_before = edits_so_far(env)
    start = time.monotonic()
    # One interval more, so the span can end on a request (see StampedRelay.rate).
    await asyncio.sleep((intervals + 1.5) * env.interval)
    rate, counted = env.relay.rate(start, intervals, env.interval)
    edits = edits_so_far(env) - edits_before
    return {
        "relay_requests": float(counted),
        "relay_requests_per_interval": rate,
        "edits_per_interval": edits / (time.monotonic() - start) * env.interval,
    }


async def _case(kind: BotKind, case: Case, window: int) -> dict[str, Any]:
    async with environment(kind, "relay-load", interval=case.interval) as env:
        env.fake.keep_bodies = False
        task_ids = [f"load-{number:05d}" for number in range(case.tasks)]
        add_running_tasks(env.relay, task_ids)
        await register_via_gateway(env, task_ids, case.watchers)
        await asyncio.sleep(SETTLE_INTERVALS * case.interval)
        reads_before = sum(env.relay.fetch_count(task_id) for task_id in task_ids)
        started = time.monotonic()
        arriving: asyncio.Task[None] | None = None
        if case.arrivals:
            newcomers = [f"new-{number:05d}" for number in range(int(case.arrivals * 60))]
            add_running_tasks(env.relay, newcomers)
            arriving = asyncio.create_task(
                register_via_gateway(env, newcomers, 1, rate=case.arrivals)
            )
        counted = await measure_window(env, window)
        elapsed_intervals = (time.monotonic() - started) / case.interval
        reads = sum(env.relay.fetch_count(task_id) for task_id in task_ids) - reads_before
        if arriving is not None:
            arriving.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await arriving
        stats = await env.bot.call("stats")
    sizes = [size for at, size in env.relay.batch_sizes if at >= started]
    return {
        "bot": kind,
        "case": case.label,
        "tasks": case.tasks,
        "watchers_per_task": case.watchers,
        "interval_s": case.interval,
        "arrivals_per_s": case.arrivals,
        "window_intervals": window,
        **counted,
        # How often each of the first N tasks was read, per interval (ideal: 1).
        "reads_per_task_per_interval": reads / case.tasks / elapsed_intervals,
        "batch_sizes": dict(sorted(Counter(sizes).items())),
        "ideal": ideal_requests(case.tasks),
        "bot_stats": stats,
    }


async def run(quick: bool) -> tuple[list[Row], list[dict[str, Any]]]:
    params = QUICK if quick else FULL
    rows: list[Row] = []
    details: list[dict[str, Any]] = []
    for case in params.cases:
        results = {kind: await _case(kind, case, params.window_intervals) for kind in BOTS}
        details += [{"scenario": SCENARIO, **result} for result in results.values()]
        if case.arrivals:
            # Each arriving command reads its task once itself; polling needs one batch per
            # hundred tasks watched by the end of the window.
            final_tasks = case.tasks + case.arrivals * params.window_intervals * case.interval
            ideal_arrivals = ideal_requests(math.ceil(final_tasks)) + case.arrivals * case.interval
            rows.append(
                Row(
                    SCENARIO,
                    case.label,
                    "req/interval",
                    results["ours"]["relay_requests_per_interval"],
                    results["baseline"]["relay_requests_per_interval"],
                    note=f"extra case; ideal {ideal_arrivals:g} incl. the commands' own reads",
                )
            )
            rows.append(
                Row(
                    SCENARIO,
                    f"{case.label}: reads of each first-{case.tasks} task",
                    "reads/task/interval",
                    results["ours"]["reads_per_task_per_interval"],
                    results["baseline"]["reads_per_task_per_interval"],
                    note="extra case; ideal 1",
                )
            )
            continue
        ideal = ideal_requests(case.tasks)
        rows.append(
            Row(
                SCENARIO,
                case.label,
                "req/interval",
                results["ours"]["relay_requests_per_interval"],
                results["baseline"]["relay_requests_per_interval"],
                target=TARGET_FACTOR * ideal,
                note=f"ideal {ideal}, interval {case.interval:g} s",
            )
        )
    return rows, details
