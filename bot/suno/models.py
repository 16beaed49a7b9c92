"""Relay payloads of every family normalized into one domain shape: Task, Clip, Lyrics."""

from __future__ import annotations

import functools
import hashlib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any
from urllib.parse import urlsplit

import orjson
from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError
from pydantic.alias_generators import to_camel

from bot.safety import safe_url


class TaskStatus(StrEnum):
    NOT_START = "NOT_START"
    SUBMITTED = "SUBMITTED"
    QUEUED = "QUEUED"
    IN_PROGRESS = "IN_PROGRESS"
    # Still running, with a result in part: the lyrics, or the first finished clips.
    LYRICS_READY = "LYRICS_READY"
    FIRST_CLIPS_READY = "FIRST_CLIPS_READY"
    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"
    UNKNOWN = "UNKNOWN"

    @property
    def is_terminal(self) -> bool:
        return self in (TaskStatus.SUCCESS, TaskStatus.FAILURE)


class ClipState(StrEnum):
    SUBMITTED = "submitted"
    QUEUED = "queued"
    RUNNING = "running"
    STREAMING = "streaming"
    COMPLETE = "complete"
    ERROR = "error"
    UNKNOWN = "unknown"


_TASK_STATUS_WORDS: dict[str, TaskStatus] = {
    "not_start": TaskStatus.NOT_START,
    "not_started": TaskStatus.NOT_START,
    "submitted": TaskStatus.SUBMITTED,
    "queued": TaskStatus.QUEUED,
    "pending": TaskStatus.QUEUED,
    "queueing": TaskStatus.QUEUED,
    "waiting": TaskStatus.QUEUED,
    "in_progress": TaskStatus.IN_PROGRESS,
    "processing": TaskStatus.IN_PROGRESS,
    "running": TaskStatus.IN_PROGRESS,
    "generating": TaskStatus.IN_PROGRESS,
    "streaming": TaskStatus.IN_PROGRESS,
    # Official Suno API statuses, passed through by newer relay channels.
    "text_success": TaskStatus.LYRICS_READY,
    "lyrics_ready": TaskStatus.LYRICS_READY,
    "first_success": TaskStatus.FIRST_CLIPS_READY,
    "first_clips_ready": TaskStatus.FIRST_CLIPS_READY,
    "success": TaskStatus.SUCCESS,
    "succeeded": TaskStatus.SUCCESS,
    "succeed": TaskStatus.SUCCESS,
    "complete": TaskStatus.SUCCESS,
    "completed": TaskStatus.SUCCESS,
    "done": TaskStatus.SUCCESS,
    "failure": TaskStatus.FAILURE,
    "failed": TaskStatus.FAILURE,
    "fail": TaskStatus.FAILURE,
    "error": TaskStatus.FAILURE,
    "unknown": TaskStatus.UNKNOWN,
}
# The official Suno API names its failures (CREATE_TASK_FAILED, SENSITIVE_WORD_ERROR,
# CALLBACK_EXCEPTION...): any *_FAILED or *_ERROR is one, and so are the names listed.
_FAILURE_NAME_ENDINGS = ("_failed", "_error")
_FAILURE_NAMES = frozenset({"callback_exception"})

# Public version labels of Suno's model names; the relay's own version stands in for others.
_MODEL_LABELS: Mapping[str, str] = {
    "chirp-v3-0": "v3",
    "chirp-v3-5": "v3.5",
    "chirp-v4": "v4",
    "chirp-auk": "v4.5",
    "chirp-auk-turbo": "v4.5-all",
    "chirp-bluejay": "v4.5+",
    "chirp-crow": "v5",
    "chirp-v5": "v5",
    "chirp-fenix": "v5.5",
    "chirp-v5-5": "v5.5",
    "chirp-v55": "v5.5",
}

