"""Relay bodies of every family normalize to the same Task / Clip / Lyrics values."""

from __future__ import annotations

import copy
import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.safety import safe_url
from bot.suno.models import (
    Clip,
    ClipState,
    NotATask,
    Task,
    TaskStatus,
    envelope_from,
    media_url,
    task_from,
    task_from_answer,
    task_from_data,
    tasks_from_data,
)

FIXTURES = Path(__file__).parent / "fixtures" / "relay"
NOT_A_TASK_FIXTURES = frozenset(
    {"error_task_not_exist.json", "error_fail.json", "error_openai_unauthorized.json"}
)
BATCH_FIXTURES = frozenset({"batch_bare_list.json", "batch_envelope.json"})
# A success envelope with no task in it: the relay has nothing to report yet.
EMPTY_FIXTURES = frozenset({"envelope_data_null.json"})
TASK_FIXTURES = sorted(
    path.name
    for path in FIXTURES.glob("*.json")
    if path.name not in NOT_A_TASK_FIXTURES | BATCH_FIXTURES | EMPTY_FIXTURES
)

STAGES = ("submitted", "queued", "streaming", "complete", "error")
FAMILIES = ("nested", "flat", "hybrid")

ERROR_MODERATION = "Unable to generate audio: your lyrics contain the name of an artist."
ERROR_GENERIC = "Oops! Seems like there was an error processing your request. Please try again."


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def parse(name: str) -> Task:
    return task_from_data(envelope_from(load(name)).data)


def every_task() -> list[tuple[str, Task]]:
    tasks = [(name, parse(name)) for name in TASK_FIXTURES]
    for name in sorted(BATCH_FIXTURES):
        tasks.extend((name, task) for task in tasks_from_data(envelope_from(load(name)).data))
    return tasks


def utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def assert_clip_invariants(clip: Clip) -> None:
    """What rendering relies on for every clip, whatever the relay sent."""
    for url in (clip.audio_url, clip.video_url, clip.cover_url, clip.stream_url):
        assert url is None or safe_url(url) == url
    if clip.audio_url is not None:
        assert clip.audio_url.strip()
        assert "None." not in clip.audio_url
        assert "audiopipe" not in clip.audio_url
    if clip.video_url is not None:
        assert "None." not in clip.video_url
    if clip.stream_url is not None:
        assert clip.state not in (ClipState.COMPLETE, ClipState.ERROR)
    for text in (clip.title, clip.tags, clip.lyrics, clip.model, clip.error_message):
        assert text is None or (isinstance(text, str) and text.strip())
    assert clip.duration is None or clip.duration > 0
    assert isinstance(clip.id, str) and clip.id


def assert_task_invariants(task: Task) -> None:
    assert isinstance(task.status, TaskStatus)
    assert task.is_terminal == (task.status in (TaskStatus.SUCCESS, TaskStatus.FAILURE))
    assert task.progress is None or 0.0 <= task.progress <= 100.0
    for moment in (task.submitted_at, task.started_at, task.finished_at):
        assert moment is None or moment.utcoffset() == timedelta(0)
    assert not (task.clips and task.lyrics)
    assert task.result_url is None or safe_url(task.result_url) == task.result_url
    assert task.failure_name is None or (
        task.status is TaskStatus.FAILURE and task.failure_name.strip()
    )
    for clip in task.clips:
        assert_clip_invariants(clip)


# --- the relay's own documented examples -------------------------------------------------


def test_new_api_seed_normalizes_nested_clips() -> None:
    task = parse("seed_new_api_nested_success.json")

    assert task.task_id == "2a145658-3342-4228-b779-b8323a2b77df"
    assert (task.status, task.raw_status, task.action) == (TaskStatus.SUCCESS, "SUCCESS", "MUSIC")
    assert task.is_terminal
    assert task.fail_reason is None
    assert task.progress == 100.0
    assert task.submitted_at == datetime(2024, 9, 21, 9, 43, 21, tzinfo=UTC)
    assert task.started_at == datetime(2024, 9, 21, 9, 43, 32, tzinfo=UTC)
    assert task.finished_at == datetime(2024, 9, 21, 9, 44, 57, tzinfo=UTC)
    assert task.lyrics is None
    assert [clip.id for clip in task.clips] == [
        "3435e194-50e7-4edc-9442-bffe072fccfc",
        "1d01fcc8-71bf-4e0f-ab0a-880a0580e6fe",
    ]
    first, second = task.clips
    assert first == Clip(
        id="3435e194-50e7-4edc-9442-bffe072fccfc",
        state=ClipState.COMPLETE,
        raw_state="complete",
        title="快乐周末",
        tags="heartfelt salsa",
        lyrics=None,
        duration=128.92,
        model="chirp-v3 (v3.5)",
        cover_url="https://cdn2.suno.ai/image_large_3435e194-50e7-4edc-9442-bffe072fccfc.jpeg",
        audio_url="https://cdn1.suno.ai/3435e194-50e7-4edc-9442-bffe072fccfc.mp3",
        stream_url=None,
        video_url="https://cdn1.suno.ai/3435e194-50e7-4edc-9442-bffe072fccfc.mp4",
        error_message=None,
    )
    assert second.duration == 148.28
    assert second.audio_url == "https://cdn1.suno.ai/1d01fcc8-71bf-4e0f-ab0a-880a0580e6fe.mp3"


