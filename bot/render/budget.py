"""Discord's limits for a Components V2 message, and text trimmed to fit within them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from bot.safety import escape, truncate

# Components V2 (https://discord.com/developers/docs/components/reference), counted in code
# points like Python's len(): every component counts, nested ones included, and the text of
# all text displays together has one budget.
MAX_COMPONENTS = 40
TEXT_LIMIT = 4000
BUTTONS_PER_ROW = 5
BUTTON_LABEL_LIMIT = 80
BUTTON_URL_LIMIT = 512
CUSTOM_ID_LIMIT = 100
SELECT_OPTIONS_LIMIT = 25
SELECT_TEXT_LIMIT = 100
SELECT_PLACEHOLDER_LIMIT = 150
GALLERY_ITEMS_LIMIT = 10
# Room kept on every task card for one action row of up to four buttons of the bot's own.
CONTROL_SLOTS = 4
CONTROL_COMPONENTS = 1 + CONTROL_SLOTS

TITLE_LIMIT = 256
DETAIL_LIMIT = 1024

# What to trim first when a message is over the text budget: lyrics, then tags, then other
# relay details, then titles; later blocks before earlier ones within a rank.
RANK_LYRICS = 0
RANK_TAGS = 1
RANK_DETAIL = 2
RANK_TITLE = 3
# How short trimming may make a title or a detail.
TITLE_FLOOR = 48
DETAIL_FLOOR = 48
# Below this a lyrics excerpt is not worth keeping, so it goes entirely.
_MIN_USEFUL_BODY = 64


@dataclass(slots=True)
class Text:
    """A piece of text; `rank` None is never trimmed, `floor` 0 may vanish entirely."""

    text: str
    rank: int | None = None
    floor: int = 0

    def shrink(self, excess: int) -> int:
        """Cut by up to `excess` characters (not below the floor); the number saved."""
        if self.rank is None:
            return 0
        before = len(self.text)
        target = max(before - excess, self.floor)
        if target >= before:
            return 0
        if self.floor == 0 and target < _MIN_USEFUL_BODY:
            self.text = ""
        else:
            self.text = truncate(self.text, target)
        return before - len(self.text)


def fixed_text(text: str, limit: int) -> Text:
    """The bot's own text, cut to `limit` and never trimmed."""
    return Text(truncate(text, limit))


def trimmable_text(text: str, limit: int, rank: int, floor: int) -> Text:
    """Text already safe to show, cut to `limit`; trimmed in `rank` order down to `floor`."""
    return Text(truncate(text, limit), rank, min(floor, limit))


def relay_text(text: str, limit: int, rank: int, floor: int) -> Text:
    """Relay text escaped into a piece of at most `limit`; trimmed in `rank` order to `floor`."""
    return Text(truncate(escape(truncate(text, limit)), limit), rank, min(floor, limit))


def joined(pieces: Iterable[Text]) -> str:
    """The pieces of one text display, one per line; emptied pieces leave no blank line."""
    return "\n".join(piece.text for piece in pieces if piece.text)


def fit_text(blocks: list[list[Text]], limit: int = TEXT_LIMIT) -> None:
    """Trim the least important pieces until every block's text together fits `limit`."""
    total = sum(len(joined(block)) for block in blocks)
    if total <= limit:
        return
    candidates = sorted(
        (
            (piece.rank, -index, order, piece)
            for index, block in enumerate(blocks)
            for order, piece in enumerate(block)
            if piece.rank is not None
        ),
        key=lambda candidate: candidate[:3],
    )
    for *_, piece in candidates:
        piece.shrink(total - limit)
        total = sum(len(joined(block)) for block in blocks)
        if total <= limit:
            return
    # Only the bot's own text is left: cut the last blocks (never reached with the catalogs).
    for block in reversed(blocks):
        for piece in reversed(block):
            piece.rank, piece.floor = RANK_LYRICS, 0
            total -= piece.shrink(total - limit)
            if total <= limit:
                return
