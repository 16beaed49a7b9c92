"""Hot path: relay body → Task → rendered message, in tasks per second on one core."""

from __future__ import annotations

import gc
import json
import time
from collections.abc import Callable
from typing import Any

import orjson
from discord.http import handle_message_parameters

from bot.app import NO_MENTIONS
from bot.render import RenderedMessage, render_task
from bot.suno.models import Task, TaskMemo, envelope_from, task_from_data
from tests.kit.payloads import envelope, music_timeline, task_payload

LOCALE = "en-US"
TIMEOUT_MINUTES = 30
COLD_BODIES = 2_000  # more distinct bodies than the renderer's caches hold


def typical_body(task_id: str = "2a145658-3342-4228-b779-b8323a2b77df") -> bytes:
    """A two-clip SUCCESS task as relays send it (nested clips, ~2.4 KB)."""
    return json.dumps(envelope(music_timeline(task_id)[-1])).encode()


def _hostile_clip(number: int) -> dict[str, Any]:
    return {
        "id": f"evil-{number}",
        "clip_id": f"evil-{number}",
        "status": "complete",
        "state": "succeeded",
        "title": "@everyone <@&123> [click](javascript:alert(1)) **\u202e" + "x" * 400,
        "audio_url": "javascript:alert(1)" if number else "https://cdn1.suno.ai/None.mp3",
        "video_url": "data:text/html,boom",
        "image_url": "https://cdn2.suno.ai/" + "a" * 3000 + ".jpeg",
        "image_large_url": "ftp://cdn2.suno.ai/x.jpeg",
        "model_name": "<@1234> " * 20,
        "mv": "chirp-v4",
        "tags": "@here " + "t" * 2000,
        "metadata": {
            "tags": "@here <#1> " + "t" * 2000,
            "prompt": "`" * 3000 + "**[x](https://a.example)** ||y|| " * 100,
            "duration": 1e300,
            "error_message": "<t:1:R> " * 100,
        },
    }


def hostile_body() -> bytes:
    """Two clips whose every relay string is markdown or mention bait, over Discord's limits,
    with unsafe URLs and absurd numbers (~25 KB)."""
    clips = [_hostile_clip(number) for number in range(2)]
    payload = task_payload(
        "hostile", "SUCCESS", clips=clips, fail_reason="@everyone " * 500, camel_case=True
    )
    return json.dumps(envelope(payload)).encode()


def extreme_body() -> bytes:
    """The end-to-end tests' stress body: 12 clips with 10 000-character fields (~345 KB)."""
    clips = [
        {
            "id": f"evil-{number}",
            "status": "complete",
            "title": "@everyone <@&123> [click](javascript:alert(1)) **" + "x" * 10_000,
            "audio_url": "javascript:alert(1)"
            if number % 2
            else f"https://cdn1.suno.ai/evil-{number}.mp3",
            "video_url": "data:text/html,boom",
            "image_url": "https://cdn2.suno.ai/" + "a" * 3000 + ".jpeg",
            "metadata": {
                "tags": "@here " + "t" * 10_000,
                "prompt": "`" * 5000,
                "duration": 1e300,
            },
        }
        for number in range(12)
    ]
    payload = task_payload("hostile", "SUCCESS", clips=clips, fail_reason="@everyone " * 500)
    return json.dumps(envelope(payload)).encode()


def parse_and_render(body: bytes) -> RenderedMessage:
    """What the bot does with a poll answer that changed: decode, normalize, render, fingerprint."""
    task = task_from_data(envelope_from(orjson.loads(body)).data)
    return render_task(task, locale=LOCALE, watch_timeout_minutes=TIMEOUT_MINUTES)


class Poller:
    """What the bot does with each poll answer of one task: decode it; an answer equal to the
    last gives back the same Task (the relay client's memo), whose message is already shown."""

    def __init__(self) -> None:
        self.memo = TaskMemo()
        self.shown: Task | None = None

    def __call__(self, body: bytes) -> Task:
        task = task_from_data(envelope_from(orjson.loads(body)).data, self.memo)
        if task is not self.shown:
            render_task(task, locale=LOCALE, watch_timeout_minutes=TIMEOUT_MINUTES)
            self.shown = task
        return task


def parse_render_and_build_edit(body: bytes) -> bytes:
    """What the naive bot does with every poll answer: the above plus the edit's JSON body."""
    rendered = render_task(task_from_data(envelope_from(json.loads(body)).data), locale=LOCALE)
    with handle_message_parameters(
        embeds=[], view=rendered.view(), allowed_mentions=NO_MENTIONS
    ) as params:
        return _edit_json(params.payload).encode()


def _edit_json(payload: Any) -> str:
    """The request body discord.py sends for the edit (its encoding when orjson is absent)."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=True)


def _throughput(work: Callable[[bytes], object], bodies: list[bytes], seconds: float) -> float:
    """Calls per CPU second, cycling through `bodies`, after a short warm-up."""
    for body in bodies[:50]:
        work(body)
    gc.collect()
    count = 0
    size = len(bodies)
    started = time.process_time()
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        for _ in range(20):
            work(bodies[count % size])
            count += 1
    return count / (time.process_time() - started)


def measure_hot_path(seconds: float) -> dict[str, dict[str, float]]:
    """Throughput of ours (parse + render) and of the naive per-poll work, per body kind."""
    cold = [typical_body(f"task-{number:05d}") for number in range(COLD_BODIES)]
    cases: dict[str, list[bytes]] = {
        "typical": [typical_body()],
        "typical_cold": cold,
        "hostile": [hostile_body()],
        "extreme": [extreme_body()],
    }
    results: dict[str, dict[str, float]] = {}
    for name, bodies in cases.items():
        results[name] = {
            "ours": _throughput(parse_and_render, bodies, seconds),
            "baseline": _throughput(parse_render_and_build_edit, bodies, seconds),
            "bytes": float(len(bodies[0])),
        }
    # The same task polled again and found as it was (most polls): one body, over and over.
    for name in ("typical", "hostile"):
        bodies = cases[name]
        results[f"{name}_unchanged"] = {
            "ours": _throughput(Poller(), bodies, seconds),
            "baseline": _throughput(parse_render_and_build_edit, bodies, seconds),
            "bytes": float(len(bodies[0])),
        }
    return results
