"""RelayClient against a real HTTP relay on 127.0.0.1: requests it makes, errors it types."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from pydantic import SecretStr

from bot.suno.client import MAX_BODY_BYTES, RelayClient
from bot.suno.errors import (
    BatchUnsupported,
    InvalidTaskId,
    RelayError,
    RelayKeyRejected,
    RelayProtocolError,
    RelayUnavailable,
    TaskNotFound,
)
from bot.suno.models import ClipState, TaskStatus
from tests.kit.fake_relay import FakeRelay, RelayReply
from tests.kit.payloads import (
    clip_ids_for,
    envelope,
    failure_timeline,
    music_timeline,
    task_payload,
)

KEY = "sk-relay-test-7Hq2vN9xLp4Rz8Kd"
SEED_TASK = "2a145658-3342-4228-b779-b8323a2b77df"
FLAT_SEED_TASK = "ba46ad15-07ce-41a6-b68d-196321dc00d5"
FIXTURES = Path(__file__).parent / "fixtures" / "relay"


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def json_reply(status: int, body: Any, **headers: str) -> RelayReply:
    return RelayReply(status=status, body=body, headers=headers)


@pytest.fixture
async def relay() -> AsyncIterator[FakeRelay]:
    async with FakeRelay(api_key=KEY) as fake:
        yield fake


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as http:
        yield http


@pytest.fixture
def client(relay: FakeRelay, session: aiohttp.ClientSession) -> RelayClient:
    return RelayClient(session, relay.base_url, SecretStr(KEY), timeout=2.0)


# --- success ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fixture", "task_id", "clip_count", "first_audio"),
    [
        (
            "seed_new_api_nested_success.json",
            SEED_TASK,
            2,
            "https://cdn1.suno.ai/3435e194-50e7-4edc-9442-bffe072fccfc.mp3",
        ),
        (
            "seed_gpt_ge_nested_success.json",
            SEED_TASK,
            1,
            "https://cdn1.suno.ai/3435e194-50e7-4edc-9442-bffe072fccfc.mp3",
        ),
        (
            "seed_flat_success.json",
            FLAT_SEED_TASK,
            2,
            "https://cdn1.suno.ai/a06015d0-9e04-4f30-85db-401494940394.mp3",
        ),
    ],
)
async def test_fetch_reads_the_relay_docs_bodies_verbatim(
    relay: FakeRelay,
    client: RelayClient,
    fixture: str,
    task_id: str,
    clip_count: int,
    first_audio: str,
) -> None:
    relay.add_task(
        task_id, RelayReply(body=fixture_bytes(fixture), content_type="application/json")
    )

    task = await client.fetch(task_id)

    assert task.task_id == task_id
    assert task.status is TaskStatus.SUCCESS
    assert task.action == "MUSIC"
    assert len(task.clips) == clip_count
    assert task.clips[0].state is ClipState.COMPLETE
    assert task.clips[0].audio_url == first_audio
    assert task.finished_at is not None


async def test_fetch_sends_one_get_with_bearer_key_and_json_accept(
    relay: FakeRelay, client: RelayClient
) -> None:
    relay.add_task(SEED_TASK, music_timeline(SEED_TASK)[-1])

    await client.fetch(SEED_TASK)

    [seen] = relay.requests
    assert seen.method == "GET"
    assert seen.path == f"/suno/fetch/{SEED_TASK}"
    assert seen.query == ""
    assert seen.authorization == f"Bearer {KEY}"
    assert seen.headers.get("Accept") == "application/json"
    assert seen.status == 200


async def test_fetch_trims_the_id_before_it_reaches_the_url(
    relay: FakeRelay, client: RelayClient
) -> None:
    relay.add_task("task_01", task_payload("task_01", "QUEUED"))

    task = await client.fetch("  task_01\n")

    assert task.status is TaskStatus.QUEUED
    assert relay.requests[0].path == "/suno/fetch/task_01"


@pytest.mark.parametrize("base_suffix", ["", "/"])
async def test_fetch_keeps_the_base_url_path_prefix(
    session: aiohttp.ClientSession, base_suffix: str
) -> None:
    async with FakeRelay(api_key=KEY, prefix="/v1") as relay:
        relay.add_task("123456", task_payload("123456", "IN_PROGRESS"))
        client = RelayClient(session, relay.base_url + base_suffix, SecretStr(KEY), timeout=2.0)

        task = await client.fetch("123456")

        assert task.status is TaskStatus.IN_PROGRESS
        assert relay.requests[0].path == "/v1/suno/fetch/123456"


@pytest.mark.parametrize(
    "fixture", ["code_numeric_1.json", "code_numeric_200.json", "camel_case_success.json"]
)
async def test_fetch_accepts_every_success_envelope_relays_send(
    relay: FakeRelay, client: RelayClient, fixture: str
) -> None:
    body = json.loads(fixture_bytes(fixture))
    data = body.get("data", body)
    task_id = str(data.get("task_id") or data.get("taskId"))
    relay.add_task(task_id, RelayReply(body=body))

    task = await client.fetch(task_id)

    assert task.task_id == task_id


async def test_fetch_accepts_a_bare_task_without_envelope(
    relay: FakeRelay, client: RelayClient
) -> None:
    relay.add_task("bare", RelayReply(body=task_payload("bare", "SUBMITTED")))

    task = await client.fetch("bare")

    assert task.status is TaskStatus.SUBMITTED


async def test_fetch_follows_a_task_through_its_timeline(
    relay: FakeRelay, client: RelayClient
) -> None:
    relay.add_task("t-1", music_timeline("t-1", "flat"))

    statuses = [(await client.fetch("t-1")).status for _ in range(6)]

    assert statuses == [
        TaskStatus.NOT_START,
        TaskStatus.SUBMITTED,
        TaskStatus.QUEUED,
        TaskStatus.IN_PROGRESS,
        TaskStatus.SUCCESS,
        TaskStatus.SUCCESS,
    ]


async def test_fetch_of_an_empty_success_envelope_is_the_task_not_started_yet(
    relay: FakeRelay, client: RelayClient
) -> None:
    relay.add_task(SEED_TASK, RelayReply(body={"code": "success", "message": "", "data": None}))

    task = await client.fetch(f" {SEED_TASK} ")

    assert task.task_id == SEED_TASK
    assert task.status is TaskStatus.NOT_START
    assert not task.is_terminal
    assert task.clips == ()


# --- a relay that answers with another task -----------------------------------------------

OTHER_TASK = "7c0e5b8e-41d2-4f55-9a3c-2d9f1e6b8a14"


async def test_fetch_refuses_a_task_whose_id_is_not_the_one_asked_for(
    relay: FakeRelay, client: RelayClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="bot.suno.client")
    relay.add_task(SEED_TASK, music_timeline(OTHER_TASK)[-1])

    with pytest.raises(RelayProtocolError) as caught:
        await client.fetch(SEED_TASK)

    assert caught.value.transient
    assert caught.value.status == 200
    assert SEED_TASK in str(caught.value) and OTHER_TASK in str(caught.value)
    assert SEED_TASK in caplog.text and OTHER_TASK in caplog.text


@pytest.mark.parametrize(
    ("answered", "accepted"),
    [
        (SEED_TASK, True),
        (f"  {SEED_TASK}\n", True),
        (SEED_TASK.upper(), False),
        (SEED_TASK + "_1", False),
        (SEED_TASK[:-1], False),
    ],
)
async def test_fetch_compares_the_answered_id_exactly_after_trimming(
    relay: FakeRelay, client: RelayClient, answered: str, accepted: bool
) -> None:
    relay.add_task(SEED_TASK, task_payload(answered, "QUEUED"))

    if accepted:
        assert (await client.fetch(SEED_TASK)).task_id == SEED_TASK
    else:
        with pytest.raises(RelayProtocolError):
            await client.fetch(SEED_TASK)


async def test_fetch_of_a_numeric_id_accepts_the_id_sent_as_a_number(
    relay: FakeRelay, client: RelayClient
) -> None:
    relay.add_task("1234567", {**task_payload("x", "QUEUED"), "task_id": 1234567})

    assert (await client.fetch("1234567")).task_id == "1234567"


@pytest.mark.parametrize("absent", ["empty", "blank", "missing", "null"])
async def test_fetch_takes_an_answer_without_a_task_id_as_the_requested_task(
    relay: FakeRelay, client: RelayClient, absent: str
) -> None:
    payload = music_timeline(SEED_TASK)[-1]
    if absent == "missing":
        del payload["task_id"]
    else:
        payload["task_id"] = {"empty": "", "blank": "   ", "null": None}[absent]
    relay.add_task(SEED_TASK, RelayReply(body=envelope(payload)))

    task = await client.fetch(SEED_TASK)

    assert task.task_id == SEED_TASK
    assert task.status is TaskStatus.SUCCESS
    assert [clip.id for clip in task.clips] == clip_ids_for(SEED_TASK)


async def test_fetch_many_drops_a_task_nobody_asked_for_and_logs_both_ids(
    relay: FakeRelay, client: RelayClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="bot.suno.client")
    relay.add_task("a-1", task_payload("a-1", "QUEUED"))
    relay.add_task(SEED_TASK, music_timeline(OTHER_TASK)[-1])

    tasks = await client.fetch_many(["a-1", SEED_TASK])

    assert [task.task_id for task in tasks] == ["a-1"]
    assert SEED_TASK in caplog.text and OTHER_TASK in caplog.text


async def test_the_single_fetch_after_a_batch_refuses_the_other_task_too(
    relay: FakeRelay, client: RelayClient
) -> None:
    relay.add_task(SEED_TASK, music_timeline(OTHER_TASK)[-1])

    missing = await client.fetch_many([SEED_TASK])
    with pytest.raises(RelayProtocolError) as caught:
        await client.fetch(SEED_TASK)

    assert missing == []
    assert caught.value.transient
    assert relay.fetch_count(SEED_TASK) == 2


async def test_fetch_many_leaves_out_a_task_without_an_id_which_a_fetch_then_reads(
    relay: FakeRelay, client: RelayClient
) -> None:
    relay.add_task(SEED_TASK, task_payload("", "IN_PROGRESS"))

    assert await client.fetch_many([SEED_TASK]) == []
    assert (await client.fetch(SEED_TASK)).task_id == SEED_TASK


async def test_a_foreign_task_id_that_echoes_the_key_stays_out_of_errors_and_logs(
    relay: FakeRelay, client: RelayClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    relay.add_task(SEED_TASK, task_payload(f"leak-{KEY}", "SUCCESS"))

    with pytest.raises(RelayProtocolError) as caught:
        await client.fetch(SEED_TASK)
    assert await client.fetch_many([SEED_TASK]) == []

    assert KEY not in str(caught.value)
    assert KEY not in caplog.text
    assert "leak-***" in caplog.text


# --- not found ----------------------------------------------------------------------------


@pytest.mark.parametrize(("style", "status"), [("new-api", 400), ("one-hub", 404)])
async def test_unknown_task_is_task_not_found_in_both_relay_styles(
    session: aiohttp.ClientSession, style: Any, status: int
) -> None:
    async with FakeRelay(api_key=KEY, not_found_style=style) as relay:
        client = RelayClient(session, relay.base_url, SecretStr(KEY), timeout=2.0)

        with pytest.raises(TaskNotFound) as caught:
            await client.fetch("no-such-task")

        assert caught.value.status == status
        assert relay.requests[0].status == status


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (200, {"code": "task_not_exist", "message": "task_not_exist", "data": None}),
        (400, {"code": "fail", "message": "task not exist", "data": None}),
        (404, {"code": "error", "message": "Task Not Exist"}),
        (400, {"error": {"message": "task_not_exist", "type": "new_api_error"}}),
    ],
)
async def test_not_found_is_recognised_by_code_or_message(
    relay: FakeRelay, client: RelayClient, status: int, body: dict[str, Any]
) -> None:
    relay.add_task("gone", json_reply(status, body))

    with pytest.raises(TaskNotFound):
        await client.fetch("gone")


async def test_404_without_task_not_exist_is_a_protocol_error_not_not_found(
    relay: FakeRelay, client: RelayClient
) -> None:
    relay.fail_next(1, RelayReply(status=404, body="404 page not found"))

    with pytest.raises(RelayProtocolError) as caught:
        await client.fetch(SEED_TASK)

    assert caught.value.status == 404
    assert "404 page not found" in str(caught.value)


async def test_relay_without_the_route_is_a_protocol_error(
    session: aiohttp.ClientSession,
) -> None:
    async with FakeRelay(api_key=KEY, prefix="/v1") as relay:
        client = RelayClient(session, relay.base_url.removesuffix("/v1"), SecretStr(KEY), timeout=2)

        with pytest.raises(RelayProtocolError):
            await client.fetch(SEED_TASK)


# --- key rejected ----------------------------------------------------------------------------


async def test_wrong_key_is_key_rejected_and_the_relay_saw_that_key(
    relay: FakeRelay, session: aiohttp.ClientSession
) -> None:
    client = RelayClient(session, relay.base_url, SecretStr("sk-wrong"), timeout=2.0)
    relay.add_task(SEED_TASK, music_timeline(SEED_TASK))

    with pytest.raises(RelayKeyRejected) as caught:
        await client.fetch(SEED_TASK)

    assert caught.value.status == 401
    assert relay.requests[0].authorization == "Bearer sk-wrong"
    assert relay.step_index(SEED_TASK) == 0


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (401, json.loads(fixture_bytes("error_openai_unauthorized.json"))),
        (401, {"code": "unauthorized", "message": "invalid api key", "data": None}),
        (403, {"error": {"message": "user quota is not enough", "type": "new_api_error"}}),
        (403, {"code": "forbidden", "message": "token has been disabled"}),
        (403, "<html><body>Forbidden</body></html>"),
    ],
)
async def test_401_and_403_are_key_rejected_in_every_body_style(
    relay: FakeRelay, client: RelayClient, status: int, body: Any
) -> None:
    relay.fail_next(1, RelayReply(status=status, body=body))

    with pytest.raises(RelayKeyRejected) as caught:
        await client.fetch(SEED_TASK)

    assert caught.value.status == status


# --- unavailable ----------------------------------------------------------------------------


async def test_429_with_retry_after_seconds_is_unavailable_with_the_delay(
    relay: FakeRelay, client: RelayClient
) -> None:
    relay.fail_next(
        1, json_reply(429, {"error": {"message": "rate limited"}}, **{"Retry-After": "7"})
    )

    with pytest.raises(RelayUnavailable) as caught:
        await client.fetch(SEED_TASK)

    assert caught.value.status == 429
    assert caught.value.retry_after == 7.0
    assert caught.value.transient


async def test_retry_after_as_http_date_becomes_seconds_from_now(
    relay: FakeRelay, client: RelayClient
) -> None:
    when = datetime.now(UTC) + timedelta(seconds=30)
    relay.fail_next(
        1,
        RelayReply(
            status=503,
            body="<html><body>503 Service Unavailable</body></html>",
            content_type="text/html",
            headers={"Retry-After": format_datetime(when, usegmt=True)},
        ),
    )

    with pytest.raises(RelayUnavailable) as caught:
        await client.fetch(SEED_TASK)

    assert caught.value.status == 503
    assert caught.value.retry_after is not None
    assert 25 <= caught.value.retry_after <= 31


async def test_retry_after_in_the_past_or_garbled_is_harmless(
    relay: FakeRelay, client: RelayClient
) -> None:
    relay.fail_next(1, json_reply(429, {}, **{"Retry-After": "Mon, 01 Jan 2001 00:00:00 GMT"}))
    relay.fail_next(1, json_reply(429, {}, **{"Retry-After": "soon"}))

    with pytest.raises(RelayUnavailable) as past:
        await client.fetch(SEED_TASK)
    with pytest.raises(RelayUnavailable) as garbled:
        await client.fetch(SEED_TASK)

    assert past.value.retry_after == 0.0
    assert garbled.value.retry_after is None


@pytest.mark.parametrize(
    ("status", "body", "content_type"),
    [
        (500, {"error": {"message": "internal error"}}, None),
        (502, "<html><head><title>502 Bad Gateway</title></head></html>", "text/html"),
        (503, {"code": "fail", "message": "upstream overloaded", "data": None}, None),
        (504, "", "text/plain"),
        (408, "", "text/plain"),
    ],
)
async def test_server_errors_are_unavailable(
    relay: FakeRelay, client: RelayClient, status: int, body: Any, content_type: str | None
) -> None:
    relay.fail_next(1, RelayReply(status=status, body=body, content_type=content_type))

    with pytest.raises(RelayUnavailable) as caught:
        await client.fetch(SEED_TASK)

    assert caught.value.status == status
    assert caught.value.retry_after is None


@pytest.mark.parametrize(
    "body",
    [
        '{"code": "success", "message": "", "data": {"task_id": "x", ',
        "<!DOCTYPE html><html><body>Just a moment...</body></html>",
        "",
        "[" * 100_000,
    ],
)
async def test_200_whose_body_is_not_json_is_unavailable(
    relay: FakeRelay, client: RelayClient, body: str
) -> None:
    relay.add_task(SEED_TASK, RelayReply(status=200, body=body, content_type="application/json"))

    with pytest.raises(RelayUnavailable) as caught:
        await client.fetch(SEED_TASK)

    assert caught.value.status == 200


async def test_html_answer_says_html_in_the_log_detail(
    relay: FakeRelay, client: RelayClient
) -> None:
    relay.fail_next(1, RelayReply(status=502, body="<html>Bad Gateway</html>"))
    relay.add_task(SEED_TASK, RelayReply(body="<html>maintenance</html>", content_type="text/html"))

    with pytest.raises(RelayUnavailable) as bad_gateway:
        await client.fetch(SEED_TASK)
    with pytest.raises(RelayUnavailable) as maintenance:
        await client.fetch(SEED_TASK)

    assert "HTTP 502" in str(bad_gateway.value)
    assert "HTML" in str(maintenance.value)


async def test_slow_relay_past_the_timeout_is_unavailable(
    relay: FakeRelay, session: aiohttp.ClientSession
) -> None:
    relay.delay = 5.0
    client = RelayClient(session, relay.base_url, SecretStr(KEY), timeout=0.2)
    started = time.monotonic()

    with pytest.raises(RelayUnavailable) as caught:
        await client.fetch(SEED_TASK)

    assert time.monotonic() - started < 2.0
    assert caught.value.status is None
    assert relay.request_count() == 1


async def test_hanging_relay_times_out_and_still_closes_promptly(
    session: aiohttp.ClientSession,
) -> None:
    relay = FakeRelay(api_key=KEY, delay=float("inf"))
    await relay.start()
    client = RelayClient(session, relay.base_url, SecretStr(KEY), timeout=0.2)

    with pytest.raises(RelayUnavailable):
        await client.fetch(SEED_TASK)
    started = time.monotonic()
    await asyncio.wait_for(relay.close(), timeout=5)

    assert time.monotonic() - started < 3.0


async def test_connection_refused_is_unavailable(session: aiohttp.ClientSession) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = RelayClient(session, f"http://127.0.0.1:{port}", SecretStr(KEY), timeout=2.0)

    with pytest.raises(RelayUnavailable) as caught:
        await client.fetch(SEED_TASK)

    assert caught.value.status is None


# --- protocol errors ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"code": "success", "message": "", "data": "queued"},
        {"code": "success", "message": "", "data": [task_payload(SEED_TASK, "SUCCESS")]},
        json.loads(fixture_bytes("error_fail.json")),
        {"hello": "world"},
        [],
        "just a string",
        None,
    ],
)
async def test_200_whose_body_is_not_a_task_is_a_protocol_error(
    relay: FakeRelay, client: RelayClient, body: Any
) -> None:
    relay.add_task(
        SEED_TASK, RelayReply(body=json.dumps(body).encode(), content_type="application/json")
    )

    with pytest.raises(RelayProtocolError) as caught:
        await client.fetch(SEED_TASK)

    assert caught.value.status == 200


@pytest.mark.parametrize("status", [400, 402, 405, 409, 422])
async def test_other_client_errors_are_protocol_errors(
    relay: FakeRelay, client: RelayClient, status: int
) -> None:
    relay.fail_next(1, json_reply(status, {"code": "bad_request", "message": "nope"}))

    with pytest.raises(RelayProtocolError) as caught:
        await client.fetch(SEED_TASK)

    assert caught.value.status == status


async def test_redirects_are_not_followed(relay: FakeRelay, client: RelayClient) -> None:
    relay.add_task("elsewhere", music_timeline("elsewhere"))
    relay.fail_next(
        1,
        RelayReply(status=302, body="", headers={"Location": f"{relay.base_url}/suno/fetch/x"}),
    )

    with pytest.raises(RelayProtocolError) as caught:
        await client.fetch(SEED_TASK)

    assert caught.value.status == 302
    assert relay.request_count() == 1


async def test_oversized_body_is_refused(relay: FakeRelay, client: RelayClient) -> None:
    huge = b'{"code":"success","data":"' + b"x" * (MAX_BODY_BYTES + 1) + b'"}'
    relay.add_task(SEED_TASK, RelayReply(body=huge, content_type="application/json"))

    with pytest.raises(RelayProtocolError) as caught:
        await client.fetch(SEED_TASK)

    assert "too large" in str(caught.value)


async def test_oversized_chunked_body_without_length_is_cut_off(
    session: aiohttp.ClientSession,
) -> None:
    async def endless(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        chunk = b" " * 65536
        for _ in range(MAX_BODY_BYTES // len(chunk) + 4):
            await response.write(chunk)
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_get("/suno/fetch/{task_id}", endless)
    async with TestServer(app, host="127.0.0.1") as server:
        base = str(server.make_url("")).rstrip("/")
        client = RelayClient(session, base, SecretStr(KEY), timeout=5.0)

        with pytest.raises(RelayProtocolError) as caught:
            await client.fetch(SEED_TASK)

    assert "larger than" in str(caught.value)


# --- ids never steer the request ----------------------------------------------------------------


@pytest.mark.parametrize(
    "bad_id",
    [
        "../x",
        "a/b",
        "a b",
        "%2e%2e",
        "",
        "   ",
        "x" * 300,
        "task?x=1",
        "task#frag",
        "..",
        "tâche",
        "a\\b",
        "id\n/admin",
    ],
)
async def test_invalid_ids_are_rejected_before_any_request(
    relay: FakeRelay, client: RelayClient, bad_id: str
) -> None:
    with pytest.raises(InvalidTaskId):
        await client.fetch(bad_id)
    with pytest.raises(InvalidTaskId):
        await client.fetch_many([SEED_TASK, bad_id])

    assert relay.request_count() == 0


async def test_longest_valid_id_is_one_path_segment(relay: FakeRelay, client: RelayClient) -> None:
    task_id = "A-_9" * 32
    relay.add_task(task_id, task_payload(task_id, "QUEUED"))

    task = await client.fetch(task_id)

    assert task.task_id == task_id
    assert relay.requests[0].path == f"/suno/fetch/{task_id}"


# --- secrets ----------------------------------------------------------------------------


async def test_the_key_never_appears_in_errors_or_logs(
    relay: FakeRelay,
    session: aiohttp.ClientSession,
    client: RelayClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    echo = f"Authorization: Bearer {KEY} was refused; key {KEY}"
    replies = [
        RelayReply(status=401, body={"error": {"message": echo, "type": "new_api_error"}}),
        RelayReply(status=403, body=echo),
        RelayReply(status=500, body="x" * 190 + KEY),
        RelayReply(status=502, body=f"<html>{echo}</html>"),
        RelayReply(status=429, body={"message": echo}),
        RelayReply(status=400, body={"code": "task_not_exist", "message": echo}),
        RelayReply(status=418, body=echo),
        RelayReply(status=200, body={"code": "fail", "message": echo}),
        RelayReply(status=200, body=echo),
        RelayReply(status=302, body=echo, headers={"Location": f"http://x/?k={KEY}"}),
    ]
    errors: list[RelayError] = []
    for reply in replies:
        relay.fail_next(1, reply)
        with pytest.raises(RelayError) as caught:
            await client.fetch(SEED_TASK)
        errors.append(caught.value)
    relay.fail_next(1, RelayReply(status=405, body=echo))
    with pytest.raises(BatchUnsupported) as batch:
        await client.fetch_many([SEED_TASK])
    errors.append(batch.value)
    hanging = RelayClient(session, relay.base_url, SecretStr(KEY), timeout=0.2)
    relay.delay = 5
    with pytest.raises(RelayUnavailable) as slow:
        await hanging.fetch(SEED_TASK)
    errors.append(slow.value)

    for error in errors:
        assert KEY not in str(error)
        assert KEY not in repr(error)
        assert KEY not in error.detail
    assert KEY not in caplog.text
    assert f"GET /suno/fetch/{SEED_TASK}" in caplog.text


async def test_error_detail_is_short(relay: FakeRelay, client: RelayClient) -> None:
    relay.fail_next(1, RelayReply(status=500, body="e" * 10_000))

    with pytest.raises(RelayUnavailable) as caught:
        await client.fetch(SEED_TASK)

    assert len(str(caught.value)) < 300


# --- batch ----------------------------------------------------------------------------


async def test_fetch_many_posts_the_ids_and_returns_known_tasks(
    relay: FakeRelay, client: RelayClient
) -> None:
    relay.add_task("a-1", music_timeline("a-1"))
    relay.add_task("b-2", failure_timeline("b-2", "hybrid")[-1])

    tasks = await client.fetch_many(["a-1", "unknown-3", "b-2"])

    assert {task.task_id: task.status for task in tasks} == {
        "a-1": TaskStatus.NOT_START,
        "b-2": TaskStatus.FAILURE,
    }
    [seen] = relay.requests
    assert seen.method == "POST"
    assert seen.path == "/suno/fetch"
    assert seen.task_ids == ("a-1", "unknown-3", "b-2")
    assert seen.authorization == f"Bearer {KEY}"
    assert relay.fetch_count("a-1") == 1


async def test_fetch_many_sends_each_trimmed_id_once(relay: FakeRelay, client: RelayClient) -> None:
    relay.add_task("a-1", music_timeline("a-1"))

    tasks = await client.fetch_many(["a-1", " a-1 ", "a-1"])

    assert [task.task_id for task in tasks] == ["a-1"]
    assert relay.requests[0].task_ids == ("a-1",)


async def test_fetch_many_with_no_ids_makes_no_request(
    relay: FakeRelay, client: RelayClient
) -> None:
    assert await client.fetch_many([]) == []
    assert relay.request_count() == 0


async def test_fetch_many_when_no_id_is_known_is_empty(
    relay: FakeRelay, client: RelayClient
) -> None:
    assert await client.fetch_many(["x-1", "x-2"]) == []


@pytest.mark.parametrize("status", [400, 404])
async def test_fetch_many_treats_a_batch_not_found_answer_as_no_tasks(
    relay: FakeRelay, client: RelayClient, status: int
) -> None:
    relay.fail_next(1, json_reply(status, {"code": "task_not_exist", "message": "task_not_exist"}))

    assert await client.fetch_many(["x-1"]) == []


async def test_fetch_many_leaves_out_tasks_nobody_asked_for(
    relay: FakeRelay, client: RelayClient
) -> None:
    body = envelope([task_payload("a-1", "QUEUED"), task_payload("intruder", "SUCCESS")])
    relay.fail_next(1, RelayReply(body=body))

    tasks = await client.fetch_many(["a-1"])

    assert [task.task_id for task in tasks] == ["a-1"]


async def test_fetch_many_of_an_empty_success_envelope_is_no_tasks(
    relay: FakeRelay, client: RelayClient
) -> None:
    relay.fail_next(1, RelayReply(body={"code": "success", "message": "", "data": None}))

    assert await client.fetch_many(["a-1", "b-2"]) == []


async def test_fetch_many_reads_a_batch_answer_labelled_text_plain(
    session: aiohttp.ClientSession,
) -> None:
    async with FakeRelay(api_key=KEY, batch_content_type="text/plain; charset=utf-8") as relay:
        relay.add_task("a-1", task_payload("a-1", "QUEUED"))
        relay.add_task("b-2", music_timeline("b-2")[-1])
        client = RelayClient(session, relay.base_url, SecretStr(KEY), timeout=2.0)

        tasks = await client.fetch_many(["a-1", "b-2"])

        assert {task.task_id: task.status for task in tasks} == {
            "a-1": TaskStatus.QUEUED,
            "b-2": TaskStatus.SUCCESS,
        }


@pytest.mark.parametrize("fixture", ["batch_envelope.json", "batch_bare_list.json"])
async def test_fetch_many_reads_enveloped_and_bare_lists(
    relay: FakeRelay, client: RelayClient, fixture: str
) -> None:
    body = json.loads(fixture_bytes(fixture))
    items = body if isinstance(body, list) else body["data"]
    ids = [str(item.get("task_id") or item.get("taskId")) for item in items]
    relay.fail_next(1, RelayReply(body=body))

    tasks = await client.fetch_many(ids)

    assert sorted(task.task_id for task in tasks) == sorted(ids)


@pytest.mark.parametrize("status", [404, 405])
async def test_fetch_many_on_a_relay_without_batch_is_batch_unsupported(
    session: aiohttp.ClientSession, status: int
) -> None:
    async with FakeRelay(
        api_key=KEY, batch_supported=False, batch_unsupported_status=status
    ) as relay:
        client = RelayClient(session, relay.base_url, SecretStr(KEY), timeout=2.0)

        with pytest.raises(BatchUnsupported) as caught:
            await client.fetch_many(["a-1"])

        assert caught.value.status == status


@pytest.mark.parametrize(
    "reply",
    [
        RelayReply(body=envelope(task_payload("a-1", "SUCCESS"))),
        RelayReply(body={"message": "", "data": None}),
        RelayReply(body={"code": "fail", "message": "unsupported", "data": None}),
        RelayReply(
            body="<!doctype html><html><div id=root></div></html>", content_type="text/html"
        ),
        RelayReply(body={"hello": "world"}),
    ],
)
async def test_fetch_many_whose_answer_is_not_a_task_list_is_batch_unsupported(
    relay: FakeRelay, client: RelayClient, reply: RelayReply
) -> None:
    relay.fail_next(1, reply)

    with pytest.raises(BatchUnsupported):
        await client.fetch_many(["a-1"])


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (RelayReply(status=401, body={"error": {"message": "invalid token"}}), RelayKeyRejected),
        (RelayReply(status=500, body="oops"), RelayUnavailable),
        (RelayReply(status=429, body={}, headers={"Retry-After": "3"}), RelayUnavailable),
        (RelayReply(status=400, body={"code": "invalid_request"}), RelayProtocolError),
    ],
)
async def test_fetch_many_maps_other_failures_like_fetch(
    relay: FakeRelay, client: RelayClient, reply: RelayReply, error: type[RelayError]
) -> None:
    relay.fail_next(1, reply)

    with pytest.raises(error):
        await client.fetch_many(["a-1"])


async def test_fetch_many_timeout_is_unavailable(
    relay: FakeRelay, session: aiohttp.ClientSession
) -> None:
    relay.delay = 5.0
    client = RelayClient(session, relay.base_url, SecretStr(KEY), timeout=0.2)

    with pytest.raises(RelayUnavailable):
        await client.fetch_many(["a-1"])


async def test_fetch_many_returns_what_a_capped_relay_answers(
    session: aiohttp.ClientSession,
) -> None:
    async with FakeRelay(api_key=KEY, batch_cap=2) as relay:
        ids = [f"t-{n}" for n in range(5)]
        for task_id in ids:
            relay.add_task(task_id, music_timeline(task_id))
        client = RelayClient(session, relay.base_url, SecretStr(KEY), timeout=2.0)

        tasks = await client.fetch_many(ids)

        assert [task.task_id for task in tasks] == ids[:2]


# --- construction ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "base", ["ftp://relay.example", "relay.example", "https://relay.example/?k=1", "/suno"]
)
async def test_client_refuses_a_base_url_that_is_not_plain_http(
    session: aiohttp.ClientSession, base: str
) -> None:
    with pytest.raises(ValueError, match="base URL"):
        RelayClient(session, base, SecretStr(KEY), timeout=1.0)


async def test_clip_ids_of_a_timeline_reach_the_caller(
    relay: FakeRelay, client: RelayClient
) -> None:
    relay.add_task("t-9", music_timeline("t-9", "nested")[-1])

    task = await client.fetch("t-9")

    assert [clip.id for clip in task.clips] == clip_ids_for("t-9")
