"""The order a task's clips are shown in: stems of a song grouped under it, numbered as shown."""

from __future__ import annotations

import re
from typing import NamedTuple

from bot.suno.models import Clip

# Stem splits are titled after their song: "Song (Vocals)".
_STEM_TITLE = re.compile(r"^(?P<song>.*\S)\s*\((?P<part>[^()]+)\)\s*$")
_STEM_MODELS = frozenset({"chirp-stem", "chirp-ahi"})


class Entry(NamedTuple):
    """One clip as the card shows it: its number on the card and, for a stem, its part and the
    song it belongs to."""

    number: int
    clip: Clip
    part: str | None = None
    song: str | None = None

    @property
    def is_stem(self) -> bool:
        return self.part is not None


def _is_stem(clip: Clip) -> bool:
    if clip.stem_from_id or clip.stem_type:
        return True
    model = clip.model
    return model is not None and model.split(" ", 1)[0].lower() in _STEM_MODELS


def _stem_names(clip: Clip, titles: dict[str, str]) -> tuple[str, str | None, str]:
    """The stem's part, the song's title (if known) and the key that groups its stems."""
    match = _STEM_TITLE.match(clip.title or "")
    part = clip.stem_type or (match["part"] if match else None) or clip.title or clip.id
    song = titles.get(clip.stem_from_id or "") or (match["song"] if match else None)
    return part, song, clip.stem_from_id or song or ""


def ordered(clips: tuple[Clip, ...]) -> list[Entry]:
    """The clips in the card's order: each song, then the stems split from it; stems of a song
    the task does not include follow one another where the first of them was."""
    stems = [_is_stem(clip) for clip in clips]
    if not any(stems) and len({clip.id for clip in clips}) == len(clips):
        # Songs alone, each once (the usual task): the relay's order is the card's.
        return [Entry(number, clip) for number, clip in enumerate(clips, start=1)]
    titles = {
        clip.id: clip.title
        for clip, stem in zip(clips, stems, strict=True)
        if clip.title and not stem
    }
    groups: dict[str, list[tuple[Clip, str | None, str | None]]] = {}
    for clip, stem in zip(clips, stems, strict=True):
        if stem:
            part, song, key = _stem_names(clip, titles)
            groups.setdefault(f"stem:{key}", []).append((clip, part, song))
        else:
            groups.setdefault(f"song:{clip.id}", []).append((clip, None, None))
    # A song's own stems follow it, wherever they came in the list.
    order: list[tuple[Clip, str | None, str | None]] = []
    for key, members in groups.items():
        if key.startswith("stem:") and f"song:{key[5:]}" in groups:
            continue
        order.extend(members)
        if key.startswith("song:"):
            order.extend(groups.get(f"stem:{key[5:]}", []))
    return [
        Entry(number, clip, part, song) for number, (clip, part, song) in enumerate(order, start=1)
    ]
