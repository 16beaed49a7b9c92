"""Discord load: message writes per status message against the states a viewer can tell apart."""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import dataclass
from typing import Any

from bench.driver import BOTS, BotKind, environment
from bench.relay_load import register_via_gateway
from bench.report import Row
from bench.workload import lifecycle, visible_states
from tests.kit.fake_discord import FakeMessage

SCENARIO = "3 discord load"


@dataclass(frozen=True)
class Params:
    messages: int
    interval: float


FULL = Params(messages=50, interval=0.2)
QUICK = Params(messages=10, interval=0.1)


def states_received(message: FakeMessage) -> int:
    """How many times what the message shows actually changed, counting its first state."""
    shown: list[str] = []
    for edit in message.edits:
        body = {key: edit.payload.get(key) for key in ("embeds", "components", "content")}
        state = json.dumps(body, sort_keys=True)
        if not shown or shown[-1] != state:
            shown.append(state)
    return len(shown)


async def _case(kind: BotKind, params: Params) -> dict[str, Any]:
    task_ids = [f"life-{number:03d}" for number in range(params.messages)]
    scripts = {task_id: lifecycle(task_id) for task_id in task_ids}
    expected = visible_states(scripts[task_ids[0]])
    async with environment(kind, "discord-load", interval=params.interval) as env:
        for task_id, script in scripts.items():
            env.relay.add_task(task_id, script)
        started = time.monotonic()
        await register_via_gateway(env, task_ids, 1)
        answers = len(scripts[task_ids[0]])
        await env.fake.wait_for(
            lambda: all(env.relay.step_index(task_id) >= answers for task_id in task_ids),
            timeout=answers * params.interval * 4 + 30,
        )
        # The last answer's edit lands after the read; give it a few intervals.
        await env.fake.wait_for(
            lambda: env.fake.requests[-1].time < time.monotonic() - 3 * params.interval,
            timeout=30,
        )
        elapsed = time.monotonic() - started
        messages = [
            message
            for interaction in env.fake.interactions.values()
            if (message := env.fake.message_for(interaction)) is not None
        ]
        writes = [len(message.edits) for message in messages]
        received = [states_received(message) for message in messages]
        rejected = len(env.fake.rejected)
    return {
        "bot": kind,
        "messages": len(messages),
        "relay_answers_per_task": answers,
        "visible_states": expected,
        "writes_per_message": statistics.mean(writes),
        "writes_max": max(writes),
        "states_received_min": min(received),
        "states_received_max": max(received),
        "missed_states": sum(max(0, expected - count) for count in received),
        "rejected": rejected,
        "elapsed_s": elapsed,
    }


async def run(quick: bool) -> tuple[list[Row], list[dict[str, Any]]]:
    params = QUICK if quick else FULL
    results = {kind: await _case(kind, params) for kind in BOTS}
    ours, base = results["ours"], results["baseline"]
    states = ours["visible_states"]
    rows = [
        Row(
            SCENARIO,
            f"writes per message (reply + edits), {ours['relay_answers_per_task']} polls",
            "writes",
            ours["writes_per_message"],
            base["writes_per_message"],
            note=f"{states} visible states",
        ),
        Row(
            SCENARIO,
            "writes ÷ distinct visible states",
            "ratio",
            ours["writes_per_message"] / states,
            base["writes_per_message"] / states,
            target=1.0,
            # Fewer writes than states is no saving: a state a viewer never saw.
            incomplete=ours["missed_states"] > 0,
            note=f"ours skipped {ours['missed_states']} states" if ours["missed_states"] else "",
        ),
        Row(
            SCENARIO,
            "visible states that never reached a message",
            "count",
            float(ours["missed_states"]),
            float(base["missed_states"]),
        ),
    ]
    details = [{"scenario": SCENARIO, **result} for result in results.values()]
    return rows, details