def test_flat_seed_takes_lyrics_model_and_duration_from_top_level_keys() -> None:
    task = parse("seed_flat_success.json")

    assert task.task_id == "ba46ad15-07ce-41a6-b68d-196321dc00d5"
    assert task.status is TaskStatus.SUCCESS
    assert task.finished_at == utc(1733717767)
    assert len(task.clips) == 2
    first = task.clips[0]
    assert first.id == "a06015d0-9e04-4f30-85db-401494940394"
    assert (first.state, first.raw_state) == (ClipState.COMPLETE, "complete")
    assert first.title == "City Lights"
    assert first.tags == "emotional punk"
    assert first.lyrics is not None
    assert first.lyrics.startswith("[Verse]\nWalking down the streets")
    assert first.lyrics.endswith("Wiping away my fears")
    assert first.duration == 219.0
    assert first.model == "chirp-v4"
    assert first.cover_url == (
        "https://cdn2.suno.ai/image_large_a06015d0-9e04-4f30-85db-401494940394.jpeg"
    )
    assert first.audio_url == "https://cdn1.suno.ai/a06015d0-9e04-4f30-85db-401494940394.mp3"
    assert first.video_url == "https://cdn1.suno.ai/a06015d0-9e04-4f30-85db-401494940394.mp4"
    assert first.error_message is None
    assert task.clips[1].duration == 201.0


def test_second_nested_seed_has_one_clip_with_english_title() -> None:
    task = parse("seed_gpt_ge_nested_success.json")

    assert task.status is TaskStatus.SUCCESS
    assert len(task.clips) == 1
    assert task.clips[0].title == "Happy Weekend"
    assert task.clips[0].state is ClipState.COMPLETE


# --- each clip family through each clip stage --------------------------------------------

TASK_STATUS_BY_STAGE = {
    "submitted": TaskStatus.SUBMITTED,
    "queued": TaskStatus.QUEUED,
    "streaming": TaskStatus.IN_PROGRESS,
    "complete": TaskStatus.SUCCESS,
    "error": TaskStatus.FAILURE,
}
CLIP_STATE_BY_STAGE = {
    "submitted": ClipState.SUBMITTED,
    "queued": ClipState.QUEUED,
    "streaming": ClipState.STREAMING,
    "complete": ClipState.COMPLETE,
    "error": ClipState.ERROR,
}
# family -> title, tags, lyrics opening, model, error message, durations when complete
FAMILY_VALUES: dict[str, tuple[str, str, str, str, str, tuple[float, float]]] = {
    "nested": (
        "Coffee Gone Cold",
        "lo-fi jazz, rainy, mellow piano",
        "[Verse]\nRain on the window",
        "chirp-auk (v4.5)",
        ERROR_MODERATION,
        (142.36, 167.8),
    ),
    "flat": (
        "Borrowed Guitar",
        "acoustic country, warm",
        "[Verse]\nDusty road",
        "chirp-v4",
        ERROR_GENERIC,
        (187.0, 203.0),
    ),
    "hybrid": (
        "Neon Harbor",
        "synthwave, retro, driving bass",
        "[Verse]\nRain on the window",
        "chirp-v4",
        ERROR_GENERIC,
        (201.12, 176.4),
    ),
}


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("family", FAMILIES)
def test_clip_family_resolves_fields_at_each_stage(family: str, stage: str) -> None:
    task = parse(f"{family}_{stage}.json")
    title, tags, lyrics_start, model, error, durations = FAMILY_VALUES[family]

    assert task.status is TASK_STATUS_BY_STAGE[stage]
    assert task.is_terminal == (stage in ("complete", "error"))
    assert task.submitted_at == utc(1733717567)
    assert task.started_at == (None if stage == "submitted" else utc(1733717571))
    assert task.finished_at == (utc(1733717767) if stage in ("complete", "error") else None)
    assert len(task.clips) == 2
    for clip, duration in zip(task.clips, durations, strict=True):
        assert clip.state is CLIP_STATE_BY_STAGE[stage]
        assert clip.title == title
        assert clip.tags == tags
        assert clip.lyrics is not None and clip.lyrics.startswith(lyrics_start)
        assert clip.model == model
        has_art = stage in ("streaming", "complete")
        large_cover = f"https://cdn2.suno.ai/image_large_{clip.id}.jpeg"
        assert clip.cover_url == (large_cover if has_art else None)
        if stage == "complete":
            assert clip.audio_url == f"https://cdn1.suno.ai/{clip.id}.mp3"
            assert clip.video_url == f"https://cdn1.suno.ai/{clip.id}.mp4"
            assert clip.duration == duration
        else:
            assert clip.audio_url is None
            assert clip.video_url is None
            assert clip.duration is None
        if stage == "streaming":
            assert clip.stream_url == f"https://audiopipe.suno.ai/?item_id={clip.id}"
        else:
            assert clip.stream_url is None
        assert clip.error_message == (error if stage == "error" else None)


def test_flat_clip_with_only_a_failed_state_is_an_error() -> None:
    first, second = parse("flat_error.json").clips

    assert (first.state, first.raw_state) == (ClipState.ERROR, "error")
    assert (second.state, second.raw_state) == (ClipState.ERROR, "error")


