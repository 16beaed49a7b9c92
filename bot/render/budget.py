"""Discord's limits for a Components V2 message, and text trimmed to fit within them."""

from __future__ import annotations

import functools
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
    return Text(text if len(text) <= limit else truncate(text, limit))


def trimmable_text(text: str, limit: int, rank: int, floor: int) -> Text:
    """Text already safe to show, cut to `limit`; trimmed in `rank` order down to `floor`."""
    cut = text if len(text) <= limit else truncate(text, limit)
    return Text(cut, rank, floor if floor < limit else limit)


def relay_text(text: str, limit: int, rank: int, floor: int, *, one_line: bool = False) -> Text:
    """Relay text escaped into a piece of at most `limit` (on one line if `one_line`: a newline
    in a title must not start a heading); trimmed in `rank` order down to `floor`."""
    if len(text) <= _CACHED_RELAY_LENGTH:
        shown = _relay_cached(text, limit, one_line)
    else:
        shown = _relay(text, limit, one_line)
    return Text(shown, rank, floor if floor < limit else limit)


def _relay(text: str, limit: int, one_line: bool) -> str:
    if one_line:
        text = _flattened(text, limit)
    escaped = escape(text if len(text) <= limit else truncate(text, limit))
    return escaped if len(escaped) <= limit else truncate(escaped, limit)


def _flattened(text: str, limit: int) -> str:
    """`text` on one line (each run of whitespace one space); of a text far over `limit`, only
    as much as cutting it to `limit` looks at (the flattened start of a text is the start of the
    flattened text)."""
    scan = 2 * limit + 2
    if len(text) > scan:
        head = " ".join(text[:scan].split())
        if len(head) > limit:
            return head
    return " ".join(text.split())


# Polls repeat the same titles, tags and reasons; as with `escape`, longer strings are made
# afresh each time, which bounds the cache's memory.
_CACHED_RELAY_LENGTH = 2048
_relay_cached = functools.lru_cache(maxsize=1024)(_relay)


def joined(pieces: Iterable[Text]) -> str:
    """The pieces of one text display, one per line; emptied pieces leave no blank line."""
    return "\n".join([piece.text for piece in pieces if piece.text])


def fit_text(blocks: list[list[Text]], limit: int = TEXT_LIMIT) -> None:
    """Trim the least important pieces until every block's text together fits `limit`."""
    lengths = [len(joined(block)) for block in blocks]
    total = sum(lengths)
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
    for _, minus_index, _, piece in candidates:
        if not piece.shrink(total - limit):
            continue
        # Only the trimmed piece's block changed (an emptied piece also loses its line break).
        index = -minus_index
        length = len(joined(blocks[index]))
        total += length - lengths[index]
        lengths[index] = length
        if total <= limit:
            return
    # Only the bot's own text is left: cut the last blocks (never reached with the catalogs).
    for block in reversed(blocks):
        for piece in reversed(block):
            piece.rank, piece.floor = RANK_LYRICS, 0
            total -= piece.shrink(total - limit)
            if total <= limit:
                return
