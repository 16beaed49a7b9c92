"""Which buttons a card shows, how they sit beside its links, and the lyrics pages."""

from __future__ import annotations

import pytest

from bot.app import StatusPresenter
from bot.controls import CUSTOM_ID_LIMIT, controls_for, custom_id
from bot.render import Notice, RenderedMessage
from bot.suno.models import Task, task_from_data
from cogs.buttons import PAGE_CHARACTERS, lyrics_pages
from tests.kit.cards import JSONObject, body_of, components_of, files, link_buttons, walk
from tests.kit.discord_limits import ACTION_ROW, validate_message_payload
from tests.kit.payloads import clip, clip_ids_for, task_payload

LYRICS = "[Verse]\nCity lights are calling me home"
PRESENTER = StatusPresenter(1800)


def music(status: str, phase: str, count: int = 2, lyrics: str = "") -> Task:
    clips = [clip("nested", i, phase) for i in clip_ids_for("t", count)]  # type: ignore[arg-type]
    for item in clips:
        item["metadata"]["prompt"] = lyrics
    return task_from_data(task_payload("t", status, clips=clips))


@pytest.mark.parametrize(
    ("task", "notice", "private", "expected"),
    [
        (music("IN_PROGRESS", "streaming"), None, False, ["refresh", "stop", "notify"]),
        (music("IN_PROGRESS", "streaming"), None, True, ["refresh", "stop"]),
        (music("IN_PROGRESS", "streaming", lyrics=LYRICS), None, False,
         ["lyrics", "refresh", "stop", "notify"]),
        (music("IN_PROGRESS", "streaming"), Notice.RELAY_RETRYING, False,
         ["refresh", "stop", "notify"]),
        (music("IN_PROGRESS", "streaming"), Notice.AUTO_REFRESH_STOPPED, False, ["refresh"]),
        (music("IN_PROGRESS", "streaming"), Notice.UPDATES_STOPPED, False, ["refresh"]),
        (music("IN_PROGRESS", "streaming"), Notice.LIVE_UPDATES_ENDED, False, ["refresh"]),
        (music("SUCCESS", "complete"), None, False, []),
        (music("SUCCESS", "complete", lyrics=LYRICS), None, False, ["lyrics"]),
        (music("FAILURE", "error", lyrics=LYRICS), None, False, []),
        (None, Notice.RELAY_RETRYING, False, ["refresh", "stop", "notify"]),
    ],
)  # fmt: skip
def test_a_card_shows_the_buttons_that_fit_its_state(
    task: Task | None, notice: Notice | None, private: bool, expected: list[str]
) -> None:
    assert [c.value for c in controls_for(task, notice, private=private)] == expected


def test_a_custom_id_carries_the_task_id_when_it_fits() -> None:
    assert custom_id("refresh", "2a145658-3342-4228-b779-b8323a2b77df") == (
        "suno:refresh:2a145658-3342-4228-b779-b8323a2b77df"
    )
    assert custom_id("page", "task_x", page=3) == "suno:page:3:task_x"
    longest = "x" * 128
    assert custom_id("notify", longest) == "suno:notify:"
    assert len(custom_id("page", "y" * 79, page=999)) <= CUSTOM_ID_LIMIT


def controls_row(card: RenderedMessage) -> list[JSONObject]:
    """The last action row of the card: the bot's own buttons."""
    rows = [c for c in walk(components_of(card)) if c.get("type") == ACTION_ROW]
    return list(rows[-1]["components"])


@pytest.mark.parametrize("count", [1, 2, 5, 12, 30])
def test_the_buttons_sit_at_the_foot_of_every_card_within_its_limits(count: int) -> None:
    task = music("IN_PROGRESS", "streaming", count=count, lyrics=LYRICS)
    card = PRESENTER.task(task, locale="en-US")
    assert [b.get("custom_id") for b in controls_row(card)] == [
        "suno:lyrics:t",
        "suno:refresh:t",
        "suno:stop:t",
        "suno:notify:t",
    ]
    assert [b["label"] for b in controls_row(card)] == [
        "Lyrics",
        "Refresh",
        "Stop updates",
        "Notify me",
    ]
    assert validate_message_payload(body_of(card), v2=True) == []
    assert link_buttons(components_of(card)), "the links stay"


def test_labels_speak_the_card_language_and_change_the_fingerprint() -> None:
    task = music("IN_PROGRESS", "streaming")
    english, german = PRESENTER.task(task, locale="en-US"), PRESENTER.task(task, locale="de")
    assert [b["label"] for b in controls_row(german)] == [
        "Aktualisieren",
        "Updates stoppen",
        "Benachrichtigen",
    ]
    stopped = PRESENTER.task(task, locale="en-US", notice=Notice.UPDATES_STOPPED)
    assert len({english.fingerprint, german.fingerprint, stopped.fingerprint}) == 3
    assert english.fingerprint == PRESENTER.task(task, locale="en-US").fingerprint


def test_lyrics_come_once_per_song_in_pages_that_fit_an_embed() -> None:
    long = "\n".join(f"line {n} " + "la " * 30 for n in range(300))
    task = music("SUCCESS", "complete", count=3, lyrics=long)
    pages = lyrics_pages(task)
    assert len(pages) > 1
    assert all(len(page) <= PAGE_CHARACTERS for page in pages)
    text = "\n".join(pages)
    assert text.count("line 0 ") == 1, "the same lyrics are shown once"
    assert "line 299 " in text
    assert lyrics_pages(music("SUCCESS", "complete")) == []


def test_lyrics_are_made_inert() -> None:
    task = music("SUCCESS", "complete", lyrics="@everyone **bold** <@123>")
    [page] = lyrics_pages(task)
    assert "@everyone" not in page.replace("@\u200beveryone", "")
    assert "**bold**" not in page


@pytest.mark.parametrize("count", [2, 12, 30])
def test_a_finished_card_with_every_song_attached_keeps_every_limit(count: int) -> None:
    task = music("SUCCESS", "complete", count=count, lyrics=LYRICS)
    audio = {clip.id: f"song-{n}.mp3" for n, clip in enumerate(task.clips[:10], start=1)}
    card = PRESENTER._card(task, locale="en-US", notice=None, private=False, audio=audio)
    assert validate_message_payload(body_of(card), v2=True) == []
    assert [b.get("custom_id") for b in controls_row(card)] == ["suno:lyrics:t"]
    shown = files(components_of(card))
    assert set(shown) <= {f"attachment://{name}" for name in audio.values()}
    if count <= 3:
        assert len(shown) == count, "each song plays in its own block"