def test_failed_state_wins_over_a_status_that_still_says_complete() -> None:
    body = load("flat_complete.json")["data"]
    body["data"][0]["state"] = "failed"

    clip = task_from_data(body).clips[0]

    assert (clip.state, clip.raw_state) == (ClipState.ERROR, "failed")


def test_flat_task_failure_keeps_the_relay_fail_reason() -> None:
    task = parse("flat_error.json")

    assert task.fail_reason == "Unable to generate audio"
    assert task.progress == 100.0


def test_nested_failure_without_fail_reason_leaves_the_clip_message() -> None:
    task = parse("nested_error.json")

    assert task.fail_reason is None
    assert task.clips[0].error_message == ERROR_MODERATION


def test_error_type_stands_in_when_a_failed_clip_has_no_message() -> None:
    body = load("nested_error.json")["data"]
    body["data"][0]["metadata"]["error_message"] = None

    assert task_from_data(body).clips[0].error_message == "moderation_failure"


def test_stream_link_of_a_finished_clip_is_dropped() -> None:
    body = load("nested_streaming.json")["data"]
    body["data"][0]["status"] = "complete"

    clip = task_from_data(body).clips[0]

    assert clip.audio_url is None
    assert clip.stream_url is None


# --- before the first poll, lyrics tasks --------------------------------------------------


@pytest.mark.parametrize(
    ("name", "status", "progress"),
    [
        ("data_null_not_start.json", TaskStatus.NOT_START, None),
        ("data_null_submitted.json", TaskStatus.SUBMITTED, 0.0),
    ],
)
def test_null_data_before_first_poll_gives_a_task_without_clips(
    name: str, status: TaskStatus, progress: float | None
) -> None:
    task = parse(name)

    assert task.status is status
    assert not task.is_terminal
    assert task.progress == progress
    assert task.clips == ()
    assert task.lyrics is None
    assert task.submitted_at == utc(1733717567)
    assert task.started_at is None
    assert task.finished_at is None


@pytest.mark.parametrize(
    ("name", "action", "title", "text_start", "tags"),
    [
        (
            "lyrics_action_lyrics.json",
            "LYRICS",
            "Where the River Bends",
            "[Verse]\nDusty road",
            None,
        ),
        (
            "lyrics_action_empty.json",
            "",
            "Hold On",
            "[Verse]\nRain on the window",
            "indie pop, dreamy",
        ),
    ],
)
def test_lyrics_object_is_read_whatever_the_action_says(
    name: str, action: str, title: str, text_start: str, tags: str | None
) -> None:
    task = parse(name)

    assert task.action == action
    assert task.status is TaskStatus.SUCCESS
    assert task.clips == ()
    assert task.lyrics is not None
    assert task.lyrics.id == load(name)["data"]["data"]["id"]
    assert task.lyrics.title == title
    assert task.lyrics.text is not None and task.lyrics.text.startswith(text_start)
    assert task.lyrics.tags == tags
    assert task.lyrics.raw_state == "complete"
    assert task.lyrics.error_message is None
    assert task.finished_at == utc(1733720019)


def test_failed_lyrics_carry_their_error_message_and_no_blank_text() -> None:
    task = parse("lyrics_failure.json")

    assert task.status is TaskStatus.FAILURE
    assert task.lyrics is not None
    assert task.lyrics.error_message == (
        "Lyrics could not be generated: the prompt was flagged by moderation."
    )
    assert task.lyrics.text is None
    assert task.lyrics.title is None
    assert task.lyrics.raw_state == "error"


def test_running_lyrics_task_is_not_terminal() -> None:
    task = parse("lyrics_running.json")

    assert not task.is_terminal
    assert task.lyrics is not None
    assert task.lyrics.raw_state == "running"


def test_empty_object_data_is_neither_clips_nor_lyrics() -> None:
    task = task_from_data({"task_id": "t1", "status": "IN_PROGRESS", "data": {}})

    assert task.clips == ()
    assert task.lyrics is None


def test_object_data_with_a_clips_list_gives_clips() -> None:
    clips = load("nested_complete.json")["data"]["data"]
    task = task_from_data({"task_id": "t1", "status": "SUCCESS", "data": {"clips": clips}})

    assert [clip.id for clip in task.clips] == [clip["id"] for clip in clips]
    assert task.lyrics is None


# --- camelCase, numeric codes, timestamps -------------------------------------------------


def test_camel_case_relay_reads_like_snake_case() -> None:
    body = load("camel_case_success.json")
    task = parse("camel_case_success.json")
    clip_id = body["data"]["data"][0]["id"]

    assert task.task_id == body["data"]["taskId"]
    assert task.status is TaskStatus.SUCCESS
    assert task.submitted_at == datetime(2024, 12, 9, 4, 12, 47, 123000, tzinfo=UTC)
    assert task.started_at == datetime(2024, 12, 9, 4, 12, 51, 456000, tzinfo=UTC)
    assert task.finished_at == datetime(2024, 12, 9, 4, 16, 7, 789000, tzinfo=UTC)
    (clip,) = task.clips
    assert clip.audio_url == f"https://cdn1.suno.ai/{clip_id}.mp3"
    assert clip.video_url == f"https://cdn1.suno.ai/{clip_id}.mp4"
    assert clip.cover_url == f"https://cdn2.suno.ai/image_large_{clip_id}.jpeg"
    assert clip.model == "chirp-v4"
    assert clip.tags == "folk pop, whistling, upbeat"
    assert clip.lyrics is not None and clip.lyrics.startswith("[Verse]\nDusty road")
    assert clip.duration == 158.04


