"""A task the relay answers unchanged is not parsed again: the same Task comes back."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from pydantic import SecretStr

from bot.suno.client import RelayClient
from bot.suno.models import TaskMemo, TaskStatus, task_from
from tests.kit.fake_relay import FakeRelay
from tests.kit.payloads import music_timeline

KEY = "memo-test-key"


@pytest.fixture
async def relay() -> AsyncIterator[FakeRelay]:
    async with FakeRelay(api_key=KEY) as fake:
        yield fake


@pytest.fixture
async def client(relay: FakeRelay) -> AsyncIterator[RelayClient]:
    async with aiohttp.ClientSession() as session:
        yield RelayClient(session, relay.base_url, SecretStr(KEY), timeout=2.0)


async def test_an_unchanged_batch_answer_gives_back_the_same_tasks(
    relay: FakeRelay, client: RelayClient
) -> None:
    running, done = music_timeline("task-a")[3:5]
    relay.add_task("task-a", [running, running, done])
    relay.add_task("task-b", music_timeline("task-b")[4])
    first = {task.task_id: task for task in await client.fetch_many(["task-a", "task-b"])}
    second = {task.task_id: task for task in await client.fetch_many(["task-a", "task-b"])}
    third = {task.task_id: task for task in await client.fetch_many(["task-a", "task-b"])}
    assert second["task-a"] is first["task-a"]
    assert second["task-b"] is first["task-b"]
    # A change is parsed: the new state, a new object.
    assert third["task-a"] is not first["task-a"]
    assert third["task-a"].status is TaskStatus.SUCCESS
    assert third["task-b"] is first["task-b"]


async def test_an_unchanged_single_answer_gives_back_the_same_task(
    relay: FakeRelay, client: RelayClient
) -> None:
    relay.add_task("task-c", music_timeline("task-c")[3])
    assert await client.fetch("task-c") is await client.fetch("task-c")


def test_the_memo_answers_as_parsing_would_for_any_object() -> None:
    memo = TaskMemo(capacity=2)
    payloads = [*music_timeline("task-d"), *music_timeline("task-e")]
    for payload in payloads * 3:
        assert memo.task(payload) == task_from(payload)


def test_objects_json_cannot_hold_exactly_are_parsed_every_time() -> None:
    payload = dict(music_timeline("task-f")[3], progress=10**30)
    memo = TaskMemo()
    first, second = memo.task(payload), memo.task(payload)
    assert first == second == task_from(payload)
    assert first is not second


def test_the_memo_keeps_one_task_per_id_and_forgets_ids_no_longer_polled() -> None:
    memo = TaskMemo()
    timeline = music_timeline("task-g")
    first = memo.task(timeline[2])
    memo.task(timeline[3])
    # Only the newest answer is remembered: an older one comes back parsed anew.
    assert memo.task(timeline[2]) is not first
    newest = memo.task(timeline[2])
    assert memo.task(timeline[2]) is newest
    memo.forget("task-g")
    assert memo.task(timeline[2]) is not newest


def test_past_its_capacity_the_memo_starts_over() -> None:
    memo = TaskMemo(capacity=3)
    payloads = [music_timeline(f"task-{number}")[3] for number in range(4)]
    first = memo.task(payloads[0])
    for payload in payloads[1:]:
        memo.task(payload)
    assert len(memo._newest) <= 3
    assert memo.task(payloads[0]) is not first


async def test_a_task_no_longer_polled_is_parsed_anew(
    relay: FakeRelay, client: RelayClient
) -> None:
    relay.add_task("task-h", music_timeline("task-h")[3])
    first = await client.fetch("task-h")
    client.forget("task-h")
    assert await client.fetch("task-h") is not first
