"""A real HTTP server on 127.0.0.1 that plays a Suno relay, scripted task by task."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
from collections import Counter, deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal, TypeAlias
from urllib.parse import unquote

from aiohttp import web
from multidict import CIMultiDict

JsonBody: TypeAlias = Mapping[str, Any] | Sequence[Any] | str | bytes | None
NotFoundStyle: TypeAlias = Literal["new-api", "one-hub"]

NOT_FOUND_BODY: dict[str, Any] = {
    "code": "task_not_exist",
    "message": "task_not_exist",
    "data": None,
}
BAD_KEY_BODY: dict[str, Any] = {"error": {"message": "invalid token", "type": "new_api_error"}}


@dataclass(frozen=True, slots=True)
class RelayReply:
    """A raw answer: exactly this status, body and headers, after `delay` seconds.

    Dicts and lists are sent as JSON; strings and bytes as they are (`content_type`
    defaults to application/json for JSON bodies and text/plain otherwise).
    """

    status: int = 200
    body: JsonBody = None
    headers: Mapping[str, str] = field(default_factory=dict)
    content_type: str | None = None
    delay: float = 0.0


Step: TypeAlias = Mapping[str, Any] | RelayReply
"""One answer of a scripted task: a task payload (wrapped in a success envelope) or a raw reply."""


@dataclass(slots=True)
class RecordedRelayRequest:
    """What the relay saw of one request (`status` is filled in once it has answered)."""

    method: str
    path: str
    query: str
    task_ids: tuple[str, ...]
    headers: Mapping[str, str]
    at: float
    status: int | None = None

    @property
    def authorization(self) -> str | None:
        return self.headers.get("Authorization")


@dataclass(slots=True)
class _Script:
    steps: tuple[Step, ...]
    cursor: int = 0

    def advance(self) -> Step:
        step = self.steps[min(self.cursor, len(self.steps) - 1)]
        self.cursor += 1
        return step


class FakeRelay:
    """`async with FakeRelay() as relay:` serves `GET/POST {relay.base_url}/suno/fetch...`.

    Each scripted task answers its steps in order, one per read (a single fetch, or its
    inclusion in a batch answer), and repeats the last step forever. Attributes such as
    `delay`, `batch_supported`, `batch_cap`, `batch_content_type` and `api_key` may be
    changed while it runs.

    Like real relays, a task belongs to the key that made it: `add_task(..., key=k)` scripts a
    task only key `k` sees (other keys are answered "not found", and batches leave it out).
    Keys other than `api_key` (the operator's) are accepted once `accept_key(k)` is called
    and until `revoke_key(k)`.
    """

    def __init__(
        self,
        *,
        api_key: str | None = "test-relay-key",
        prefix: str = "",
        delay: float = 0.0,
        batch_supported: bool = True,
        batch_unsupported_status: int = 404,
        batch_cap: int | None = None,
        batch_content_type: str = "application/json",
        not_found_style: NotFoundStyle = "new-api",
        success_code: str | int = "success",
        record: bool = True,
    ) -> None:
        self.api_key = api_key
        self.prefix = "/" + prefix.strip("/") if prefix.strip("/") else ""
        self.delay = delay
        self.batch_supported = batch_supported
        self.batch_unsupported_status = batch_unsupported_status
        self.batch_cap = batch_cap
        # Some hosted relays label the batch answer `text/plain` although it is JSON.
        self.batch_content_type = batch_content_type
        self.not_found_style = not_found_style
        self.success_code = success_code
        # Benchmarks with many thousands of requests may keep only the counters.
        self.record = record
        self.requests: list[RecordedRelayRequest] = []
        self._scripts: dict[str, _Script] = {}
        # The key that made each task; None: the operator's `api_key`, whatever it is now.
        self._owners: dict[str, str | None] = {}
        self._member_keys: set[str] = set()
        self._reads: Counter[str] = Counter()
        self._asked: Counter[str] = Counter()
        self._request_total = 0
        self._failures: deque[RelayReply] = deque()
        self._closing = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

    async def __aenter__(self) -> FakeRelay:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        # Hung handlers are released by `_closing`, so shutdown never needs to wait long.
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        address = self._runner.addresses[0]
        self._port = int(address[1])

    async def close(self) -> None:
        self._closing.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the fake relay is not running")
        return self._port

    @property
    def base_url(self) -> str:
        """The base URL a client is configured with (it appends /suno/fetch...)."""
        return f"http://127.0.0.1:{self.port}{self.prefix}"

    def add_task(
        self, task_id: str, steps: Step | Sequence[Step], *, key: str | None = None
    ) -> None:
        """Script a task (replacing any earlier script for the id); the last step repeats.
        `key` made the task and alone sees it (None: the operator's `api_key`)."""
        if isinstance(steps, Mapping | RelayReply):
            steps = (steps,)
        if not steps:
            raise ValueError("a task needs at least one step")
        self._scripts[task_id] = _Script(tuple(steps))
        self._owners[task_id] = key

    def accept_key(self, key: str) -> None:
        """A member's key the relay accepts from now on (besides the operator's)."""
        self._member_keys.add(key)

    def revoke_key(self, key: str) -> None:
        """The relay answers 401 to `key` from now on, as after the key is deleted."""
        self._member_keys.discard(key)

    def requests_with(self, key: str) -> list[RecordedRelayRequest]:
        """The recorded requests made with `key` as their bearer token."""
        return [r for r in self.requests if r.authorization == f"Bearer {key}"]

    def remove_task(self, task_id: str) -> None:
        """Forget a task: from now on the relay answers for it as for an unknown id."""
        self._scripts.pop(task_id, None)

    def step_index(self, task_id: str) -> int:
        """How many steps of the task have been served (may exceed the number of steps)."""
        script = self._scripts.get(task_id)
        return script.cursor if script is not None else 0

    def fail_next(self, n: int, reply: RelayReply) -> None:
        """Answer the next `n` requests, whatever they ask, with `reply`; tasks do not advance."""
        self._failures.extend([reply] * n)

    def fetch_count(self, task_id: str) -> int:
        """How often the relay read this id to answer (single fetches and batch inclusions)."""
        return self._reads[task_id]

    def request_count(self, task_id: str | None = None) -> int:
        """Every request received (failed ones too), or those that named `task_id`."""
        if task_id is None:
            return self._request_total
        return self._asked[task_id]

    def request_received(self, request: web.Request) -> None:
        """Called as each request arrives, before anything is read or answered; for subclasses."""

    def batch_requested(self, task_ids: tuple[str, ...]) -> None:
        """Called when a batch fetch is about to be answered (after any delay); for subclasses."""

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.request_received(request)
        raw_path = request.raw_path.split("?", 1)[0]
        route, single_id = self._route(request.method, raw_path)
        body_ids: tuple[str, ...] = ()
        if route == "batch":
            body_ids = await _batch_ids(request)
        task_ids = (single_id,) if single_id is not None else body_ids
        self._request_total += 1
        self._asked.update(set(task_ids))
        record = None
        if self.record:
            record = RecordedRelayRequest(
                method=request.method,
                path=raw_path,
                query=request.query_string,
                task_ids=task_ids,
                headers=CIMultiDict(request.headers),
                at=time.monotonic(),
            )
            self.requests.append(record)
        response = await self._answer(request, route, single_id, body_ids)
        if record is not None:
            record.status = response.status
        return response

    def _route(self, method: str, raw_path: str) -> tuple[str, str | None]:
        root = f"{self.prefix}/suno/fetch"
        if raw_path == root and method == "POST":
            return "batch", None
        if raw_path.startswith(root + "/") and method == "GET":
            segment = raw_path[len(root) + 1 :]
            if segment and "/" not in segment:
                return "single", unquote(segment)
        return "unknown", None

    async def _answer(
        self, request: web.Request, route: str, single_id: str | None, body_ids: tuple[str, ...]
    ) -> web.StreamResponse:
        await self._wait(self.delay)
        if self._failures:
            reply = self._failures.popleft()
            await self._wait(reply.delay)
            return _render(reply)
        if route == "unknown":
            return web.Response(status=404, text="404 page not found", content_type="text/plain")
        key = self._key_of(request)
        if self.api_key is not None and key is None:
            return _json_response(401, BAD_KEY_BODY)
        if route == "single" and single_id is not None:
            return await self._answer_single(single_id, key)
        return await self._answer_batch(body_ids, key)

    def _key_of(self, request: web.Request) -> str | None:
        """The accepted key the request carries, if any."""
        header = request.headers.get("Authorization", "")
        presented = header.removeprefix("Bearer ") if header.startswith("Bearer ") else None
        if presented is not None and (presented == self.api_key or presented in self._member_keys):
            return presented
        return None

    def _visible(self, task_id: str, key: str | None) -> _Script | None:
        """The task's script, if the key asking sees the task (only the key that made it)."""
        script = self._scripts.get(task_id)
        if script is None or self.api_key is None:
            return script
        owner = self._owners.get(task_id)
        return script if (owner or self.api_key) == key else None

    async def _answer_single(self, task_id: str, key: str | None) -> web.StreamResponse:
        self._reads[task_id] += 1
        script = self._visible(task_id, key)
        if script is None:
            return self._not_found()
        step = script.advance()
        if isinstance(step, RelayReply):
            await self._wait(step.delay)
            return _render(step)
        return _json_response(200, self._envelope(step))

    async def _answer_batch(self, task_ids: tuple[str, ...], key: str | None) -> web.StreamResponse:
        self.batch_requested(task_ids)
        if not self.batch_supported:
            return web.Response(
                status=self.batch_unsupported_status,
                text="404 page not found",
                content_type="text/plain",
            )
        if self.batch_cap is not None:
            task_ids = task_ids[: self.batch_cap]
        found: list[Any] = []
        delay = 0.0
        for task_id in task_ids:
            self._reads[task_id] += 1
            script = self._visible(task_id, key)
            if script is None:
                continue
            step = script.advance()
            if isinstance(step, RelayReply):
                # A raw reply stands for the task only when it is a successful envelope;
                # anything else leaves the task out, as relays do with what they cannot read.
                delay = max(delay, step.delay)
                if step.status == 200 and isinstance(step.body, Mapping):
                    data = step.body.get("data")
                    if isinstance(data, Mapping):
                        found.append(data)
                continue
            found.append(step)
        await self._wait(delay)
        return _json_response(200, self._envelope(found), self.batch_content_type)

    def _envelope(self, data: Any) -> dict[str, Any]:
        return {"code": self.success_code, "message": "", "data": data}

    def _not_found(self) -> web.Response:
        status = 404 if self.not_found_style == "one-hub" else 400
        return _json_response(status, NOT_FOUND_BODY)

    async def _wait(self, seconds: float) -> None:
        if seconds <= 0:
            return
        if math.isinf(seconds):
            await self._closing.wait()
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closing.wait(), seconds)


async def _batch_ids(request: web.Request) -> tuple[str, ...]:
    try:
        body = await request.json()
    except ValueError:
        return ()
    ids = body.get("ids") if isinstance(body, dict) else None
    if not isinstance(ids, list):
        return ()
    return tuple(item for item in ids if isinstance(item, str))


def _json_response(status: int, body: Any, content_type: str = "application/json") -> web.Response:
    return web.Response(
        status=status,
        body=json.dumps(body, ensure_ascii=False).encode(),
        headers={"Content-Type": content_type},
    )


def _render(reply: RelayReply) -> web.Response:
    body = reply.body
    if body is None:
        payload = b""
        content_type = "text/plain"
    elif isinstance(body, bytes):
        payload = body
        content_type = "text/plain"
    elif isinstance(body, str):
        payload = body.encode()
        content_type = "text/plain"
    else:
        payload = json.dumps(body, ensure_ascii=False).encode()
        content_type = "application/json"
    headers = {"Content-Type": reply.content_type or content_type, **reply.headers}
    return web.Response(status=reply.status, body=payload, headers=headers)