def test_camel_case_failure_reads_clip_id_and_error_message() -> None:
    body = load("camel_case_failure.json")
    task = parse("camel_case_failure.json")

    assert task.status is TaskStatus.FAILURE
    assert task.fail_reason is None
    (clip,) = task.clips
    assert clip.id == body["data"]["data"][0]["clipId"]
    assert clip.state is ClipState.ERROR
    assert clip.audio_url is None
    assert clip.cover_url is None
    assert clip.error_message == "Audio generation failed. Credits have been refunded."


def test_camel_case_fail_reason_is_read() -> None:
    task = task_from_data({"taskId": "t1", "status": "FAILURE", "failReason": "quota exceeded"})

    assert task.fail_reason == "quota exceeded"


@pytest.mark.parametrize(
    ("name", "code"), [("code_numeric_1.json", "1"), ("code_numeric_200.json", "200")]
)
def test_numeric_envelope_codes_are_success(name: str, code: str) -> None:
    envelope = envelope_from(load(name))

    assert envelope.ok
    assert envelope.code == code
    assert task_from_data(envelope.data).clips


def test_millisecond_timestamps_become_aware_utc_datetimes() -> None:
    task = parse("ms_timestamps.json")

    assert task.submitted_at == datetime(2024, 12, 9, 4, 12, 47, 250000, tzinfo=UTC)
    assert task.started_at == datetime(2024, 12, 9, 4, 12, 51, 500000, tzinfo=UTC)
    assert task.finished_at == datetime(2024, 12, 9, 4, 16, 7, 999000, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1733717567, datetime(2024, 12, 9, 4, 12, 47, tzinfo=UTC)),
        ("1733717567", datetime(2024, 12, 9, 4, 12, 47, tzinfo=UTC)),
        (1733717567.5, datetime(2024, 12, 9, 4, 12, 47, 500000, tzinfo=UTC)),
        (1733717567000, datetime(2024, 12, 9, 4, 12, 47, tzinfo=UTC)),
        (1733717567000000, datetime(2024, 12, 9, 4, 12, 47, tzinfo=UTC)),
        ("2024-12-09T04:12:47.402Z", datetime(2024, 12, 9, 4, 12, 47, 402000, tzinfo=UTC)),
        ("2024-12-09T12:12:47+08:00", datetime(2024, 12, 9, 4, 12, 47, tzinfo=UTC)),
        ("2024-12-09T04:12:47", datetime(2024, 12, 9, 4, 12, 47, tzinfo=UTC)),
        (0, None),
        ("0", None),
        (-5, None),
        ("", None),
        ("yesterday", None),
        (None, None),
        (True, None),
        pytest.param(10**400, None, id="int-beyond-float-range"),
        ([1733717567], None),
    ],
)
def test_timestamps_normalize_to_utc_or_none(value: object, expected: datetime | None) -> None:
    task = task_from_data({"task_id": "t1", "status": "SUCCESS", "submit_time": value})

    assert task.submitted_at == expected
    if task.submitted_at is not None:
        assert task.submitted_at.utcoffset() == timedelta(0)


# --- relays of 2026: official-API channels and forks --------------------------------------

MS_SUBMIT = datetime(2026, 1, 15, 10, 30, 5, 123000, tzinfo=UTC)
MS_START = datetime(2026, 1, 15, 10, 30, 9, 412000, tzinfo=UTC)
MS_FINISH = datetime(2026, 1, 15, 10, 32, 37, tzinfo=UTC)
FIRST_CLIP = "0b6c5e1a-7d42-4f1e-9a3b-6c8d2e4f7a91"
SECOND_CLIP = "5f2d8c3b-1e6a-4b9d-8c7f-3a2e1d0b9c84"


def test_pending_is_queued_and_not_terminal() -> None:
    task = parse("status_pending.json")

    assert (task.status, task.raw_status) == (TaskStatus.QUEUED, "PENDING")
    assert not task.is_terminal
    assert task.submitted_at == MS_SUBMIT
    assert task.started_at is None


def test_text_success_means_lyrics_ready_and_still_running() -> None:
    task = parse("status_text_success.json")

    assert (task.status, task.raw_status) == (TaskStatus.LYRICS_READY, "TEXT_SUCCESS")
    assert not task.is_terminal
    assert [clip.title for clip in task.clips] == ["Paper Lanterns", "Paper Lanterns"]
    for clip in task.clips:
        assert (clip.state, clip.raw_state) == (ClipState.UNKNOWN, "")
        assert clip.lyrics is not None and clip.lyrics.startswith("[Verse]\nPaper lanterns")
        assert (clip.audio_url, clip.stream_url, clip.cover_url) == (None, None, None)


