"""The fake relay's script semantics and the payload timelines that end-to-end tests rely on."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from bot.suno.models import ClipState, TaskStatus, task_from
from tests.kit.fake_relay import FakeRelay, RelayReply
from tests.kit.payloads import (
    ClipFamily,
    clip_ids_for,
    envelope,
    failure_timeline,
    lyrics_payload,
    music_timeline,
    task_payload,
)

KEY = "test-relay-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
FAMILIES: list[ClipFamily] = ["nested", "flat", "hybrid"]


@pytest.fixture
async def relay() -> AsyncIterator[FakeRelay]:
    async with FakeRelay(api_key=KEY) as fake:
        yield fake


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(headers=AUTH) as session:
        yield session


async def answer_of(response: aiohttp.ClientResponse) -> tuple[int, Any]:
    text = await response.text()
    try:
        return response.status, json.loads(text)
    except ValueError:
        return response.status, text


async def get(http: aiohttp.ClientSession, relay: FakeRelay, task_id: str) -> tuple[int, Any]:
    async with http.get(f"{relay.base_url}/suno/fetch/{task_id}") as response:
        return await answer_of(response)


async def post(http: aiohttp.ClientSession, relay: FakeRelay, ids: list[str]) -> tuple[int, Any]:
    async with http.post(f"{relay.base_url}/suno/fetch", json={"ids": ids}) as response:
        return await answer_of(response)


async def test_each_read_serves_the_next_step_and_the_last_repeats(
    relay: FakeRelay, http: aiohttp.ClientSession
) -> None:
    relay.add_task("t", [task_payload("t", "QUEUED"), task_payload("t", "SUCCESS")])

    answers = [await get(http, relay, "t") for _ in range(3)]

    assert [body["data"]["status"] for _, body in answers] == ["QUEUED", "SUCCESS", "SUCCESS"]
    assert answers[0] == (200, envelope(task_payload("t", "QUEUED")))
    assert relay.fetch_count("t") == 3
    assert relay.step_index("t") == 3


async def test_batch_inclusion_advances_a_task_like_a_single_fetch(
    relay: FakeRelay, http: aiohttp.ClientSession
) -> None:
    relay.add_task("a", music_timeline("a"))
    relay.add_task("b", music_timeline("b"))

    await post(http, relay, ["a", "nobody"])
    status, body = await post(http, relay, ["a", "b", "nobody"])
    _, single = await get(http, relay, "a")

    assert status == 200
    assert [(item["task_id"], item["status"]) for item in body["data"]] == [
        ("a", "SUBMITTED"),
        ("b", "NOT_START"),
    ]
    assert single["data"]["status"] == "QUEUED"
    assert relay.fetch_count("a") == 3
    assert relay.request_count("nobody") == 2
    assert relay.request_count() == 3


async def test_injected_failures_come_first_and_do_not_advance_tasks(
    relay: FakeRelay, http: aiohttp.ClientSession
) -> None:
    relay.add_task("t", music_timeline("t"))
    relay.fail_next(2, RelayReply(status=503, body={"error": "busy"}, headers={"Retry-After": "1"}))

    first = await get(http, relay, "t")
    second = await post(http, relay, ["t"])
    third = await get(http, relay, "t")

    assert first == (503, {"error": "busy"})
    assert second[0] == 503
    assert third[1]["data"]["status"] == "NOT_START"
    assert [request.status for request in relay.requests] == [503, 503, 200]


async def test_raw_step_is_sent_as_is_and_stands_in_batches_only_as_an_envelope(
    relay: FakeRelay, http: aiohttp.ClientSession
) -> None:
    relay.add_task("raw", [RelayReply(status=500, body="<html>oops</html>"), RelayReply()])
    relay.add_task("env", RelayReply(body=envelope(task_payload("env", "QUEUED"))))

    async with http.get(f"{relay.base_url}/suno/fetch/raw") as response:
        assert response.status == 500
        assert await response.text() == "<html>oops</html>"
    _, body = await post(http, relay, ["raw", "env"])

    assert [item["task_id"] for item in body["data"]] == ["env"]


async def test_unknown_ids_and_bad_keys_answer_like_real_relays(
    http: aiohttp.ClientSession,
) -> None:
    async with FakeRelay(api_key=KEY, not_found_style="one-hub") as relay:
        assert await get(http, relay, "nope") == (
            404,
            {"code": "task_not_exist", "message": "task_not_exist", "data": None},
        )
        async with (
            aiohttp.ClientSession() as anonymous,
            anonymous.get(f"{relay.base_url}/suno/fetch/nope") as response,
        ):
            assert response.status == 401
            body = await response.json()
        assert body == {"error": {"message": "invalid token", "type": "new_api_error"}}
        assert relay.fetch_count("nope") == 1


async def test_batch_switches_and_cap(relay: FakeRelay, http: aiohttp.ClientSession) -> None:
    for task_id in ("a", "b", "c"):
        relay.add_task(task_id, task_payload(task_id, "QUEUED"))

    relay.batch_cap = 2
    _, capped = await post(http, relay, ["c", "b", "a"])
    relay.batch_supported = False
    unsupported, _ = await post(http, relay, ["a"])

    assert [item["task_id"] for item in capped["data"]] == ["c", "b"]
    assert relay.fetch_count("a") == 0
    assert unsupported == 404


async def test_relay_wide_delay_holds_every_answer(
    relay: FakeRelay, http: aiohttp.ClientSession
) -> None:
    relay.add_task("t", task_payload("t", "QUEUED"))
    relay.delay = 0.15
    started = time.monotonic()

    await get(http, relay, "t")

    assert time.monotonic() - started >= 0.14
    assert relay.requests[0].at - started < 0.1


async def test_counters_scale_without_recording(http: aiohttp.ClientSession) -> None:
    async with FakeRelay(api_key=KEY, record=False) as relay:
        ids = [f"t-{n}" for n in range(2000)]
        for task_id in ids:
            relay.add_task(task_id, music_timeline(task_id))

        status, body = await post(http, relay, ids)

        assert status == 200
        assert len(body["data"]) == 2000
        assert relay.requests == []
        assert relay.request_count() == 1
        assert relay.request_count("t-1999") == 1
        assert relay.fetch_count("t-0") == 1


@pytest.mark.parametrize("family", FAMILIES)
def test_music_timeline_walks_every_status_to_complete_clips(family: ClipFamily) -> None:
    tasks = [task_from(step) for step in music_timeline("m-1", family)]

    assert [task.status for task in tasks] == [
        TaskStatus.NOT_START,
        TaskStatus.SUBMITTED,
        TaskStatus.QUEUED,
        TaskStatus.IN_PROGRESS,
        TaskStatus.SUCCESS,
    ]
    assert [task.progress for task in tasks] == [0.0, 0.0, 0.0, 0.0, 100.0]
    assert tasks[0].clips == ()
    assert [clip.state for clip in tasks[1].clips] == [ClipState.SUBMITTED] * 2
    streaming = tasks[3].clips[0]
    assert streaming.state is ClipState.STREAMING
    assert streaming.stream_url == f"https://audiopipe.suno.ai/?item_id={streaming.id}"
    assert streaming.audio_url is None
    done = tasks[4].clips
    assert [clip.id for clip in done] == clip_ids_for("m-1")
    assert all(clip.audio_url == f"https://cdn1.suno.ai/{clip.id}.mp3" for clip in done)
    assert all(clip.video_url == f"https://cdn1.suno.ai/{clip.id}.mp4" for clip in done)
    assert all(clip.duration and clip.title and clip.tags for clip in done)


@pytest.mark.parametrize("family", FAMILIES)
def test_failure_timeline_ends_in_failure_with_a_reason_and_errored_clips(
    family: ClipFamily,
) -> None:
    steps = failure_timeline("f-1", family, fail_reason="moderation", camel_case=True, millis=True)
    last = task_from(steps[-1])

    assert "failReason" in steps[-1]
    assert last.status is TaskStatus.FAILURE
    assert last.progress == 100.0
    assert last.fail_reason == "moderation"
    assert last.finished_at is not None and last.finished_at.year == 2024
    assert all(clip.state is ClipState.ERROR for clip in last.clips)
    assert all(clip.audio_url is None and clip.error_message for clip in last.clips)


def test_lyrics_payload_carries_an_object_not_a_list() -> None:
    task = task_from(lyrics_payload("l-1", action=""))

    assert task.lyrics is not None
    assert task.lyrics.text
    assert task.clips == ()
