"""Scale: ten thousand concurrent watches in one bot process: memory, loop lag, CPU, relay load."""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass
from typing import Any

from discord.http import handle_message_parameters

from bench.driver import BOTS, BotKind, Environment, environment
from bench.kit import seed_status_messages
from bench.relay_load import SCENARIO as RELAY_SCENARIO
from bench.relay_load import TARGET_FACTOR, edits_so_far, ideal_requests
from bench.report import Row
from bench.workload import add_ramping_tasks
from bot.app import NO_MENTIONS
from bot.render import render_task
from bot.suno.models import envelope_from, task_from_data
from tests.kit.fake_discord import JSONObject

SCENARIO = "4 scale"
RSS_TARGET_MB = 250.0
LAG_TARGET_MS = 50.0
CHUNK = 100


@dataclass(frozen=True)
class Params:
    watches: int
    interval: float
    warmup_cycles: int  # the first polls change every message; steady state after them
    window_cycles: int
    registration_budget: float  # seconds; a bot that takes longer is measured as it stands


FULL = Params(
    watches=10_000, interval=5.0, warmup_cycles=3, window_cycles=5, registration_budget=150.0
)
QUICK = Params(
    watches=1_000, interval=1.0, warmup_cycles=3, window_cycles=3, registration_budget=30.0
)


def first_message_body(initial: dict[str, Any]) -> JSONObject:
    """What the reply to `/suno status` carried for the task's first state."""
    rendered = render_task(task_from_data(envelope_from(initial).data), locale="en-US")
    with handle_message_parameters(
        embeds=[], view=rendered.view(), allowed_mentions=NO_MENTIONS
    ) as params:
        return dict(params.payload or {})


async def _register(
    env: Environment, initial: dict[str, Any], task_ids: list[str], budget: float
) -> tuple[int, float]:
    """Seeds the answered interactions and hands them to the bot, spread over one interval;
    stops handing them over once `budget` seconds have passed. Returns (registered, seconds)."""
    seeded = seed_status_messages(env.fake, task_ids, first_message_body(initial))
    started = time.monotonic()
    chunks = math.ceil(len(seeded) / CHUNK)
    registered = 0
    for number in range(chunks):
        if time.monotonic() - started > budget:
            break
        due = started + env.interval * number / chunks
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        chunk = seeded[number * CHUNK : (number + 1) * CHUNK]
        await env.add_watches(initial, chunk)
        registered += len(chunk)
    return registered, time.monotonic() - started


async def _case(kind: BotKind, params: Params) -> dict[str, Any]:
    async with environment(kind, "scale", interval=params.interval) as env:
        env.fake.keep_bodies = False
        task_ids = [f"scale-{number:05d}" for number in range(params.watches)]
        initial = add_ramping_tasks(env.relay, task_ids)
        registered, registration = await _register(
            env, initial, task_ids, params.registration_budget
        )
        await env.bot.call("probe_start")
        edits_before = edits_so_far(env)
        started = time.monotonic()
        await asyncio.sleep(params.warmup_cycles * params.interval)
        window_start = time.monotonic()
        await asyncio.sleep((params.window_cycles + 1.5) * params.interval)
        probe = await env.bot.call("probe_stop")
        edits = edits_so_far(env) - edits_before
        rate, counted = env.relay.rate(window_start, params.window_cycles, params.interval)
        elapsed = time.monotonic() - started
    cycles = probe["wall_s"] / params.interval
    return {
        "bot": kind,
        "watches": params.watches,
        "interval_s": params.interval,
        "registered": registered,
        "registration_s": registration,
        "cycles_measured": cycles,
        "peak_rss_mb": probe["peak_rss_kib"] / 1024,
        "rss_mb_at_end": probe["rss_kib"] / 1024,
        "loop_lag_ms": probe["lag_ms"],
        "cpu_s": probe["cpu_s"],
        "cpu_s_per_cycle": probe["cpu_s"] / cycles,
        "relay_requests_in_window": counted,
        "relay_requests_per_interval": rate,
        "edits": edits,
        "edits_per_cycle": edits / (elapsed / params.interval),
        "bot_stats": {key: probe.get(key) for key in ("tasks", "watches", "batch_mode")},
    }


async def run(quick: bool) -> tuple[list[Row], list[dict[str, Any]]]:
    params = QUICK if quick else FULL
    results = {kind: await _case(kind, params) for kind in BOTS}
    ours, base = results["ours"], results["baseline"]
    n = f"{params.watches:,}".replace(",", " ")
    ideal = ideal_requests(params.watches)
    short = ours["registered"] < params.watches
    # A bot that could not take all the watches in time is measured with what it took; its
    # figures are then not for the stated size, so they cannot meet the targets.
    caveat = f"ours: only {ours['registered']:,} watches after {ours['registration_s']:.0f} s"
    note = caveat.replace(",", " ") if short else ""
    rows = [
        Row(SCENARIO, f"time to register {n} watches (store + tracker)", "s",
            ours["registration_s"], base["registration_s"], note=note),
        Row(SCENARIO, f"{n} watches: peak RSS of the bot process", "MB",
            ours["peak_rss_mb"], base["peak_rss_mb"], target=RSS_TARGET_MB, note=note,
            incomplete=short),
        Row(SCENARIO, "event-loop lag p50", "ms",
            ours["loop_lag_ms"]["p50"], base["loop_lag_ms"]["p50"]),
        Row(SCENARIO, "event-loop lag p99", "ms",
            ours["loop_lag_ms"]["p99"], base["loop_lag_ms"]["p99"], target=LAG_TARGET_MS,
            note=note, incomplete=short),
        Row(SCENARIO, "event-loop lag max (longest stall)", "ms",
            ours["loop_lag_ms"]["max"], base["loop_lag_ms"]["max"]),
        Row(SCENARIO, f"CPU seconds per poll cycle ({params.interval:g} s)", "s",
            ours["cpu_s_per_cycle"], base["cpu_s_per_cycle"]),
        Row(SCENARIO, "message edits per poll cycle", "edits",
            ours["edits_per_cycle"], base["edits_per_cycle"]),
        Row(RELAY_SCENARIO, f"N={n} tasks (from the scale run)", "req/interval",
            ours["relay_requests_per_interval"], base["relay_requests_per_interval"],
            target=TARGET_FACTOR * ideal, incomplete=short,
            note=note or f"ideal {ideal}, interval {params.interval:g} s"),
    ]  # fmt: skip
    details = [{"scenario": SCENARIO, **result} for result in results.values()]
    return rows, details