def test_first_success_keeps_running_with_its_finished_clip_complete() -> None:
    task = parse("status_first_success.json")

    assert (task.status, task.raw_status) == (TaskStatus.FIRST_CLIPS_READY, "FIRST_SUCCESS")
    assert not task.is_terminal
    assert (task.submitted_at, task.started_at, task.finished_at) == (MS_SUBMIT, MS_START, None)
    done, streaming = task.clips
    assert done == Clip(
        id=FIRST_CLIP,
        state=ClipState.COMPLETE,
        raw_state="",
        title="Paper Lanterns",
        tags="dream pop, shimmering synths, airy female vocals",
        lyrics=done.lyrics,
        duration=198.44,
        model="chirp-crow (v5)",
        cover_url="https://tempfile.aiquickdraw.com/s/0b6c5e1a7d424f1e9a3b6c8d2e4f7a91_cover.jpeg",
        audio_url="https://tempfile.aiquickdraw.com/r/0b6c5e1a7d424f1e9a3b6c8d2e4f7a91.mp3",
        stream_url=None,
        video_url=None,
        error_message=None,
    )
    assert streaming.id == SECOND_CLIP
    assert streaming.state is ClipState.STREAMING
    assert streaming.audio_url is None
    assert streaming.stream_url == (
        "https://mfile.erweima.ai/NWYyZDhjM2ItMWU2YS00YjlkLThjN2YtM2EyZTFkMGI5Yzg0"
    )
    assert streaming.duration is None


def test_camel_case_clips_without_a_status_are_complete_once_their_mp3_exists() -> None:
    task = parse("official_camel_success.json")

    assert task.task_id == "e7a1c4f92b3d4c6e8f0a1b2c3d4e5f60"
    assert task.status is TaskStatus.SUCCESS
    assert task.finished_at == MS_FINISH
    assert [clip.state for clip in task.clips] == [ClipState.COMPLETE, ClipState.COMPLETE]
    assert [clip.duration for clip in task.clips] == [198.44, 214.2]
    assert [clip.model for clip in task.clips] == ["chirp-fenix (v5.5)", "chirp-fenix (v5.5)"]
    assert all(clip.stream_url is None for clip in task.clips)
    assert task.clips[1].audio_url == (
        "https://tempfile.aiquickdraw.com/r/5f2d8c3b1e6a4b9d8c7f3a2e1d0b9c84.mp3"
    )


@pytest.mark.parametrize(
    ("name", "raw", "reason"),
    [
        ("status_create_task_failed.json", "CREATE_TASK_FAILED", None),
        (
            "status_generate_audio_failed.json",
            "GENERATE_AUDIO_FAILED",
            "Audio generation failed: the upstream model returned no audio. "
            "Credits have been refunded.",
        ),
        ("status_generate_lyrics_failed.json", "GENERATE_LYRICS_FAILED", None),
        ("status_callback_exception.json", "CALLBACK_EXCEPTION", None),
        ("status_sensitive_word_error.json", "SENSITIVE_WORD_ERROR", None),
    ],
)
def test_named_failures_are_failures_that_keep_their_name(
    name: str, raw: str, reason: str | None
) -> None:
    task = parse(name)

    assert task.status is TaskStatus.FAILURE
    assert task.is_terminal
    assert task.raw_status == raw
    assert task.failure_name == raw
    assert task.fail_reason == reason


@pytest.mark.parametrize(
    ("raw", "status", "name"),
    [
        ("UPLOAD_AUDIO_FAILED", TaskStatus.FAILURE, "UPLOAD_AUDIO_FAILED"),
        ("content_policy_error", TaskStatus.FAILURE, "content_policy_error"),
        (" Generate-Audio-Failed ", TaskStatus.FAILURE, "Generate-Audio-Failed"),
        ("FAILURE", TaskStatus.FAILURE, None),
        ("failed", TaskStatus.FAILURE, None),
        ("error", TaskStatus.FAILURE, None),
        ("_FAILED", TaskStatus.UNKNOWN, None),
        ("FAILED_SOON", TaskStatus.UNKNOWN, None),
    ],
)
def test_any_failed_or_error_name_is_a_failure_and_generic_words_carry_no_name(
    raw: str, status: TaskStatus, name: str | None
) -> None:
    task = task_from_data({"task_id": "t1", "status": raw})

    assert task.status is status
    assert task.failure_name == name


def test_empty_success_envelope_is_a_task_not_started_yet() -> None:
    envelope = envelope_from(load("envelope_data_null.json"))

    task = task_from_answer(envelope.data, "8f3b2c1d9e4a4b6c8d7e5f0a1b2c3d4e")

    assert envelope.ok
    assert task.task_id == "8f3b2c1d9e4a4b6c8d7e5f0a1b2c3d4e"
    assert task.status is TaskStatus.NOT_START
    assert not task.is_terminal
    assert (task.clips, task.lyrics, task.result_url) == ((), None, None)


def test_success_with_null_data_keeps_its_result_url() -> None:
    task = parse("success_result_url.json")

    assert task.status is TaskStatus.SUCCESS
    assert task.clips == ()
    assert task.lyrics is None
    assert task.result_url == "https://cdn1.suno.ai/0b6c5e1a-7d42-4f1e-9a3b-6c8d2e4f7a91.mp3"


@pytest.mark.parametrize(
    "url", ["https://cdn1.suno.ai/None.mp3", "javascript:alert(1)", "", "  ", 42, None]
)
def test_result_url_that_is_no_file_or_not_http_is_dropped(url: object) -> None:
    body = load("success_result_url.json")["data"]
    body["result_url"] = url

    assert task_from_data(body).result_url is None


