"""The select menu that opens a task's clips beyond the card: it keeps working after a restart
because its custom id names the task, and its choice is handed to the bot as an event."""

from __future__ import annotations

import hashlib
import re
from typing import Any

import discord

from bot.render.budget import CUSTOM_ID_LIMIT

PICKER_PREFIX = "suno:clips:"
# A task id too long for a custom id is named by a digest, which only a followed task matches.
DIGEST_MARK = "~"
_DIGEST_LENGTH = 24
# The bot answers this event (with the interaction, the task reference and the chosen values).
PICK_EVENT = "clip_pick"


def picker_custom_id(task_id: str) -> str:
    """The custom id of a task's clip picker: the task id, or a digest when it is too long."""
    if len(PICKER_PREFIX) + len(task_id) <= CUSTOM_ID_LIMIT:
        return PICKER_PREFIX + task_id
    return PICKER_PREFIX + DIGEST_MARK + task_digest(task_id)


def task_digest(task_id: str) -> str:
    return hashlib.sha256(task_id.encode()).hexdigest()[:_DIGEST_LENGTH]


class ClipPicker(
    discord.ui.DynamicItem[discord.ui.Select[Any]],
    template=re.compile(re.escape(PICKER_PREFIX) + rf"(?P<ref>{DIGEST_MARK}?[A-Za-z0-9_-]+)"),
):
    """A card's picker as discord.py dispatches it, whenever the card was sent."""

    def __init__(self, select: discord.ui.Select[Any]) -> None:
        super().__init__(select)

    @property
    def ref(self) -> str:
        """The task id, or `~digest` for an id too long for a custom id."""
        match = self.template.match(self.custom_id)
        return match["ref"] if match else ""

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[Any],
        item: discord.ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> ClipPicker:
        if not isinstance(item, discord.ui.Select):
            raise TypeError("a clip picker is a select menu")
        return cls(item)

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        interaction.client.dispatch(PICK_EVENT, interaction, self.ref, list(self.item.values))