_CLIP_STATE_WORDS: dict[str, ClipState] = {
    "submitted": ClipState.SUBMITTED,
    "queued": ClipState.QUEUED,
    "pending": ClipState.QUEUED,
    "running": ClipState.RUNNING,
    "processing": ClipState.RUNNING,
    "streaming": ClipState.STREAMING,
    "complete": ClipState.COMPLETE,
    "completed": ClipState.COMPLETE,
    "succeeded": ClipState.COMPLETE,
    "success": ClipState.COMPLETE,
    "error": ClipState.ERROR,
    "failed": ClipState.ERROR,
    "failure": ClipState.ERROR,
}

_SUCCESS_CODES = frozenset({"success", "ok", "1", "200", "0000"})
# Above this a timestamp cannot be seconds (year 5138), so it is milliseconds.
_MILLISECONDS_THRESHOLD = 100_000_000_000
# File names Suno puts in place of a missing file, e.g. https://cdn1.suno.ai/None.mp3.
_PLACEHOLDER_STEMS = frozenset({"none", "null", "undefined", "nan"})
# Keys only a task object carries (a clip or a lyrics object also has `status`).
_TASK_KEYS = ("task_id", "taskId", "action")
_LYRICS_KEYS = frozenset(
    {
        "id",
        "text",
        "title",
        "status",
        "state",
        "tags",
        "prompt",
        "error_message",
        "errorMessage",
        "msg",
    }
)


# Relays repeat a handful of status strings; the bound only matters for a hostile one.
@functools.lru_cache(maxsize=256)
def _status_of(raw: str) -> tuple[TaskStatus, str | None]:
    """The status a raw value means, and its name when it is a named failure."""
    word = raw.strip().lower().replace("-", "_").replace(" ", "_")
    status = _TASK_STATUS_WORDS.get(word)
    if status is not None:
        return status, None
    if _is_failure_name(word):
        return TaskStatus.FAILURE, raw.strip()
    return TaskStatus.UNKNOWN, None


def _is_failure_name(word: str) -> bool:
    if word in _FAILURE_NAMES:
        return True
    # Something must come before the ending: a bare "_failed" names nothing.
    return any(
        word.endswith(ending) and word[: -len(ending)].strip("_")
        for ending in _FAILURE_NAME_ENDINGS
    )


def _clip_state_from(raw: str | None) -> ClipState | None:
    if not raw:
        return None
    return _CLIP_STATE_WORDS.get(raw.strip().lower())


@functools.lru_cache(maxsize=2048)  # pure, and the same links come back poll after poll
def _is_placeholder_media(url: str) -> bool:
    # Suno answers an errored clip with https://cdn1.suno.ai/None.mp3 (and friends). A bare
    # host is no file either, unless a query names the item (the audiopipe stream link).
    parts = urlsplit(url)
    stem = parts.path.rsplit("/", 1)[-1].split(".", 1)[0]
    if not stem:
        return not parts.query
    return stem.lower() in _PLACEHOLDER_STEMS


@functools.lru_cache(maxsize=2048)
def _is_stream(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    return "audiopipe" in host


def media_url(value: object) -> str | None:
    """A safe URL that points at an actual file (never a `None.mp3` placeholder)."""
    url = safe_url(value)
    if url is None or _is_placeholder_media(url):
        return None
    return url


def _as_text(value: Any) -> str | None:
    # Numbers keep their digits (numeric task ids, `code: 200`, a song called 1999);
    # any other non-string degrades to None.
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return str(value)
    return None


def _as_number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip().rstrip("%").strip())
        except ValueError:
            return None
    if isinstance(value, int | float):
        try:
            number = float(value)
        except OverflowError:  # an int beyond float range
            return None
        return number if math.isfinite(number) else None
    return None


def _as_timestamp(value: Any) -> datetime | None:
    if isinstance(value, str) and not value.strip().lstrip("-").replace(".", "", 1).isdigit():
        try:
            parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    seconds = _as_number(value)
    if seconds is None or seconds <= 0:
        return None
    # Milliseconds (and the odd micro- or nanoseconds) come down to seconds.
    for _ in range(3):
        if seconds <= _MILLISECONDS_THRESHOLD:
            break
        seconds /= 1000
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _as_mapping(value: Any) -> dict[str, Any] | None:
    return value if isinstance(value, dict) else None


