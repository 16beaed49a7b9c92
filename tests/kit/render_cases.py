"""Tasks for render tests: realistic clips, hostile relays, and seeded random tasks."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from bot.render import Notice
from bot.suno.models import Task, task_from

TASK_ID = "2a145658-3342-4228-b779-b8323a2b77df"
SUBMIT, START, FINISH = 1726911801, 1726911812, 1726911897
STREAM = "https://audiopipe.suno.ai/?item_id=3435e194"
NONE_MP3 = "https://cdn1.suno.ai/None.mp3"
HUGE = 10_000


def clip(number: int = 1, **overrides: Any) -> dict[str, Any]:
    """A nested-family clip, complete unless told otherwise."""
    ident = f"clip-{number:04d}"
    payload: dict[str, Any] = {
        "id": ident,
        "title": f"Song {number}",
        "status": "complete",
        "audio_url": f"https://cdn1.suno.ai/{ident}.mp3",
        "video_url": f"https://cdn1.suno.ai/{ident}.mp4",
        "image_url": f"https://cdn2.suno.ai/image_{ident}.jpeg",
        "model_name": "chirp-v4",
        "metadata": {"tags": "dream pop", "prompt": "", "duration": 128.92},
    }
    payload.update(overrides)
    return payload


def task(status: str = "SUCCESS", data: Any = None, **overrides: Any) -> Task:
    payload: dict[str, Any] = {
        "task_id": TASK_ID,
        "action": "MUSIC",
        "status": status,
        "fail_reason": "",
        "submit_time": SUBMIT,
        "start_time": START,
        "finish_time": FINISH if status in ("SUCCESS", "FAILURE") else 0,
        "progress": "100%" if status in ("SUCCESS", "FAILURE") else "0%",
        "data": [clip(1), clip(2)] if data is None else data,
    }
    payload.update(overrides)
    return task_from(payload)


HOSTILE_TEXT = "@everyone <@&123> <@12345678901234567> [click](http://evil.example) **bold** `x`"


def hostile_clips(count: int) -> list[dict[str, Any]]:
    return [
        clip(
            n,
            title=HOSTILE_TEXT + "\n# heading\n" + "T" * HUGE,
            status="streaming" if n % 3 else "complete",
            audio_url="javascript:alert(1)" if n % 2 else f"https://cdn1.suno.ai/c{n}.mp3",
            video_url="data:text/html;base64,PHNjcmlwdD4=",
            image_url="javascript:alert(1)" if n % 2 else "https://cdn2.suno.ai/i.jpeg",
            model_name="m" * HUGE,
            metadata={
                "tags": HOSTILE_TEXT + "tag " * HUGE,
                "prompt": f"{n} {HOSTILE_TEXT} " + "la " * HUGE,
                "duration": 10**9,
                "error_message": HOSTILE_TEXT + "e" * HUGE,
                "stem_type_group_name": HOSTILE_TEXT * 10 if n % 4 == 0 else None,
            },
        )
        for n in range(1, count + 1)
    ]


HOSTILE_TASKS = {
    "success, 2 huge clips": task("SUCCESS", hostile_clips(2)),
    "success, 12 huge clips": task("SUCCESS", hostile_clips(12)),
    "success, 30 huge clips": task("SUCCESS", hostile_clips(30)),
    "running, 12 huge clips": task("IN_PROGRESS", hostile_clips(12), progress="55%"),
    "running, 30 huge clips": task("IN_PROGRESS", hostile_clips(30), progress="55%"),
    "failure, huge reason": task("FAILURE", hostile_clips(3), fail_reason=HOSTILE_TEXT * 500),
    "unknown status, huge": task(HOSTILE_TEXT * 200, hostile_clips(2)),
    "success, zero clips": task("SUCCESS", []),
    "running, zero clips": task("QUEUED", []),
    "lyrics, huge": task(
        "SUCCESS",
        {"title": HOSTILE_TEXT * 100, "text": HOSTILE_TEXT * 300, "tags": "t" * HUGE},
    ),
    "huge task id": task("SUCCESS", hostile_clips(20), task_id="@everyone" + "i" * HUGE),
    "errored clips in success": task(
        "SUCCESS", [clip(n, status="error", audio_url=NONE_MP3) for n in range(1, 12)]
    ),
    "escapes at every cut": task(
        "SUCCESS", [clip(n, title="\\" * HUGE, metadata={"tags": "_" * HUGE}) for n in (1, 2)]
    ),
}


_FUZZ_PIECES = [
    "@everyone",
    "<@&1>",
    "<t:0:R>",
    "[x](http://e.x)",
    "**",
    "\\",
    "`",
    "\n# h\n",
    "-# ",
    "||",
    "—",
    "歌",
    "🎵",
    "a" * 300,
    " ",
    "",
]
_STATUSES = ["SUCCESS", "IN_PROGRESS", "FIRST_SUCCESS", "FAILURE", "QUEUED", "odd_state"]
_CLIP_STATES = ["complete", "streaming", "queued", "error", "submitted", "weird"]


def _fuzz_text(rng: random.Random) -> str:
    return "".join(rng.choice(_FUZZ_PIECES) for _ in range(rng.randint(0, 12)))


def _fuzz_clip(rng: random.Random, number: int) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "tags": _fuzz_text(rng),
        "prompt": _fuzz_text(rng) * rng.randint(0, 30),
        "duration": rng.choice([None, 0, 61.5, 10**7]),
        "error_message": _fuzz_text(rng),
    }
    if rng.random() < 0.4:
        metadata["stem_from_id"] = rng.choice(["clip-0001", "elsewhere", ""])
        metadata["stem_type_group_name"] = _fuzz_text(rng)
    return clip(
        number,
        title=_fuzz_text(rng) + rng.choice(["", " (Vocals)", " (Drums)"]),
        status=rng.choice(_CLIP_STATES),
        audio_url=rng.choice(["", NONE_MP3, STREAM, f"https://cdn1.suno.ai/{number}.mp3"]),
        video_url=rng.choice(["", "javascript:x", f"https://cdn1.suno.ai/{number}.mp4"]),
        image_url=rng.choice(["", "https://cdn2.suno.ai/" + "i" * rng.randint(1, 3000)]),
        model_name=rng.choice(["chirp-stem", "chirp-fenix", _fuzz_text(rng)]),
        metadata=metadata,
    )


@dataclass(frozen=True)
class FuzzCase:
    """A random task and how it is rendered: in which language, with which notice and audio."""

    task: Task
    clips: int
    locale: str
    notice: Notice | None
    audio: dict[str, str]


def fuzz_case(seed: int) -> FuzzCase:
    """The random task of `seed`: every field chosen from markdown, mention and size bait."""
    rng = random.Random(seed)
    count = rng.choice([0, 1, 2, 3, 4, 11, 12, 13, 25, 30, 38, 60])
    source = task(
        rng.choice(_STATUSES),
        [_fuzz_clip(rng, n) for n in range(1, count + 1)],
        fail_reason=_fuzz_text(rng),
        task_id=rng.choice([TASK_ID, "t" * 128]),
    )
    audio = {c.id: f"song-{c.id}.mp3" for c in source.clips if rng.random() < 0.3}
    notice = rng.choice([None, *Notice])
    locale = rng.choice(["en-US", "ja", "fr"])
    return FuzzCase(source, count, locale, notice, audio)
