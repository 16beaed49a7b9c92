"""The pieces of a Components V2 card as plain data: counted, fingerprinted, turned into a view.

Every block answers the same questions (how many components it counts, its text displays,
whether it shows anything, what it shows as plain data for the fingerprint, its discord.py
component); a card asks them of each of its blocks on every render.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import discord

from bot.render.budget import Text, joined
from bot.render.picker import ClipPicker


class _Single:
    """A block of one component without text of its own: it always shows something."""

    __slots__ = ()

    def cost(self) -> int:
        return 1

    def displays(self) -> tuple[TextBlock, ...]:
        return ()

    def shows_something(self) -> bool:
        return True


@dataclass(slots=True)
class TextBlock:
    """A text display; its pieces are trimmed as one message before it is shown."""

    pieces: list[Text]
    # The text as shown, fixed by `settle` once the pieces are final.
    _shown: str | None = field(default=None, repr=False, compare=False)

    @property
    def text(self) -> str:
        return joined(self.pieces) if self._shown is None else self._shown

    def settle(self) -> str:
        """Fix the text this display shows to what its pieces say now, and return it."""
        self._shown = joined(self.pieces)
        return self._shown

    def cost(self) -> int:
        return 1

    def displays(self) -> tuple[TextBlock, ...]:
        return (self,)

    def shows_something(self) -> bool:
        return bool(self.text.strip())

    def canonical(self) -> Any:
        return ["text", self.text]

    def item(self) -> discord.ui.Item[Any]:
        return discord.ui.TextDisplay(self.text)


@dataclass(frozen=True, slots=True)
class LinkRow(_Single):
    """An action row of link buttons, as (label, url)."""

    buttons: tuple[tuple[str, str], ...]

    def cost(self) -> int:
        return 1 + len(self.buttons)

    def canonical(self) -> Any:
        return ["links", [list(button) for button in self.buttons]]

    def item(self) -> discord.ui.Item[Any]:
        return discord.ui.ActionRow(
            *(discord.ui.Button(label=label, url=url) for label, url in self.buttons)
        )


@dataclass(frozen=True, slots=True)
class Gallery(_Single):
    urls: tuple[str, ...]

    def canonical(self) -> Any:
        return ["gallery", list(self.urls)]

    def item(self) -> discord.ui.Item[Any]:
        return discord.ui.MediaGallery(*(discord.MediaGalleryItem(url) for url in self.urls))


@dataclass(frozen=True, slots=True)
class Divider(_Single):
    visible: bool = True

    def canonical(self) -> Any:
        return ["divider", self.visible]

    def item(self) -> discord.ui.Item[Any]:
        return discord.ui.Separator(visible=self.visible)


@dataclass(frozen=True, slots=True)
class AudioFile(_Single):
    """An uploaded attachment shown (and played) in the card."""

    filename: str

    def canonical(self) -> Any:
        return ["file", self.filename]

    def item(self) -> discord.ui.Item[Any]:
        return discord.ui.File(f"attachment://{self.filename}")


@dataclass(frozen=True, slots=True)
class PickerOption:
    label: str
    value: str
    description: str | None = None


@dataclass(frozen=True, slots=True)
class Picker(_Single):
    """A select menu whose choice the bot answers (its custom id names the task)."""

    custom_id: str
    placeholder: str
    options: tuple[PickerOption, ...]
    max_values: int = 1

    def cost(self) -> int:
        return 2

    def canonical(self) -> Any:
        options = [[o.label, o.value, o.description] for o in self.options]
        return ["picker", self.custom_id, self.placeholder, options, self.max_values]

    def item(self) -> discord.ui.Item[Any]:
        select: discord.ui.Select[Any] = discord.ui.Select(
            custom_id=self.custom_id,
            placeholder=self.placeholder,
            min_values=1,
            max_values=self.max_values,
            options=[
                discord.SelectOption(label=o.label, value=o.value, description=o.description)
                for o in self.options
            ],
        )
        return discord.ui.ActionRow(ClipPicker(select))


@dataclass(slots=True)
class Section:
    """Text beside a thumbnail."""

    texts: list[TextBlock]
    thumbnail: str

    def cost(self) -> int:
        return 2 + len(self.texts)

    def displays(self) -> list[TextBlock]:
        return self.texts

    def shows_something(self) -> bool:
        return any(text.text.strip() for text in self.texts)

    def canonical(self) -> Any:
        return ["section", [text.text for text in self.texts], self.thumbnail]

    def item(self) -> discord.ui.Item[Any]:
        return discord.ui.Section(
            *(discord.ui.TextDisplay(text.text) for text in self.texts if text.text.strip()),
            accessory=discord.ui.Thumbnail(self.thumbnail),
        )


Block = TextBlock | Section | LinkRow | Gallery | Divider | AudioFile | Picker


def cost(blocks: Sequence[Block]) -> int:
    """How many components `blocks` add to a message (Discord counts nested ones too)."""
    return sum([block.cost() for block in blocks])


def text_blocks(blocks: Sequence[Block]) -> list[TextBlock]:
    """Every text display among `blocks`, in order."""
    return [text for block in blocks for text in block.displays()]
