"""The finished status message: one Components V2 container, its limits kept, and a fingerprint."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import discord

from bot.render.budget import CONTROL_SLOTS, TEXT_LIMIT, fit_text
from bot.render.components import (
    Block,
    cost,
    text_blocks,
)

# What a card shows, as compact JSON: the fingerprint is the SHA-256 of this text.
_CANONICAL = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False)


@dataclass(frozen=True, slots=True)
class RenderedMessage:
    """What one status message shows; `fingerprint` is equal iff the user would see the same.

    `controls` are the bot's own buttons (at most four, one row at the card's foot), which the
    layout leaves room for; `with_controls` adds them.
    """

    colour: int
    blocks: tuple[Block, ...]
    fingerprint: str
    controls: tuple[discord.ui.Item[Any], ...] = ()

    @property
    def components(self) -> int:
        """The components the message counts, the container and the controls' row included."""
        controls = 1 + len(self.controls) if self.controls else 0
        return 1 + cost(self.blocks) + controls

    @property
    def text_length(self) -> int:
        return sum(len(block.text) for block in text_blocks(self.blocks))

    def with_controls(self, items: Sequence[discord.ui.Item[Any]], state: str) -> RenderedMessage:
        """The message with the bot's buttons; `state` is what they show (for the fingerprint)."""
        if len(items) > CONTROL_SLOTS:
            raise ValueError(f"at most {CONTROL_SLOTS} controls fit a card")
        digest = hashlib.sha256(f"{self.fingerprint}|{state}".encode()).hexdigest()
        return dataclasses.replace(self, controls=tuple(items), fingerprint=digest)

    def view(self) -> discord.ui.LayoutView:
        """The card as a discord.py layout (a new one each call: views are not shared)."""
        container: discord.ui.Container[discord.ui.LayoutView] = discord.ui.Container(
            accent_colour=discord.Colour(self.colour)
        )
        for block in self.blocks:
            container.add_item(block.item())
        if self.controls:
            container.add_item(discord.ui.ActionRow(*self.controls))
        view = discord.ui.LayoutView(timeout=None)
        view.add_item(container)
        return view


def finish(colour: discord.Colour, blocks: list[Block]) -> RenderedMessage:
    """The message the blocks make once the text budget is applied."""
    texts = text_blocks(blocks)
    if sum([len(text.settle()) for text in texts]) > TEXT_LIMIT:
        fit_text([text.pieces for text in texts])
        for text in texts:
            text.settle()
    shown = tuple([block for block in blocks if block.shows_something()])
    canonical_form = _CANONICAL.encode([colour.value, [block.canonical() for block in shown]])
    fingerprint = hashlib.sha256(canonical_form.encode("utf-8")).hexdigest()
    return RenderedMessage(colour=colour.value, blocks=shown, fingerprint=fingerprint)
