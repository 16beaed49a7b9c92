"""The relay scripts the scenarios play: tasks that keep running, and tasks that run to the end."""

from __future__ import annotations

from typing import Any

from bot.render import render_task
from bot.suno.models import task_from_data
from tests.kit.fake_relay import FakeRelay
from tests.kit.payloads import Payload, clip, clip_ids_for, envelope, music_timeline, task_payload

# A Suno song takes one to three minutes; at the default 5 s interval a two-minute task is
# polled ~24 times and shows five states. Repeats per state, in timeline order.
LIFECYCLE_REPEATS = (1, 2, 4, 16, 1)


def running_payload(task_id: str) -> Payload:
    """A two-clip task that is generating and stays so (both clips streaming)."""
    ids = clip_ids_for(task_id, 2)
    return task_payload(
        task_id, "IN_PROGRESS", clips=[clip("nested", clip_id, "streaming") for clip_id in ids]
    )


def lifecycle(task_id: str) -> list[Payload]:
    """A two-minute task polled every interval: 24 answers, five visible states."""
    steps: list[Payload] = []
    for payload, repeats in zip(music_timeline(task_id), LIFECYCLE_REPEATS, strict=True):
        steps += [payload] * repeats
    return steps


def visible_states(steps: list[Payload]) -> int:
    """How many different messages a viewer sees as the script is read once per poll."""
    shown: list[str] = []
    for step in steps:
        fingerprint = render_task(task_from_data(step), locale="en-US").fingerprint
        if not shown or shown[-1] != fingerprint:
            shown.append(fingerprint)
    return len(shown)


def add_running_tasks(relay: FakeRelay, task_ids: list[str]) -> dict[str, Any]:
    """Scripts every id as a running task; returns the answer the bot shows first (an envelope).

    Tasks share one clip list, so ten thousand of them cost the fake little memory.
    """
    template = running_payload("template")
    for task_id in task_ids:
        relay.add_task(task_id, {**template, "task_id": task_id})
    return envelope(template)


def add_ramping_tasks(relay: FakeRelay, task_ids: list[str]) -> dict[str, Any]:
    """Scripts every id to change what it shows on each of its first three polls and then
    keep generating: submitted → queued → generating (streaming) for good."""
    timeline = music_timeline("template")[:4]
    for task_id in task_ids:
        relay.add_task(task_id, [{**step, "task_id": task_id} for step in timeline[1:]])
    return envelope(timeline[0])