Text = Annotated[str | None, BeforeValidator(_as_text)]
Number = Annotated[float | None, BeforeValidator(_as_number)]
Timestamp = Annotated[datetime | None, BeforeValidator(_as_timestamp)]


class _Raw(BaseModel):
    model_config = ConfigDict(
        extra="ignore",
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
    )


class _RawMetadata(_Raw):
    tags: Text = None
    prompt: Text = None
    duration: Number = None
    error_type: Text = None
    error_message: Text = None
    stem_from_id: Text = None
    stem_type_group_name: Text = None


class _RawClip(_Raw):
    id: Text = None
    clip_id: Text = None
    title: Text = None
    status: Text = None
    state: Text = None
    tags: Text = None
    prompt: Text = None
    text: Text = None
    duration: Number = None
    mv: Text = None
    model_name: Text = None
    major_model_version: Text = None
    msg: Text = None
    error_message: Text = None
    audio_url: Text = None
    stream_audio_url: Text = None
    image_url: Text = None
    image_large_url: Text = None
    video_url: Text = None
    stem_from_id: Text = None
    stem_type_group_name: Text = None
    metadata: Annotated[_RawMetadata | None, BeforeValidator(_as_mapping)] = None


class _RawTask(_Raw):
    task_id: Text = None
    action: Text = None
    status: Text = None
    fail_reason: Text = None
    submit_time: Timestamp = None
    start_time: Timestamp = None
    finish_time: Timestamp = None
    progress: Number = None
    result_url: Text = None
    data: Any = None


@dataclass(frozen=True, slots=True)
class Clip:
    """One generated song (a music task usually has two)."""

    id: str
    state: ClipState
    raw_state: str
    title: str | None = None
    tags: str | None = None
    lyrics: str | None = None
    duration: float | None = None
    model: str | None = None
    cover_url: str | None = None
    audio_url: str | None = None
    stream_url: str | None = None
    video_url: str | None = None
    error_message: str | None = None
    # A stem split's part ("Vocals", "Drums") and the id of the song it was split from.
    stem_type: str | None = None
    stem_from_id: str | None = None


@dataclass(frozen=True, slots=True)
class Lyrics:
    """The result of a lyrics task."""

    id: str | None
    title: str | None
    text: str | None
    tags: str | None
    error_message: str | None
    raw_state: str


@dataclass(frozen=True, slots=True)
class Task:
    """A relay task, whichever relay family it came from."""

    task_id: str
    status: TaskStatus
    raw_status: str
    action: str = ""
    fail_reason: str | None = None
    submitted_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    progress: float | None = None
    clips: tuple[Clip, ...] = ()
    lyrics: Lyrics | None = None
    # One link to the whole result, sent by relays that give a finished task no clips.
    result_url: str | None = None
    # The relay's own name for a failure (SENSITIVE_WORD_ERROR...), when it names one.
    failure_name: str | None = None

    @property
    def is_terminal(self) -> bool:
        return self.status.is_terminal


def _first(*values: str | None) -> str | None:
    """The first value that is not blank, stripped."""
    for value in values:
        if value is not None:
            stripped = value.strip()
            if stripped:
                return stripped
    return None


def _clip_state(raw: _RawClip) -> tuple[ClipState, str]:
    status = _clip_state_from(raw.status)
    state = _clip_state_from(raw.state)
    if state is ClipState.ERROR and status is not ClipState.ERROR:
        # `status` may still say `complete` while `state` already reports the failure.
        return ClipState.ERROR, _first(raw.state) or ""
    raw_value = _first(raw.status, raw.state) or ""
    return status or state or ClipState.UNKNOWN, raw_value


def _model_name(raw: _RawClip) -> str | None:
    name = _first(raw.model_name, raw.mv)
    label = _MODEL_LABELS.get(name.lower()) if name else None
    version = label or _first(raw.major_model_version)
    if name and version and version not in name:
        return f"{name} ({version})"
    return name or version


