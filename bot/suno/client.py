"""HTTP client for a Suno relay: fetches tasks and maps every failure to a typed relay error."""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Final, Protocol
from urllib.parse import quote

import aiohttp
import orjson
from multidict import CIMultiDictProxy
from pydantic import SecretStr
from yarl import URL

from bot.suno.errors import (
    BatchUnsupported,
    RelayError,
    RelayKeyRejected,
    RelayProtocolError,
    RelayUnavailable,
    TaskNotFound,
)
from bot.suno.ids import normalize_task_id
from bot.suno.models import (
    Envelope,
    NotATask,
    Task,
    TaskMemo,
    envelope_from,
    task_from_answer,
    tasks_from_data,
)

log = logging.getLogger(__name__)

MAX_BODY_BYTES: Final = 2 * 1024 * 1024
_SNIPPET_CHARS: Final = 200
_READ_CHUNK: Final = 64 * 1024
_NOT_FOUND_WORDS: Final = frozenset({"task_not_exist", "task_not_exists", "task_not_found"})
# Ids named in one log line or error; a batch of hundreds is summarized by its count.
_IDS_SHOWN: Final = 5
_ID_CHARS_SHOWN: Final = 140
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]+")
_WHITESPACE = re.compile(r"\s+")
# Statuses that say "later, not never": the request was fine, the relay was not ready for it.
_TRANSIENT_CLIENT_STATUSES: Final = frozenset({408, 425, 429})


_NOT_JSON: Final = object()


@dataclass(frozen=True, slots=True)
class _Answer:
    status: int
    headers: CIMultiDictProxy[str]
    body: bytes
    json: Any

    @property
    def is_json(self) -> bool:
        return self.json is not _NOT_JSON


class RelayObserver(Protocol):
    """Told about every relay request (the metrics); `endpoint` is "fetch" or "batch"."""

    def relay_request(self, endpoint: str, outcome: str, seconds: float) -> None:
        """A request ended: "ok", or the failure's `RelayError.outcome`, after `seconds`."""

    def relay_batch(self, size: int) -> None:
        """A batch request asks for `size` task ids."""


