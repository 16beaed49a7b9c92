"""Discord's message limits, and cards and link buttons trimmed to fit within them."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import discord

from bot.safety import escape, truncate

# Discord's limits (https://discord.com/developers/docs/resources/message#embed-object-embed-limits),
# counted in code points like Python's len().
TITLE_LIMIT = 256
DESCRIPTION_LIMIT = 4096
FIELD_NAME_LIMIT = 256
FIELD_VALUE_LIMIT = 1024
FOOTER_LIMIT = 2048
MAX_FIELDS = 25
MAX_EMBEDS = 10
TOTAL_TEXT_LIMIT = 6000
BUTTON_LABEL_LIMIT = 80
BUTTON_URL_LIMIT = 512
BUTTONS_PER_ROW = 5
MAX_ROWS = 5
MAX_BUTTONS = BUTTONS_PER_ROW * MAX_ROWS

# Discord rejects empty or blank field names and values.
_BLANK = "—"

# What to trim first when a message is over the total budget: lyrics, then tags, then other
# relay details, then titles; later cards before earlier ones within a rank.
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


@dataclass(slots=True)
class Field:
    name: Text
    value: Text
    inline: bool = True


@dataclass(slots=True)
class Card:
    """One embed before the budget is applied."""

    colour: discord.Colour
    title: Text | None = None
    url: str | None = None
    head: list[str] = field(default_factory=list)
    body: Text | None = None
    fields: list[Field] = field(default_factory=list)
    thumbnail: str | None = None
    image: str | None = None
    footer: Text | None = None

    def add_field(self, name: Text, value: Text, *, inline: bool = True) -> None:
        if len(self.fields) < MAX_FIELDS:
            self.fields.append(Field(name, value, inline))

    def description(self) -> str:
        head = "\n".join(self.head)
        body = self.body.text if self.body is not None else ""
        if head and body:
            return f"{head}\n\n{body}"
        return head or body

    def fit_body(self) -> None:
        """Keep the description within its limit by cutting the body, never the head."""
        head = "\n".join(self.head)
        if len(head) > DESCRIPTION_LIMIT:
            self.head = [truncate(head, DESCRIPTION_LIMIT)]
            self.body = None
        elif self.body is not None:
            room = DESCRIPTION_LIMIT - len(head) - (2 if head else 0)
            self.body.shrink(len(self.body.text) - room)

    def pieces(self) -> Iterator[Text]:
        if self.body is not None:
            yield self.body
        for item in self.fields:
            yield item.value
            yield item.name
        if self.footer is not None:
            yield self.footer
        if self.title is not None:
            yield self.title

    def size(self) -> int:
        total = len(self.description())
        if self.title is not None:
            total += len(self.title.text)
        if self.footer is not None:
            total += len(self.footer.text)
        for item in self.fields:
            total += len(_non_blank(item.name.text)) + len(_non_blank(item.value.text))
        return total

    def to_embed(self) -> discord.Embed:
        title = self.title.text if self.title is not None and self.title.text.strip() else None
        description = self.description()
        embed = discord.Embed(
            title=title,
            url=self.url if title is not None else None,
            description=description if description.strip() else None,
            colour=self.colour,
        )
        for item in self.fields:
            embed.add_field(
                name=_non_blank(item.name.text),
                value=_non_blank(item.value.text),
                inline=item.inline,
            )
        if self.thumbnail is not None:
            embed.set_thumbnail(url=self.thumbnail)
        if self.image is not None:
            embed.set_image(url=self.image)
        if self.footer is not None and self.footer.text.strip():
            embed.set_footer(text=self.footer.text)
        return embed


def _non_blank(text: str) -> str:
    return text if text.strip() else _BLANK


def fit_total(cards: list[Card]) -> list[Card]:
    """Trim the least important text until all cards together fit Discord's total."""
    total = sum(card.size() for card in cards)
    if total > TOTAL_TEXT_LIMIT:
        candidates = sorted(
            (
                (piece.rank, -index, order, piece)
                for index, card in enumerate(cards)
                for order, piece in enumerate(card.pieces())
                if piece.rank is not None
            ),
            key=lambda candidate: candidate[:3],
        )
        for *_, piece in candidates:
            total -= piece.shrink(total - TOTAL_TEXT_LIMIT)
            if total <= TOTAL_TEXT_LIMIT:
                break
        # Blanked pieces count as the placeholder they will show.
        total = sum(card.size() for card in cards)
    while total > TOTAL_TEXT_LIMIT and len(cards) > 1:
        total -= cards.pop().size()
    return cards


@dataclass(frozen=True, slots=True)
class LinkButton:
    label: str
    url: str
    row: int


def lay_out(groups: Sequence[Sequence[tuple[str, str]]]) -> tuple[LinkButton, ...]:
    """One row per clip when that fits, else packed five to a row; never more than Discord takes."""
    groups = [group for group in groups if group]
    one_row_each = len(groups) <= MAX_ROWS and all(len(g) <= BUTTONS_PER_ROW for g in groups)
    buttons: list[LinkButton] = []
    if one_row_each:
        for row, group in enumerate(groups):
            buttons.extend(LinkButton(label, url, row) for label, url in group)
        return tuple(buttons)
    flat = [button for group in groups for button in group][:MAX_BUTTONS]
    return tuple(
        LinkButton(label, url, index // BUTTONS_PER_ROW) for index, (label, url) in enumerate(flat)
    )
