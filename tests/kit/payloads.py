"""Builders of realistic relay payloads (tasks, clips of every family, lyrics, timelines)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from types import EllipsisType
from typing import Any, Literal, TypeAlias

ClipPhase: TypeAlias = Literal["submitted", "queued", "streaming", "complete", "error"]
ClipFamily: TypeAlias = Literal["nested", "flat", "hybrid"]
Payload: TypeAlias = dict[str, Any]

BASE_TIME = 1726911801
STARTED_AFTER = 11
FINISHED_AFTER = 96
DEFAULT_TITLE = "City Lights"
DEFAULT_TAGS = "emotional punk"
DEFAULT_LYRICS = (
    "[Verse]\nWalking down the streets\nBeneath the city lights\n"
    "Neon signs flickering\nLighting up the night\n\n"
    "[Chorus]\nHeart beating faster\nLike a drum in my chest"
)
DEFAULT_CLIP_ERROR = "Sorry, this song could not be generated. Please try a different prompt."
DEFAULT_FAIL_REASON = "Song generation failed: the prompt was rejected by moderation"
_DURATIONS = (219.0, 201.0, 128.92, 148.28)
_CLIP_NAMESPACE = uuid.UUID("6f1c3a52-3f0e-4c36-9a53-0d3d1c6b5e10")

_FLAT_STATE: dict[str, str] = {
    "submitted": "running",
    "queued": "running",
    "streaming": "running",
    "complete": "succeeded",
    "error": "failed",
}


def clip_ids_for(task_id: str, count: int = 2) -> list[str]:
    """Stable clip ids for a task, so tests can name the clips a timeline produces."""
    return [str(uuid.uuid5(_CLIP_NAMESPACE, f"{task_id}/{index}")) for index in range(count)]


def audio_url_for(clip_id: str, phase: ClipPhase) -> str:
    """What Suno puts in `audio_url` at each phase of a clip."""
    if phase == "streaming":
        return f"https://audiopipe.suno.ai/?item_id={clip_id}"
    if phase == "complete":
        return f"https://cdn1.suno.ai/{clip_id}.mp3"
    if phase == "error":
        return "https://cdn1.suno.ai/None.mp3"
    return ""


def video_url_for(clip_id: str, phase: ClipPhase) -> str:
    return f"https://cdn1.suno.ai/{clip_id}.mp4" if phase == "complete" else ""


def image_url_for(clip_id: str, phase: ClipPhase, *, large: bool = False) -> str | None:
    """Covers appear once a clip streams; an errored clip never gets one."""
    if phase not in ("streaming", "complete"):
        return None
    kind = "image_large" if large else "image"
    return f"https://cdn2.suno.ai/{kind}_{clip_id}.jpeg"


def nested_clip(
    clip_id: str,
    phase: ClipPhase = "complete",
    *,
    title: str = DEFAULT_TITLE,
    tags: str = DEFAULT_TAGS,
    lyrics: str = "",
    duration: float = 128.92,
    model_name: str = "chirp-v3",
    major_model_version: str = "v3.5",
    error_message: str = DEFAULT_CLIP_ERROR,
) -> Payload:
    """A clip as suno.com itself returns it: media at the top, details under `metadata`."""
    errored = phase == "error"
    return {
        "id": clip_id,
        "title": title,
        "handle": "yellowrobots6855",
        "status": phase,
        "user_id": "ee5e241a-ead6-435d-bea8-526c77c04c72",
        "is_liked": False,
        "metadata": {
            "tags": tags,
            "type": "gen",
            "prompt": lyrics,
            "stream": True,
            "history": None,
            "duration": duration if phase == "complete" else None,
            "error_type": "moderation" if errored else None,
            "error_message": error_message if errored else None,
            "concat_history": None,
            "refund_credits": errored,
            "audio_prompt_id": None,
            "gpt_description_prompt": None,
        },
        "reaction": None,
        "audio_url": audio_url_for(clip_id, phase),
        "image_url": image_url_for(clip_id, phase),
        "is_public": False,
        "video_url": video_url_for(clip_id, phase),
        "created_at": "2024-09-21T09:43:21.637Z",
        "is_trashed": False,
        "model_name": model_name,
        "play_count": 0,
        "display_name": "YellowRobots6855",
        "upvote_count": 0,
        "image_large_url": image_url_for(clip_id, phase, large=True),
        "is_video_pending": phase != "complete" and not errored,
        "is_handle_updated": False,
        "major_model_version": major_model_version,
    }


def flat_clip(
    clip_id: str,
    phase: ClipPhase = "complete",
    *,
    task_id: str = "",
    index: int = 1,
    title: str = DEFAULT_TITLE,
    tags: str = DEFAULT_TAGS,
    lyrics: str = DEFAULT_LYRICS,
    duration: float = 219.0,
    mv: str = "chirp-v4",
    error_message: str = DEFAULT_CLIP_ERROR,
) -> Payload:
    """A clip as relays built on the Suno-API project flatten it: `mv`, `msg`, `state`."""
    errored = phase == "error"
    return {
        "id": clip_id,
        "mv": mv,
        "msg": error_message if errored else "",
        "tags": tags,
        "state": _FLAT_STATE[phase],
        "title": title,
        "prompt": lyrics,
        "status": phase,
        "clip_id": clip_id,
        "task_id": f"{task_id}_{index}" if task_id else "",
        "duration": duration if phase == "complete" else None,
        "audio_url": audio_url_for(clip_id, phase),
        "image_url": image_url_for(clip_id, phase) or "",
        "video_url": video_url_for(clip_id, phase),
        "continue_at": None,
        "create_time": str(BASE_TIME + 30),
        "update_time": str(BASE_TIME + FINISHED_AFTER),
        "image_large_url": image_url_for(clip_id, phase, large=True) or "",
        "continue_clip_id": None,
        "gpt_description_prompt": None,
    }


def hybrid_clip(
    clip_id: str,
    phase: ClipPhase = "complete",
    *,
    task_id: str = "",
    index: int = 1,
    title: str = DEFAULT_TITLE,
    tags: str = DEFAULT_TAGS,
    lyrics: str = DEFAULT_LYRICS,
    duration: float = 201.0,
    mv: str = "chirp-v4",
    error_message: str = DEFAULT_CLIP_ERROR,
) -> Payload:
    """A flat clip that also carries the nested `metadata` and model fields."""
    clip = flat_clip(
        clip_id,
        phase,
        task_id=task_id,
        index=index,
        title=title,
        tags=tags,
        lyrics=lyrics,
        duration=duration,
        mv=mv,
        error_message=error_message,
    )
    nested = nested_clip(
        clip_id,
        phase,
        title=title,
        tags=tags,
        lyrics=lyrics,
        duration=duration,
        model_name=mv,
        major_model_version="v4",
        error_message=error_message,
    )
    clip.update(
        handle=nested["handle"],
        metadata=nested["metadata"],
        model_name=nested["model_name"],
        major_model_version=nested["major_model_version"],
        is_video_pending=nested["is_video_pending"],
    )
    return clip


def clip(
    family: ClipFamily,
    clip_id: str,
    phase: ClipPhase = "complete",
    *,
    task_id: str = "",
    index: int = 1,
    duration: float | None = None,
) -> Payload:
    """A clip of the given family with that family's defaults."""
    length = duration if duration is not None else _DURATIONS[(index - 1) % len(_DURATIONS)]
    if family == "nested":
        return nested_clip(clip_id, phase, duration=length)
    if family == "flat":
        return flat_clip(clip_id, phase, task_id=task_id, index=index, duration=length)
    return hybrid_clip(clip_id, phase, task_id=task_id, index=index, duration=length)