class RelayClient:
    """Reads tasks from a relay over a session the application owns."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        api_key: SecretStr,
        *,
        timeout: float,
        observer: RelayObserver | None = None,
    ) -> None:
        base = URL(base_url)
        if not base.is_absolute() or base.scheme not in ("http", "https"):
            raise ValueError("the relay base URL must be an absolute http(s) URL")
        if base.query_string or base.fragment:
            raise ValueError("the relay base URL must not carry a query or a fragment")
        self._session = session
        self._fetch_root = base.with_path(base.raw_path.rstrip("/") + "/suno/fetch", encoded=True)
        self._api_key = api_key
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._observer = observer
        # Unchanged tasks are not parsed again (most polls find a task as it was).
        self._memo = TaskMemo()

    async def fetch(self, task_id: str, *, key: SecretStr | None = None) -> Task:
        """The task with this id, or a RelayError saying why it could not be read; asked with
        `key` (a member's or server's) or else the operator's key."""
        task_id = normalize_task_id(task_id)
        with self._observed("fetch"):
            return await self._fetch(task_id, key or self._api_key)

    async def fetch_many(
        self, task_ids: Sequence[str], *, key: SecretStr | None = None
    ) -> list[Task]:
        """The tasks among these ids that the relay knows (to `key`, or else the operator's
        key); unknown ids are left out."""
        wanted = list(dict.fromkeys(normalize_task_id(task_id) for task_id in task_ids))
        if not wanted:
            return []
        if self._observer is not None:
            self._observer.relay_batch(len(wanted))
        with self._observed("batch"):
            return await self._fetch_many(wanted, key or self._api_key)

    def forget(self, task_id: str) -> None:
        """The task is no longer polled: its last answer need not be remembered."""
        self._memo.forget(task_id)

    @contextmanager
    def _observed(self, endpoint: str) -> Iterator[None]:
        """Tells the observer how the request inside ended and how long it took; a cancelled
        request is not counted."""
        observer = self._observer
        if observer is None:
            yield
            return
        started = time.monotonic()
        try:
            yield
        except RelayError as exc:
            observer.relay_request(endpoint, exc.outcome, time.monotonic() - started)
            raise
        except Exception:
            observer.relay_request(endpoint, RelayError.outcome, time.monotonic() - started)
            raise
        observer.relay_request(endpoint, "ok", time.monotonic() - started)

    async def _fetch(self, task_id: str, key: SecretStr) -> Task:
        # One quoted segment, appended to an already-encoded URL: the id can never add a
        # path segment, a query or a fragment, whatever the validation in fetch() lets through.
        url = self._fetch_root.with_path(
            f"{self._fetch_root.raw_path}/{quote(task_id, safe='')}", encoded=True
        )
        answer = await self._request("GET", url, None, key)
        if answer.status != 200:
            raise self._error_for(answer)
        if not answer.is_json:
            raise self._not_json(answer)
        return self._single_task(answer, task_id)

    async def _fetch_many(self, wanted: list[str], key: SecretStr) -> list[Task]:
        answer = await self._request("POST", self._fetch_root, {"ids": wanted}, key)
        # Relays drop unknown ids from a batch; one that instead answers "not found" for the
        # whole batch has the endpoint and simply knows none of them.
        if answer.status in (200, 400, 404) and _says_not_found(answer.json):
            return []
        if answer.status in (404, 405):
            raise BatchUnsupported(
                f"no batch fetch endpoint: {self._snippet(answer)}", status=answer.status
            )
        if answer.status != 200:
            raise self._error_for(answer)
        return self._batch_tasks(answer, set(wanted))

    async def _request(self, method: str, url: URL, payload: Any, key: SecretStr) -> _Answer:
        # The only place a key leaves the bot: this header, to the operator's relay.
        secret = key.get_secret_value()
        headers = {
            "Authorization": f"Bearer {secret}",
            "Accept": "application/json",
        }
        started = time.monotonic()
        try:
            async with self._session.request(
                method,
                url,
                json=payload,
                headers=headers,
                timeout=self._timeout,
                # A relay has no business redirecting; following one would hand the key
                # to whatever the Location names.
                allow_redirects=False,
                raise_for_status=False,
            ) as response:
                body = await _read_bounded(response)
                status, response_headers = response.status, response.headers
        except _BodyTooLarge as exc:
            raise RelayProtocolError(str(exc), status=exc.status) from None
        except TimeoutError:
            log.debug("%s %s timed out", method, url.path)
            raise RelayUnavailable("the relay did not answer in time") from None
        except aiohttp.ClientError as exc:
            log.debug("%s %s failed: %s", method, url.path, type(exc).__name__)
            raise RelayUnavailable(f"cannot reach the relay ({type(exc).__name__})") from None
        log.debug("%s %s -> %d in %.3fs", method, url.path, status, time.monotonic() - started)
        if secret:
            # A relay that echoes the request must not carry the key into errors or logs.
            body = body.replace(secret.encode(), b"***")
        return _Answer(status, response_headers, body, _parse_json(body))

    def _single_task(self, answer: _Answer, task_id: str) -> Task:
        if _says_not_found(answer.json):
            raise self._not_found(answer)
        try:
            envelope = envelope_from(answer.json)
            if not _envelope_ok(envelope):
                raise NotATask(f"the relay answered code {envelope.code!r}")
            task = task_from_answer(envelope.data, task_id, self._memo)
        except NotATask as exc:
            raise RelayProtocolError(
                f"{exc}: {self._snippet(answer)}", status=answer.status
            ) from None
        if task.task_id != task_id:
            # A buggy relay or a mixed-up cache: showing this task would put another
            # song under the requester's message.
            asked, answered = self._shown_ids([task_id]), self._shown_ids([task.task_id])
            log.warning("asked the relay for task %s, it answered with task %s", asked, answered)
            raise RelayProtocolError(
                f"asked for task {asked}, the relay answered with task {answered}",
                status=answer.status,
            )
        return task

    def _batch_tasks(self, answer: _Answer, wanted: set[str]) -> list[Task]:
        # A relay without the batch route may still answer 200: one-api descendants serve
        # their web UI's HTML page for unknown routes, others a "code": "fail" envelope or a
        # single object. Anything but a list of tasks means there is no batch here.
        try:
            if not answer.is_json:
                raise NotATask("the batch answer is not JSON")
            envelope = envelope_from(answer.json)
            if not _envelope_ok(envelope):
                raise NotATask(f"the relay answered code {envelope.code!r}")
            # new-api answers a batch that matched nothing with `data: null`.
            tasks = [] if envelope.data is None else tasks_from_data(envelope.data, self._memo)
        except NotATask as exc:
            raise BatchUnsupported(
                f"{exc}: {self._snippet(answer)}", status=answer.status
            ) from None
        # Callers match answers to watches by id. A task nobody asked for (or one without
        # an id) belongs to no watch; the ids it was meant for count as missing, and the
        # caller's single fetch of those tells what the relay really answers for them.
        kept = [task for task in tasks if task.task_id in wanted]
        if len(kept) < len(tasks):
            stray = [task.task_id for task in tasks if task.task_id not in wanted]
            log.warning(
                "the relay's batch answer for tasks %s carried tasks nobody asked for: %s",
                self._shown_ids(sorted(wanted)),
                self._shown_ids(stray),
            )
        return kept

    def _error_for(self, answer: _Answer) -> RelayError:
        """The error for any answer but a 200."""
        status = answer.status
        snippet = self._snippet(answer)
        if 300 <= status < 400:
            return RelayProtocolError(
                f"the relay redirects; set its base URL to the final address: {snippet}",
                status=status,
            )
        if status in (400, 404) and _says_not_found(answer.json):
            return self._not_found(answer)
        if status in (401, 403):
            return RelayKeyRejected(f"the relay rejected the key: {snippet}", status=status)
        if status >= 500 or status in _TRANSIENT_CLIENT_STATUSES:
            return RelayUnavailable(
                f"the relay is unavailable: {snippet}",
                status=status,
                retry_after=_retry_after(answer.headers),
            )
        # Any other answer (a 404 from a relay without this route, 400 for a request it
        # does not understand, 402 for an empty balance...) means this relay and this bot
        # disagree. It is not the requester's fault and not a dead key, so it is reported
        # as a protocol error; that class is transient, so watches back off and retry in
        # case the relay is mid-deploy rather than abandoning the task.
        return RelayProtocolError(f"unexpected answer: {snippet}", status=status)

    def _not_json(self, answer: _Answer) -> RelayUnavailable:
        # HTML and truncated JSON come from proxies and overloaded relays: try again later.
        snippet = self._snippet(answer)
        kind = "HTML" if snippet.startswith("<") else "a body that is not JSON"
        return RelayUnavailable(
            f"the relay answered with {kind}: {snippet}",
            status=answer.status,
            retry_after=_retry_after(answer.headers),
        )

    def _not_found(self, answer: _Answer) -> TaskNotFound:
        return TaskNotFound(
            f"the relay does not know this task: {self._snippet(answer)}", status=answer.status
        )

    def _snippet(self, answer: _Answer) -> str:
        return _snippet(answer.body, self._api_key)

    def _shown_ids(self, task_ids: Sequence[str]) -> str:
        """Ids for a log line or an error: quoted, scrubbed of the key, a few at most."""
        secret = self._api_key.get_secret_value()
        shown = []
        for task_id in task_ids[:_IDS_SHOWN]:
            text = task_id.replace(secret, "***") if secret else task_id
            shown.append(repr(_CONTROL_CHARS.sub(" ", text)[:_ID_CHARS_SHOWN]))
        more = len(task_ids) - len(shown)
        return ", ".join(shown) + (f" and {more} more" if more > 0 else "")


