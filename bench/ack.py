"""Acknowledge latency: a burst of interactions, from INTERACTION_CREATE to the callback request."""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass
from typing import Any

from bench.driver import BOTS, BotKind, environment
from bench.report import Row
from bench.stats import percentile
from bench.workload import add_running_tasks
from tests.kit.fake_discord import ACK_WINDOW_SECONDS, FakeInteraction

SCENARIO = "1 acknowledge"
RELAY_LATENCY = 0.200
ACK_MARGIN = 0.050  # the acknowledgement may trail the relay by this much at p99
HANG_TARGET = 2.5


@dataclass(frozen=True)
class Params:
    interactions: int
    spread: float  # seconds over which they arrive
    relay_timeout: float  # the relay client gives up after this long (production: 15 s)


FULL = Params(interactions=500, spread=1.0, relay_timeout=15.0)
QUICK = Params(interactions=100, spread=0.2, relay_timeout=4.0)


async def _burst(kind: BotKind, params: Params, *, hang: bool) -> dict[str, Any]:
    label = "ack-hang" if hang else "ack"
    async with environment(
        kind,
        label,
        interval=5.0,
        relay_delay=math.inf if hang else RELAY_LATENCY,
        SUNO_API_TIMEOUT_SECONDS=params.relay_timeout,
    ) as env:
        task_ids = [f"ack-{number:04d}" for number in range(params.interactions)]
        add_running_tasks(env.relay, task_ids)
        interactions: list[FakeInteraction] = []
        await env.bot.call("probe_start")
        started = time.monotonic()
        for number, task_id in enumerate(task_ids):
            due = started + params.spread * number / params.interactions
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            interactions.append(
                await env.fake.interact(options={"task_id": task_id}, user_id=10_000 + number)
            )
        arrival = time.monotonic() - started
        ids = [interaction.id for interaction in interactions]
        # A bot that waits for a hung relay calls back once the relay client gives up.
        await env.fake.wait_for(
            lambda: all(iid in env.fake.callbacks for iid in ids),
            timeout=params.relay_timeout + 10 if hang else 30,
        )
        probe = await env.bot.call("probe_stop")
        latencies = []
        rejected = 0
        for interaction in interactions:
            at, status = env.fake.callbacks[interaction.id]
            latencies.append((at - interaction.dispatched_at) * 1000)
            if status >= 300:
                rejected += 1
    return {
        "bot": kind,
        "hang": hang,
        "interactions": len(interactions),
        "arrival_s": arrival,
        "p50_ms": percentile(latencies, 0.50),
        "p99_ms": percentile(latencies, 0.99),
        "max_ms": max(latencies),
        "late": sum(1 for latency in latencies if latency > ACK_WINDOW_SECONDS * 1000),
        "rejected": rejected,
        "bot_cpu_s": probe["cpu_s"],
        "bot_wall_s": probe["wall_s"],
        "bot_loop_lag_ms": probe["lag_ms"],
    }


async def run(quick: bool) -> tuple[list[Row], list[dict[str, Any]]]:
    params = QUICK if quick else FULL
    details: list[dict[str, Any]] = []
    by: dict[tuple[BotKind, bool], dict[str, Any]] = {}
    for hang in (False, True):
        for kind in BOTS:
            result = await _burst(kind, params, hang=hang)
            by[(kind, hang)] = result
            details.append({"scenario": SCENARIO, **result})
    fast_ours, fast_base = by[("ours", False)], by[("baseline", False)]
    hang_ours, hang_base = by[("ours", True)], by[("baseline", True)]
    n = params.interactions
    relay_ms = RELAY_LATENCY * 1000
    rows = [
        Row(SCENARIO, f"p50, {n} in {params.spread:g} s, relay 200 ms", "ms",
            fast_ours["p50_ms"], fast_base["p50_ms"]),
        Row(SCENARIO, f"p99, {n} in {params.spread:g} s, relay 200 ms", "ms",
            fast_ours["p99_ms"], fast_base["p99_ms"], target=relay_ms + ACK_MARGIN * 1000),
        Row(SCENARIO, "p50, relay hangs", "ms", hang_ours["p50_ms"], hang_base["p50_ms"]),
        Row(SCENARIO, "p99, relay hangs", "ms", hang_ours["p99_ms"], hang_base["p99_ms"],
            target=HANG_TARGET * 1000),
        Row(SCENARIO, "interactions lost (callback after 3 s), relay hangs", "count",
            float(hang_ours["rejected"]), float(hang_base["rejected"])),
    ]  # fmt: skip
    return rows, details
