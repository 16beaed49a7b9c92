"""The README's picture draws the cards the bot sends: songs played in the chat, buttons."""

from __future__ import annotations

from typing import Any

from bot.app import StatusPresenter
from bot.suno.models import task_from
from tests.kit.card_preview import attached_card, page, song_task_payload

TASK_ID = "6f1c2a9e-3b7d-4e25-9c41-8a0d5e2f7b13"


def _walk(components: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for component in components:
        found.append(component)
        found += _walk(component.get("components") or [])
    return found


def test_the_finished_card_plays_each_attached_song_above_its_buttons() -> None:
    task = task_from(song_task_payload(TASK_ID, clip_count=2))
    components = _walk(attached_card(StatusPresenter(1800), task))
    files = [c["file"]["url"] for c in components if c["type"] == 13]
    assert files == ["attachment://city-lights-1.mp3", "attachment://city-lights-2.mp3"]
    controls = [c for c in components if c["type"] == 2 and "custom_id" in c]
    assert [(c["label"], c["custom_id"], c["style"]) for c in controls] == [
        ("Lyrics", f"suno:lyrics:{TASK_ID}", 2)
    ]
    assert components[-1] is controls[-1]


def test_the_page_draws_a_player_per_song_and_both_cards_buttons() -> None:
    drawn = page()
    assert drawn.count('class="file"') == 2
    assert "0:00 / 3:39" in drawn and "0:00 / 3:21" in drawn
    assert drawn.count('<span class="button style-2"><span class="emoji">📜</span>Lyrics') == 2
    assert drawn.count('class="button style-5"') == 14
