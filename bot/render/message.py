"""The finished status message: cards fitted into embeds, link buttons, and a fingerprint."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import discord

from bot.render.budget import MAX_EMBEDS, Card, LinkButton, fit_total


@dataclass(frozen=True)
class RenderedMessage:
    """What one status message shows; `fingerprint` is equal iff the user would see the same."""

    embeds: tuple[discord.Embed, ...]
    buttons: tuple[LinkButton, ...]
    fingerprint: str

    def view(self) -> discord.ui.View | None:
        if not self.buttons:
            return None
        view = discord.ui.View(timeout=None)
        for button in self.buttons:
            view.add_item(
                discord.ui.Button(
                    style=discord.ButtonStyle.link,
                    label=button.label,
                    url=button.url,
                    row=button.row,
                )
            )
        return view


def finish(cards: list[Card], buttons: tuple[LinkButton, ...]) -> RenderedMessage:
    """The message the cards and buttons make once every limit is applied."""
    for card in cards:
        card.fit_body()
    embeds = tuple(card.to_embed() for card in fit_total(cards[:MAX_EMBEDS]))
    canonical = json.dumps(
        {
            "embeds": [embed.to_dict() for embed in embeds],
            "buttons": [[button.label, button.url, button.row] for button in buttons],
        },
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    fingerprint = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    return RenderedMessage(embeds=embeds, buttons=buttons, fingerprint=fingerprint)