def test_camel_case_result_url_is_read() -> None:
    body = load("success_result_url.json")["data"]
    body["resultUrl"] = body.pop("result_url")

    assert task_from_data(body).result_url == body["resultUrl"]


@pytest.mark.parametrize(
    ("model_name", "version", "shown"),
    [
        ("chirp-auk", None, "chirp-auk (v4.5)"),
        ("chirp-auk-turbo", None, "chirp-auk-turbo (v4.5-all)"),
        ("chirp-bluejay", None, "chirp-bluejay (v4.5+)"),
        ("chirp-crow", None, "chirp-crow (v5)"),
        ("chirp-crow", "v5", "chirp-crow (v5)"),
        ("chirp-v5", None, "chirp-v5"),
        ("chirp-fenix", None, "chirp-fenix (v5.5)"),
        ("chirp-v5-5", None, "chirp-v5-5 (v5.5)"),
        ("chirp-v55", None, "chirp-v55 (v5.5)"),
        ("Chirp-Fenix", None, "Chirp-Fenix (v5.5)"),
        ("chirp-auk-turbo", "v4.5", "chirp-auk-turbo (v4.5-all)"),
        ("chirp-v3", "v3.5", "chirp-v3 (v3.5)"),
        ("chirp-stem", None, "chirp-stem"),
        ("chirp-hawk_*", None, "chirp-hawk_*"),
    ],
)
def test_model_names_are_shown_with_their_public_version(
    model_name: str, version: str | None, shown: str
) -> None:
    body = load("nested_complete.json")["data"]
    body["data"][0]["model_name"] = model_name
    body["data"][0]["major_model_version"] = version

    assert task_from_data(body).clips[0].model == shown


# --- status and progress ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "raw", "status"),
    [
        ("status_processing.json", "processing", TaskStatus.IN_PROGRESS),
        ("status_complete.json", "complete", TaskStatus.SUCCESS),
        ("status_succeeded.json", "succeeded", TaskStatus.SUCCESS),
        ("status_error.json", "error", TaskStatus.FAILURE),
        ("status_failed.json", "failed", TaskStatus.FAILURE),
        ("status_in_progress.json", "In_Progress", TaskStatus.IN_PROGRESS),
        ("status_rendering.json", "RENDERING", TaskStatus.UNKNOWN),
    ],
)
def test_status_words_map_case_insensitively_and_keep_the_raw_value(
    name: str, raw: str, status: TaskStatus
) -> None:
    task = parse(name)

    assert task.status is status
    assert task.raw_status == raw
    assert task.is_terminal == (status in (TaskStatus.SUCCESS, TaskStatus.FAILURE))


def test_unknown_status_is_not_terminal() -> None:
    task = parse("status_rendering.json")

    assert task.status is TaskStatus.UNKNOWN
    assert not task.is_terminal


@pytest.mark.parametrize(
    ("name", "progress"),
    [
        ("progress_percent_45.json", 45.0),
        ("progress_empty.json", None),
        ("progress_absent.json", None),
        ("progress_number_45.json", 45.0),
        ("failure_progress_100.json", 100.0),
    ],
)
def test_progress_is_a_number_or_none(name: str, progress: float | None) -> None:
    assert parse(name).progress == progress


def test_full_progress_on_failure_stays_a_failure() -> None:
    task = parse("failure_progress_100.json")

    assert task.progress == 100.0
    assert task.status is TaskStatus.FAILURE
    assert task.is_terminal
    assert task.fail_reason == "The prompt was rejected by the upstream content filter."


@pytest.mark.parametrize(
    ("value", "expected"),
    [("150%", 100.0), (-3, 0.0), ("12.5 %", 12.5), ("abc", None), ({"percent": 45}, None)],
)
def test_progress_is_clamped_or_dropped(value: object, expected: float | None) -> None:
    assert task_from_data(
        {"task_id": "t1", "status": "IN_PROGRESS", "progress": value}
    ).progress == (expected)


# --- batch answers ------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(BATCH_FIXTURES))
def test_batch_answer_gives_every_task_in_order(name: str) -> None:
    envelope = envelope_from(load(name))

    tasks = tasks_from_data(envelope.data)

    assert envelope.ok
    assert [task.status for task in tasks] == [
        TaskStatus.SUCCESS,
        TaskStatus.IN_PROGRESS,
        TaskStatus.SUCCESS,
    ]
    assert [len(task.clips) for task in tasks] == [2, 1, 0]
    assert tasks[1].clips[0].stream_url is not None
    assert tasks[2].lyrics is not None and tasks[2].lyrics.title == "Hold On"


def test_batch_skips_items_that_are_not_tasks() -> None:
    one = load("nested_complete.json")["data"]

    tasks = tasks_from_data([None, "task", 3, {"status": "SUCCESS"}, one])

    assert [task.task_id for task in tasks] == [one["task_id"]]


@pytest.mark.parametrize("data", [None, {"task_id": "t1"}, "t1"])
def test_batch_that_is_not_a_list_raises_not_a_task(data: object) -> None:
    with pytest.raises(NotATask):
        tasks_from_data(data)


# --- hostile values -----------------------------------------------------------------------