def task_payload(
    task_id: str,
    status: str,
    progress: str | EllipsisType | None = ...,
    clips: Sequence[Mapping[str, Any]] | None = None,
    *,
    lyrics: Mapping[str, Any] | None = None,
    action: str = "MUSIC",
    fail_reason: str = "",
    camel_case: bool = False,
    millis: bool = False,
    submit_time: int = BASE_TIME,
) -> Payload:
    """A task object (the envelope's `data`) as new-api style relays send it.

    `progress` defaults to what Suno relays report: "100%" once terminal (FAILURE too),
    "0%" before; `None` leaves the key out. Times are 0 until the task reaches them.
    """
    upper = status.upper()
    terminal = upper in ("SUCCESS", "FAILURE")
    started = upper in ("IN_PROGRESS", "SUCCESS", "FAILURE")
    scale = 1000 if millis else 1
    data: Any = None
    if clips is not None:
        data = [dict(item) for item in clips]
    elif lyrics is not None:
        data = dict(lyrics)
    payload: Payload = {
        "task_id": task_id,
        "notify_hook": "",
        "action": action,
        "status": status,
        "fail_reason": fail_reason,
        "submit_time": submit_time * scale,
        "start_time": (submit_time + STARTED_AFTER) * scale if started else 0,
        "finish_time": (submit_time + FINISHED_AFTER) * scale if terminal else 0,
    }
    if progress is ...:
        payload["progress"] = "100%" if terminal else "0%"
    elif progress is not None:
        payload["progress"] = progress
    payload["data"] = data
    return _camel(payload) if camel_case else payload


