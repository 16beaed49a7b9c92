"""Digests of every card the renderer makes for a fixed set of tasks: the relay fixtures, the
hostile tasks, the benchmark bodies and five hundred seeded random tasks, each in several
languages and situations. A change that alters any card shows up as a changed digest.

Regenerate the golden file (only when a change to the cards is intended):
    uv run python -m tests.kit.render_golden
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import discord

from bench.hotpath import extreme_body, hostile_body, typical_body
from bot.i18n import default_catalog
from bot.render import (
    Notice,
    RenderedMessage,
    render_error,
    render_picked,
    render_task,
    render_unanswered,
)
from bot.suno.models import (
    NotATask,
    Task,
    envelope_from,
    task_from_answer,
    task_from_data,
    tasks_from_data,
)
from tests.kit.cards import body_of
from tests.kit.render_cases import HOSTILE_TASKS, fuzz_case

GOLDEN = Path(__file__).resolve().parents[1] / "fixtures" / "render_golden.txt"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "relay"
FUZZ_SEEDS = range(500)
# 80 bits of SHA-256: no two different cards collide by chance.
DIGEST_LENGTH = 20
_LOCALES = ("en-US", "ja", "fr", "zh-CN", "de", "es-419")
_PICKS = (["0-0"], ["1-1", "0-0"], ["0-11"], ["12-23"], ["24-35", "x", "3-2"])


def digest(message: RenderedMessage) -> str:
    """A short digest of what the message sends to Discord and of its fingerprint."""
    shown = {
        "body": body_of(message),
        "colour": message.colour,
        "components": message.components,
        "fingerprint": message.fingerprint,
        "text_length": message.text_length,
    }
    encoded = json.dumps(shown, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(encoded.encode()).hexdigest()[:DIGEST_LENGTH]


def fixture_tasks() -> Iterator[tuple[str, Task]]:
    """Every task the relay fixtures carry (a batch gives several, `data: null` one waiting)."""
    for path in sorted(FIXTURES.glob("*.json")):
        data = envelope_from(json.loads(path.read_text(encoding="utf-8"))).data
        if isinstance(data, list):
            for index, task in enumerate(tasks_from_data(data)):
                yield f"{path.stem}[{index}]", task
            continue
        try:
            yield path.stem, task_from_answer(data, "fixture-task")
        except NotATask:
            continue


def bench_tasks() -> Iterator[tuple[str, Task]]:
    for name, body in (
        ("typical", typical_body()),
        ("hostile", hostile_body()),
        ("extreme", extreme_body()),
    ):
        yield f"bench-{name}", task_from_data(envelope_from(json.loads(body)).data)


def task_cards(name: str, task: Task) -> Iterator[tuple[str, RenderedMessage]]:
    """The task's card in each language and with each notice, and its picked cards."""
    for locale in _LOCALES:
        yield f"{name} {locale}", render_task(task, locale=locale)
    for notice in Notice:
        for minutes in (None, 30):
            message = render_task(
                task, locale="en-US", notice=notice, watch_timeout_minutes=minutes
            )
            yield f"{name} {notice.value} {minutes}", message
    audio = {clip.id: f"song-{index}.mp3" for index, clip in enumerate(task.clips) if index % 2}
    yield f"{name} audio", render_task(task, locale="en-US", audio=audio)
    for values in _PICKS:
        picked = render_picked(task, values, locale="ja")
        if picked is not None:
            yield f"{name} picked {','.join(values)}", picked


def fuzz_cards() -> Iterator[tuple[str, RenderedMessage]]:
    """The seeded random tasks, rendered as the fuzz test renders them."""
    for seed in FUZZ_SEEDS:
        case = fuzz_case(seed)
        message = render_task(case.task, locale=case.locale, notice=case.notice, audio=case.audio)
        yield f"fuzz {seed}", message
        yield f"fuzz {seed} picked", render_picked(case.task, ["0-11"], locale="fr") or message


def other_cards() -> Iterator[tuple[str, RenderedMessage]]:
    """Cards without a task: unanswered, errors, and a card with the bot's own buttons."""
    for notice in Notice:
        for locale in ("en-US", "ko"):
            yield (
                f"unanswered {notice.value} {locale}",
                render_unanswered("task-1", locale=locale, notice=notice, watch_timeout_minutes=30),
            )
    for key in sorted(k for k in default_catalog().keys("en") if k.startswith("error.")):
        yield f"error {key}", render_error(key, locale="pt-BR")
    yield "error unknown", render_error("error.nope", locale="en-US")
    button = discord.ui.Button[discord.ui.LayoutView](label="Stop", custom_id="stop")
    card = render_task(HOSTILE_TASKS["success, 2 huge clips"], locale="en-US")
    yield "controls", card.with_controls([button], "stop")


def cards() -> Iterator[tuple[str, RenderedMessage]]:
    """Every card of the golden set, by name."""
    named = [*fixture_tasks(), *bench_tasks(), *HOSTILE_TASKS.items()]
    for name, task in named:
        yield from task_cards(name, task)
    yield from fuzz_cards()
    yield from other_cards()


def digests() -> dict[str, str]:
    found: dict[str, str] = {}
    for name, message in cards():
        if name in found:
            raise ValueError(f"two cards are named {name!r}")
        found[name] = digest(message)
    return found


def read_golden(path: Path = GOLDEN) -> dict[str, str]:
    """The golden digests: one `digest name` line per card."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return {name: value for value, _, name in (line.partition(" ") for line in lines if line)}


def main() -> None:
    text = "".join(f"{value} {name}\n" for name, value in digests().items())
    GOLDEN.write_text(text, encoding="utf-8")
    print(f"{GOLDEN}: {text.count(chr(10))} cards")


if __name__ == "__main__":
    main()