def test_long_text_is_kept_whole_for_rendering_to_truncate() -> None:
    clip = parse("hostile_long_tags.json").clips[0]

    assert clip.tags is not None and len(clip.tags) == 10_000
    assert clip.title == "T" * 300
    assert clip.lyrics is not None and len(clip.lyrics) > 4096


def test_only_http_urls_survive() -> None:
    task = parse("hostile_urls.json")

    assert len(task.clips) == 11
    for clip in task.clips:
        assert (clip.audio_url, clip.stream_url, clip.video_url, clip.cover_url) == (
            None,
            None,
            None,
            None,
        ), clip.title


def test_wrong_types_degrade_instead_of_raising() -> None:
    task = parse("hostile_wrong_types.json")

    assert task.status is TaskStatus.SUCCESS
    assert task.progress is None
    assert task.fail_reason is None
    assert task.submitted_at == utc(1733717567)
    assert task.started_at is None
    assert task.finished_at is None
    assert len(task.clips) == 2
    first, second = task.clips
    assert first.title == "1999"
    assert first.tags is None
    assert first.duration == 12.5
    assert first.lyrics is None
    assert first.model is None
    assert (first.audio_url, first.cover_url, first.video_url) == (None, None, None)
    assert second.title is None
    assert (second.state, second.raw_state) == (ClipState.UNKNOWN, "7")
    assert second.duration is None
    assert second.lyrics is None
    assert second.error_message is None


def test_unknown_extra_fields_are_ignored() -> None:
    body = load("hostile_extra_fields.json")
    task = parse("hostile_extra_fields.json")

    assert envelope_from(body).ok
    assert task.status is TaskStatus.SUCCESS
    (clip,) = task.clips
    assert clip.tags == "blues, harmonica"
    assert clip.duration == 199.9
    assert clip.audio_url == f"https://cdn1.suno.ai/{clip.id}.mp3"


def test_mentions_and_markdown_are_kept_verbatim() -> None:
    clip = parse("hostile_mentions_markdown.json").clips[0]

    assert clip.title == "@everyone **FREE NITRO** [click](https://evil.example) <@&123>"
    assert clip.tags == "`code`, ||spoiler||, @here"


def test_missing_clip_id_falls_back_to_position() -> None:
    task = task_from_data({"task_id": "t1", "status": "IN_PROGRESS", "data": [{}, {}]})

    assert [clip.id for clip in task.clips] == ["1", "2"]
    assert all(clip.state is ClipState.UNKNOWN for clip in task.clips)


def test_numeric_task_id_becomes_text() -> None:
    assert task_from_data({"task_id": 1234567, "status": "QUEUED"}).task_id == "1234567"


# --- envelopes and bodies that are not tasks ----------------------------------------------


@pytest.mark.parametrize("code", ["success", "SUCCESS", " success ", 1, 200, "1", "200"])
def test_success_codes_make_the_envelope_ok(code: object) -> None:
    assert envelope_from({"code": code, "message": "", "data": None}).ok


@pytest.mark.parametrize(
    "code", ["fail", "task_not_exist", "error", "", None, 401, 500, True, {"a": 1}]
)
def test_other_codes_make_the_envelope_not_ok(code: object) -> None:
    assert not envelope_from({"code": code, "message": "", "data": None}).ok


@pytest.mark.parametrize("name", sorted(NOT_A_TASK_FIXTURES))
def test_error_bodies_are_not_ok_and_carry_no_task(name: str) -> None:
    envelope = envelope_from(load(name))

    assert not envelope.ok
    with pytest.raises(NotATask):
        task_from_data(envelope.data)


def test_task_not_exist_keeps_its_code_and_message() -> None:
    envelope = envelope_from(load("error_task_not_exist.json"))

    assert (envelope.code, envelope.message) == ("task_not_exist", "task_not_exist")


def test_bare_task_without_envelope_is_its_own_data() -> None:
    body = load("nested_complete.json")["data"]

    envelope = envelope_from(body)

    assert envelope.ok
    assert task_from_data(envelope.data).task_id == body["task_id"]


@pytest.mark.parametrize(
    "body",
    [
        None,
        "",
        "<html><body>502 Bad Gateway</body></html>",
        42,
        3.5,
        True,
        {},
        {"error": {"message": "invalid token", "type": "new_api_error"}},
        {"status": 503, "error": "Service Unavailable"},
        {"code": "success", "message": "", "data": None},
        {"code": "success", "message": "", "data": "2a145658-3342-4228-b779-b8323a2b77df"},
        {"code": "success", "message": "", "data": {"id": "x", "status": "complete"}},
    ],
)
def test_body_that_is_not_a_task_raises_not_a_task(body: object) -> None:
    with pytest.raises(NotATask):
        task_from_data(envelope_from(body).data)


@pytest.mark.parametrize("data", [None, [], ["t1"], "t1", 7, {"status": "SUCCESS"}])
def test_task_from_data_rejects_what_is_not_one_task(data: object) -> None:
    with pytest.raises(NotATask):
        task_from_data(data)


def test_task_from_reads_a_plain_mapping() -> None:
    task = task_from({"task_id": "t1", "status": "queued"})

    assert (task.task_id, task.status) == ("t1", TaskStatus.QUEUED)