_EMPTY_METADATA = _RawMetadata()
_FINISHED_CLIP_STATES = frozenset({ClipState.COMPLETE, ClipState.ERROR})


def _media(raw: _RawClip) -> tuple[str | None, str | None]:
    """The clip's audio file and its partial stream link."""
    audio = media_url(raw.audio_url)
    stream = media_url(raw.stream_audio_url)
    if audio is not None and _is_stream(audio):
        # The audiopipe link is a partial stream, never the song itself.
        stream, audio = stream or audio, None
    return audio, stream


def _state_from_media(audio: str | None, stream: str | None) -> ClipState:
    # The official Suno API gives a clip no status: its links say how far it got.
    if audio is not None:
        return ClipState.COMPLETE
    if stream is not None:
        return ClipState.STREAMING
    return ClipState.UNKNOWN


def _clip_from(raw: _RawClip, index: int) -> Clip:
    meta = raw.metadata or _EMPTY_METADATA
    state, raw_state = _clip_state(raw)
    audio, stream = _media(raw)
    if not raw_state:
        state = _state_from_media(audio, stream)
    if state in _FINISHED_CLIP_STATES:
        stream = None
    duration = _first_positive(meta.duration, raw.duration)
    return Clip(
        id=_first(raw.id, raw.clip_id) or str(index + 1),
        state=state,
        raw_state=raw_state,
        title=_first(raw.title),
        tags=_first(meta.tags, raw.tags),
        lyrics=_first(meta.prompt, raw.prompt),
        duration=duration,
        model=_model_name(raw),
        cover_url=media_url(raw.image_large_url) or media_url(raw.image_url),
        audio_url=audio,
        stream_url=stream,
        video_url=media_url(raw.video_url),
        error_message=_first(meta.error_message, raw.error_message, raw.msg, meta.error_type),
        stem_type=_first(meta.stem_type_group_name, raw.stem_type_group_name),
        stem_from_id=_first(meta.stem_from_id, raw.stem_from_id),
    )


def _first_positive(*values: float | None) -> float | None:
    for value in values:
        if value is not None and value > 0:
            return value
    return None


def _lyrics_from(raw: _RawClip) -> Lyrics:
    return Lyrics(
        id=_first(raw.id),
        title=_first(raw.title),
        text=_first(raw.text, raw.prompt),
        tags=_first(raw.tags),
        error_message=_first(raw.error_message, raw.msg),
        raw_state=_first(raw.status, raw.state) or "",
    )


def _clips_from(items: Iterable[Any]) -> tuple[Clip, ...]:
    clips: list[Clip] = []
    for item in items:
        if isinstance(item, dict):
            clips.append(_clip_from(_RawClip.model_validate(item), len(clips)))
    return tuple(clips)


def task_from(payload: Mapping[str, Any]) -> Task:
    """Normalize one relay task object (the envelope's `data`)."""
    raw = _RawTask.model_validate(payload)
    clips: tuple[Clip, ...] = ()
    lyrics: Lyrics | None = None
    if isinstance(raw.data, list):
        clips = _clips_from(raw.data)
    elif isinstance(raw.data, dict):
        nested = raw.data.get("clips")
        if isinstance(nested, list):
            clips = _clips_from(nested)
        elif not _LYRICS_KEYS.isdisjoint(raw.data):
            lyrics = _lyrics_from(_RawClip.model_validate(raw.data))
    raw_status = (raw.status or "").strip()
    status, failure_name = _status_of(raw_status)
    progress = raw.progress
    if progress is not None:
        progress = min(max(progress, 0.0), 100.0)
    return Task(
        task_id=_first(raw.task_id) or "",
        status=status,
        raw_status=raw_status,
        action=(raw.action or "").strip().upper(),
        fail_reason=_first(raw.fail_reason),
        submitted_at=raw.submit_time,
        started_at=raw.start_time,
        finished_at=raw.finish_time,
        progress=progress,
        clips=clips,
        lyrics=lyrics,
        result_url=media_url(raw.result_url),
        failure_name=failure_name,
    )