def envelope(data: Any, *, code: str | int = "success", message: str = "") -> Payload:
    """The relay's `{code, message, data}` wrapper around a task or a list of tasks."""
    return {"code": code, "message": message, "data": data}


def lyrics_data(
    lyrics_id: str = "9d1bd2b6-0b3c-4f7e-8a55-4c4b1f0d2e7a",
    phase: Literal["submitted", "running", "complete", "error"] = "complete",
    *,
    title: str = DEFAULT_TITLE,
    text: str = DEFAULT_LYRICS,
    tags: str | None = DEFAULT_TAGS,
    error_message: str = "Lyrics could not be generated for this prompt.",
) -> Payload:
    """The object a lyrics task carries in `data` (not a list)."""
    done = phase == "complete"
    data: Payload = {
        "id": lyrics_id,
        "text": text if done else "",
        "title": title if done else "",
        "status": phase,
    }
    if tags is not None:
        data["tags"] = tags if done else ""
    if phase == "error":
        data["error_message"] = error_message
    return data


def lyrics_payload(
    task_id: str,
    status: str = "SUCCESS",
    *,
    title: str = DEFAULT_TITLE,
    text: str = DEFAULT_LYRICS,
    tags: str | None = DEFAULT_TAGS,
    fail_reason: str = "",
    action: str = "LYRICS",
    camel_case: bool = False,
    millis: bool = False,
) -> Payload:
    """A lyrics task; `action=""` gives the shape older relays send."""
    upper = status.upper()
    phase: Literal["submitted", "running", "complete", "error"] = (
        "complete" if upper == "SUCCESS" else "error" if upper == "FAILURE" else "running"
    )
    lyrics = None
    if upper != "NOT_START":
        lyrics = lyrics_data(phase=phase, title=title, text=text, tags=tags)
    return task_payload(
        task_id,
        status,
        lyrics=lyrics,
        action=action,
        fail_reason=fail_reason,
        camel_case=camel_case,
        millis=millis,
    )


def music_timeline(
    task_id: str,
    family: ClipFamily = "nested",
    *,
    clip_count: int = 2,
    camel_case: bool = False,
    millis: bool = False,
) -> list[Payload]:
    """The payloads a music task goes through, one per poll, from submission to success.

    NOT_START (data null) → SUBMITTED → QUEUED → IN_PROGRESS (clips streaming) → SUCCESS.
    """
    ids = clip_ids_for(task_id, clip_count)

    def at(status: str, phase: ClipPhase | None) -> Payload:
        clips = None
        if phase is not None:
            clips = [
                clip(family, clip_id, phase, task_id=task_id, index=index + 1)
                for index, clip_id in enumerate(ids)
            ]
        return task_payload(task_id, status, clips=clips, camel_case=camel_case, millis=millis)

    return [
        at("NOT_START", None),
        at("SUBMITTED", "submitted"),
        at("QUEUED", "queued"),
        at("IN_PROGRESS", "streaming"),
        at("SUCCESS", "complete"),
    ]


def failure_timeline(
    task_id: str,
    family: ClipFamily = "nested",
    *,
    fail_reason: str = DEFAULT_FAIL_REASON,
    clip_count: int = 2,
    camel_case: bool = False,
    millis: bool = False,
) -> list[Payload]:
    """A music task that streams for a while and then fails: every clip ends in error."""
    ids = clip_ids_for(task_id, clip_count)

    def at(status: str, phase: ClipPhase | None, reason: str = "") -> Payload:
        clips = None
        if phase is not None:
            clips = [
                clip(family, clip_id, phase, task_id=task_id, index=index + 1)
                for index, clip_id in enumerate(ids)
            ]
        return task_payload(
            task_id,
            status,
            clips=clips,
            fail_reason=reason,
            camel_case=camel_case,
            millis=millis,
        )

    return [
        at("NOT_START", None),
        at("SUBMITTED", "submitted"),
        at("IN_PROGRESS", "streaming"),
        at("FAILURE", "error", fail_reason),
    ]


_CAMEL_KEYS = {
    "task_id": "taskId",
    "notify_hook": "notifyHook",
    "fail_reason": "failReason",
    "submit_time": "submitTime",
    "start_time": "startTime",
    "finish_time": "finishTime",
}


def _camel(payload: Payload) -> Payload:
    return {_CAMEL_KEYS.get(key, key): value for key, value in payload.items()}