# --- URL helpers --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://cdn1.suno.ai/3435e194-50e7-4edc-9442-bffe072fccfc.mp3",
        "http://relay.example:8080/v1",
        "https://audiopipe.suno.ai/?item_id=3435e194-50e7-4edc-9442-bffe072fccfc",
        "https://cdn2.suno.ai/image_large_x.jpeg?width=512&v=2#top",
    ],
)
def test_safe_url_keeps_http_urls(url: str) -> None:
    assert safe_url(url) == url
    assert safe_url(f"  {url}\n") == url


@pytest.mark.parametrize(
    "url",
    [
        None,
        42,
        "",
        "   ",
        "javascript:alert(1)",
        "JAVASCRIPT:alert(1)",
        "data:image/png;base64,iVBORw0KGgo=",
        "ftp://cdn1.suno.ai/clip.mp3",
        "file:///etc/passwd",
        "https://cdn1.suno.ai/my song.mp3",
        'https://cdn1.suno.ai/a".mp3',
        "https://cdn1.suno.ai/a'.mp3",
        "https://cdn1.suno.ai/<b>.mp3",
        "https://cdn1.suno.ai\\@evil.example/x.mp3",
        "https://cdn1.suno.ai/x.mp3\r\nX-Injected: 1",
        "//cdn1.suno.ai/clip.mp3",
        "/clip.mp3",
        "https:///clip.mp3",
        "https://cdn1.suno.ai:99999/clip.mp3",
        "https://[::1/clip.mp3",
        "https://cdn1.suno.ai/" + "a" * 2100,
    ],
)
def test_safe_url_drops_everything_else(url: object) -> None:
    assert safe_url(url) is None


@pytest.mark.parametrize(
    "url",
    [
        "https://cdn1.suno.ai/None.mp3",
        "https://cdn1.suno.ai/None.mp4",
        "https://cdn1.suno.ai/none.mp3",
        "https://cdn2.suno.ai/null.jpeg",
        "https://cdn1.suno.ai/undefined",
        "https://cdn1.suno.ai/",
        "https://cdn1.suno.ai",
        "javascript:alert(1)",
        "",
    ],
)
def test_media_url_drops_placeholders(url: str) -> None:
    assert media_url(url) is None


def test_media_url_keeps_real_files_and_stream_links() -> None:
    mp3 = "https://cdn1.suno.ai/3435e194-50e7-4edc-9442-bffe072fccfc.mp3"
    stream = "https://audiopipe.suno.ai/?item_id=3435e194-50e7-4edc-9442-bffe072fccfc"

    assert media_url(mp3) == mp3
    assert media_url(stream) == stream


# --- properties over every fixture and over random damage ---------------------------------


def test_every_fixture_task_satisfies_the_rendering_invariants() -> None:
    tasks = every_task()

    assert len(tasks) == len(TASK_FIXTURES) + 6
    for name, task in tasks:
        try:
            assert_task_invariants(task)
        except AssertionError as exc:
            raise AssertionError(f"{name}: {exc}") from exc


def test_dropping_any_single_key_never_raises() -> None:
    base = load("hybrid_complete.json")["data"]
    for key in base:
        if key == "task_id":
            continue
        body = copy.deepcopy(base)
        del body[key]
        assert_task_invariants(task_from_data(body))
    for key in base["data"][0]:
        body = copy.deepcopy(base)
        del body["data"][0][key]
        assert_task_invariants(task_from_data(body))
    for key in base["data"][0]["metadata"]:
        body = copy.deepcopy(base)
        del body["data"][0]["metadata"][key]
        assert_task_invariants(task_from_data(body))


JUNK: list[object] = [
    None,
    True,
    False,
    0,
    -1,
    45,
    10**400,
    1e308,
    float("nan"),
    float("inf"),
    "",
    "   ",
    "abc",
    "45%",
    "None",
    "null",
    "\uff11\uff12",  # fullwidth digits
    "²",
    "1e400",
    "2024-13-45T00:00:00Z",
    "https://cdn1.suno.ai/None.mp3",
    "https://audiopipe.suno.ai/?item_id=abc",
    "javascript:alert(1)",
    "https://cdn1.suno.ai/a b.mp3",
    [],
    [None, "x"],
    {},
    {"tags": 5},
]


def test_random_damage_never_raises_and_keeps_the_invariants() -> None:
    rng = random.Random(20241209)
    bases = [
        load(name)["data"]
        for name in ("nested_streaming.json", "flat_error.json", "hybrid_complete.json")
    ]
    bases.append(load("camel_case_success.json")["data"])
    bases.append(load("lyrics_action_empty.json")["data"])
    bases.append(load("status_first_success.json")["data"])
    bases.append(load("success_result_url.json")["data"])
    for _ in range(400):
        body = copy.deepcopy(rng.choice(bases))
        targets: list[dict[str, Any]] = [body]
        if isinstance(body["data"], list):
            targets.extend(body["data"])
            targets.extend(clip["metadata"] for clip in body["data"] if "metadata" in clip)
        elif isinstance(body["data"], dict):
            targets.append(body["data"])
        for _ in range(rng.randint(1, 6)):
            target = rng.choice(targets)
            key = rng.choice([k for k in target if k not in ("task_id", "taskId")] or ["x"])
            target[key] = rng.choice(JUNK)
        assert_task_invariants(task_from_data(body))