class Envelope(_Raw):
    """The relay's `{code, message, data}` wrapper."""

    code: Text = None
    message: Text = None
    data: Any = None

    @property
    def ok(self) -> bool:
        return self.code is not None and self.code.strip().lower() in _SUCCESS_CODES


class NotATask(ValueError):
    """A body that carries no task where one was expected."""


def _looks_like_task(value: Any) -> bool:
    # `status` alone is not enough: clips, lyrics and proxy error bodies carry one too.
    return isinstance(value, dict) and any(key in value for key in _TASK_KEYS)


def envelope_from(body: Any) -> Envelope:
    """The envelope of a relay answer; a bare task or list is treated as its own `data`."""
    if isinstance(body, list) or (_looks_like_task(body) and "code" not in body):
        return Envelope(code="success", message="", data=body)
    if not isinstance(body, dict):
        raise NotATask(f"expected a JSON object, got {type(body).__name__}")
    try:
        return Envelope.model_validate(body)
    except ValidationError as exc:
        raise NotATask("malformed envelope") from exc


class TaskMemo:
    """The newest Task parsed for each task id, with a digest of the relay object it came from.

    Most polls find a task as it was: its object then gives back the very Task it gave last
    time, without validating and normalizing it again (and the message, whose source is that
    Task, is not rendered again either). Only one Task per id is kept, and an id is dropped
    when it is no longer polled (`forget`); past `capacity` ids it starts over.
    """

    def __init__(self, capacity: int = 262_144) -> None:
        self._capacity = capacity
        self._newest: dict[str, tuple[bytes, Task]] = {}

    def task(self, item: Mapping[str, Any]) -> Task:
        """`task_from(item)`, remembered; raises as `task_from` does."""
        task_id = item.get("task_id", item.get("taskId"))
        key = _digest(item) if isinstance(task_id, str) else None
        if key is None:
            return task_from(item)
        known = self._newest.get(task_id)
        if known is not None and known[0] == key:
            return known[1]
        task = task_from(item)
        if len(self._newest) >= self._capacity and task_id not in self._newest:
            self._newest.clear()
        self._newest[task_id] = (key, task)
        return task

    def forget(self, task_id: str) -> None:
        self._newest.pop(task_id, None)


def _digest(item: Mapping[str, Any]) -> bytes | None:
    """16 bytes that differ whenever `item` does; None for what JSON cannot hold exactly."""
    try:
        encoded = orjson.dumps(item)
    except TypeError:  # orjson.JSONEncodeError: integers past 64 bits, non-string keys
        return None
    return hashlib.blake2b(encoded, digest_size=16).digest()


def task_from_data(data: Any, memo: TaskMemo | None = None) -> Task:
    if not _looks_like_task(data):
        raise NotATask("the answer carries no task")
    try:
        return memo.task(data) if memo is not None else task_from(data)
    except ValidationError as exc:
        raise NotATask("malformed task") from exc


def task_from_answer(data: Any, task_id: str, memo: TaskMemo | None = None) -> Task:
    """The task a successful single fetch of `task_id` carries in its envelope's `data`.

    `data: null` is a relay with nothing to report yet: the task has not started. A task
    without an id cannot be told apart from the requested one, so it is taken as that one.
    """
    if data is None:
        return Task(task_id=task_id, status=TaskStatus.NOT_START, raw_status="")
    task = task_from_data(data, memo)
    if not task.task_id:
        return replace(task, task_id=task_id)
    return task


def tasks_from_data(data: Any, memo: TaskMemo | None = None) -> list[Task]:
    """The tasks of a batch answer (`data` is a list of task objects)."""
    if not isinstance(data, list):
        raise NotATask("the batch answer is not a list")
    parse = memo.task if memo is not None else task_from
    tasks = []
    for item in data:
        if _looks_like_task(item):
            try:
                tasks.append(parse(item))
            except ValidationError:
                continue
    return tasks