class _BodyTooLarge(Exception):
    def __init__(self, detail: str, status: int) -> None:
        super().__init__(detail)
        self.status = status


async def _read_bounded(response: aiohttp.ClientResponse) -> bytes:
    status = response.status
    declared = response.content_length
    if declared is not None and declared > MAX_BODY_BYTES:
        raise _BodyTooLarge(f"the relay's answer is too large ({declared} bytes)", status)
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(_READ_CHUNK):
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise _BodyTooLarge(f"the relay's answer is larger than {MAX_BODY_BYTES} bytes", status)
        chunks.append(chunk)
    return b"".join(chunks)


def _parse_json(body: bytes) -> Any:
    """The decoded body, or _NOT_JSON."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        pass  # orjson is strict where the standard parser is lenient (NaN, huge integers)
    try:
        return json.loads(body)
    # Hostile nesting overflows the parser's recursion rather than raising ValueError.
    except (ValueError, UnicodeDecodeError, RecursionError):
        return _NOT_JSON


def _snippet(body: bytes, api_key: SecretStr) -> str:
    """At most ~200 printable characters of a body, with the key scrubbed out."""
    text = body.decode("utf-8", errors="replace")
    # A relay that echoes the request (some proxies do) must not carry the key into logs;
    # scrubbing before any cut means no fragment of it can survive at the edge.
    secret = api_key.get_secret_value()
    if secret:
        text = text.replace(secret, "***")
    text = text[: _SNIPPET_CHARS * 20]
    text = _WHITESPACE.sub(" ", _CONTROL_CHARS.sub(" ", text)).strip()
    if len(text) > _SNIPPET_CHARS:
        text = text[:_SNIPPET_CHARS] + "…"
    return text or "(empty body)"


def _normalized_word(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    return value.strip().lower().replace(" ", "_")


def _says_not_found(body: Any) -> bool:
    """Whether a body carries the relays' not-found code, flat or OpenAI-style nested."""
    if not isinstance(body, dict):
        return False
    candidates = [body]
    if isinstance(body.get("error"), dict):
        candidates.append(body["error"])
    for candidate in candidates:
        for key in ("code", "message"):
            if _normalized_word(candidate.get(key)) in _NOT_FOUND_WORDS:
                return True
    return False


def _envelope_ok(envelope: Envelope) -> bool:
    """A success code, or no code at all around some data (the data is checked next)."""
    if envelope.code is None:
        return envelope.data is not None
    return envelope.ok


def _retry_after(headers: CIMultiDictProxy[str]) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date), if any."""
    value = headers.get("Retry-After")
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    if seconds != seconds or seconds in (float("inf"), float("-inf")):
        return None
    return max(seconds, 0.0)
