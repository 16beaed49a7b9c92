"""The pieces of a Components V2 card as plain data: counted, fingerprinted, turned into a view."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import discord

from bot.render.budget import Text, joined
from bot.render.picker import ClipPicker


@dataclass(slots=True)
class TextBlock:
    """A text display; its pieces are trimmed as one message before it is shown."""

    pieces: list[Text]

    @property
    def text(self) -> str:
        return joined(self.pieces)


@dataclass(frozen=True, slots=True)
class LinkRow:
    """An action row of link buttons, as (label, url)."""

    buttons: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Gallery:
    urls: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Divider:
    visible: bool = True


@dataclass(frozen=True, slots=True)
class AudioFile:
    """An uploaded attachment shown (and played) in the card."""

    filename: str


@dataclass(frozen=True, slots=True)
class PickerOption:
    label: str
    value: str
    description: str | None = None


@dataclass(frozen=True, slots=True)
class Picker:
    """A select menu whose choice the bot answers (its custom id names the task)."""

    custom_id: str
    placeholder: str
    options: tuple[PickerOption, ...]
    max_values: int = 1


@dataclass(slots=True)
class Section:
    """Text beside a thumbnail."""

    texts: list[TextBlock]
    thumbnail: str


Block = TextBlock | Section | LinkRow | Gallery | Divider | AudioFile | Picker


def cost(block: Block) -> int:
    """How many components `block` adds to a message (Discord counts nested ones too)."""
    if isinstance(block, Section):
        return 2 + len(block.texts)
    if isinstance(block, LinkRow):
        return 1 + len(block.buttons)
    if isinstance(block, Picker):
        return 2
    return 1


def text_blocks(blocks: Sequence[Block]) -> list[TextBlock]:
    """Every text display among `blocks`, in order."""
    found: list[TextBlock] = []
    for block in blocks:
        if isinstance(block, TextBlock):
            found.append(block)
        elif isinstance(block, Section):
            found.extend(block.texts)
    return found


def canonical(block: Block) -> Any:
    """What the block shows, as plain data (for the fingerprint)."""
    if isinstance(block, TextBlock):
        return ["text", block.text]
    if isinstance(block, Section):
        return ["section", [text.text for text in block.texts], block.thumbnail]
    if isinstance(block, LinkRow):
        return ["links", [list(button) for button in block.buttons]]
    if isinstance(block, Gallery):
        return ["gallery", list(block.urls)]
    if isinstance(block, Divider):
        return ["divider", block.visible]
    if isinstance(block, AudioFile):
        return ["file", block.filename]
    options = [[o.label, o.value, o.description] for o in block.options]
    return ["picker", block.custom_id, block.placeholder, options, block.max_values]


def to_item(block: Block) -> discord.ui.Item[Any]:
    """The discord.py component that shows `block`."""
    if isinstance(block, TextBlock):
        return discord.ui.TextDisplay(block.text)
    if isinstance(block, Section):
        return discord.ui.Section(
            *(discord.ui.TextDisplay(text.text) for text in block.texts if text.text.strip()),
            accessory=discord.ui.Thumbnail(block.thumbnail),
        )
    if isinstance(block, LinkRow):
        return discord.ui.ActionRow(
            *(discord.ui.Button(label=label, url=url) for label, url in block.buttons)
        )
    if isinstance(block, Gallery):
        return discord.ui.MediaGallery(*(discord.MediaGalleryItem(url) for url in block.urls))
    if isinstance(block, Divider):
        return discord.ui.Separator(visible=block.visible)
    if isinstance(block, AudioFile):
        return discord.ui.File(f"attachment://{block.filename}")
    return discord.ui.ActionRow(ClipPicker(_select(block)))


def _select(picker: Picker) -> discord.ui.Select[Any]:
    return discord.ui.Select(
        custom_id=picker.custom_id,
        placeholder=picker.placeholder,
        min_values=1,
        max_values=picker.max_values,
        options=[
            discord.SelectOption(label=o.label, value=o.value, description=o.description)
            for o in picker.options
        ],
    )
