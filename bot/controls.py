"""The card's own buttons (Lyrics, Refresh, Stop updates, Notify me) and the lyrics pager.

Each is a `DynamicItem` whose custom id carries the task id, so a press is understood after a
restart, on any message, without a view kept in memory. What a press does is up to the
`ControlHandler` the bot sets as `client.controls`; this module only says which buttons a
card shows and what they look like.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from enum import StrEnum
from typing import Any, Protocol, Self

import discord

from bot.i18n import Catalog, default_catalog
from bot.render import Notice, RenderedMessage
from bot.suno.models import Task, TaskStatus

# Discord's limit for a custom id; a task id too long to fit is left out, and the press finds
# the task through the message instead.
CUSTOM_ID_LIMIT = 100
_TASK_ID = r"(?P<task_id>[A-Za-z0-9_-]*)"

Interaction = discord.Interaction[Any]


class Control(StrEnum):
    LYRICS = "lyrics"
    REFRESH = "refresh"
    STOP = "stop"
    NOTIFY = "notify"


class ControlHandler(Protocol):
    """What a press does; `task_id` is "" when the custom id could not carry it."""

    async def lyrics(self, interaction: Interaction, task_id: str, page: int | None) -> None:
        """`page` None: open the lyrics in a new private message; else show that page."""
        ...

    async def refresh(self, interaction: Interaction, task_id: str) -> None: ...

    async def stop(self, interaction: Interaction, task_id: str) -> None: ...

    async def notify(self, interaction: Interaction, task_id: str) -> None: ...


def _handler(interaction: Interaction) -> ControlHandler:
    handler: ControlHandler | None = getattr(interaction.client, "controls", None)
    if handler is None:
        raise RuntimeError("no control handler is set on the client")
    return handler


def custom_id(control: str, task_id: str, *, page: int | None = None) -> str:
    """`suno:<control>:[<page>:]<task id>`, without the task id when it would not fit."""
    prefix = f"suno:{control}:" if page is None else f"suno:{control}:{page}:"
    return prefix + (task_id if len(prefix) + len(task_id) <= CUSTOM_ID_LIMIT else "")


_STYLE = discord.ButtonStyle.secondary


class CardButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]],
    template=rf"suno:(?P<control>lyrics|refresh|stop|notify):{_TASK_ID}",
):
    """One of the card's own buttons; its custom id names the control and the task."""

    def __init__(self, control: Control, task_id: str, label: str | None = None) -> None:
        super().__init__(
            discord.ui.Button(
                style=_STYLE,
                label=label or control.value,
                emoji=_EMOJI[control],
                custom_id=custom_id(control.value, task_id),
            )
        )
        self.control = control
        self.task_id = task_id

    @classmethod
    async def from_custom_id(
        cls, interaction: Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> Self:
        return cls(Control(match["control"]), match["task_id"])

    async def callback(self, interaction: Interaction) -> None:
        handler = _handler(interaction)
        if self.control is Control.LYRICS:
            await handler.lyrics(interaction, self.task_id, None)
        elif self.control is Control.REFRESH:
            await handler.refresh(interaction, self.task_id)
        elif self.control is Control.STOP:
            await handler.stop(interaction, self.task_id)
        else:
            await handler.notify(interaction, self.task_id)


class LyricsPageButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]],
    template=rf"suno:page:(?P<page>\d{{1,3}}):{_TASK_ID}",
):
    """A page turn in the private lyrics; its custom id names the page and the task."""

    def __init__(
        self, task_id: str, page: int, label: str = "Next", *, disabled: bool = False
    ) -> None:
        super().__init__(
            discord.ui.Button(
                style=_STYLE,
                label=label,
                disabled=disabled,
                custom_id=custom_id("page", task_id, page=page),
            )
        )
        self.task_id = task_id
        self.page = page

    @classmethod
    async def from_custom_id(
        cls, interaction: Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> Self:
        return cls(match["task_id"], int(match["page"]))

    async def callback(self, interaction: Interaction) -> None:
        await _handler(interaction).lyrics(interaction, self.task_id, self.page)


DYNAMIC_ITEMS: tuple[type[discord.ui.DynamicItem[Any]], ...] = (CardButton, LyricsPageButton)
_EMOJI = {Control.LYRICS: "📜", Control.REFRESH: "🔄", Control.STOP: "⏹️", Control.NOTIFY: "🔔"}
# Notices after which nobody keeps the message current any more: Refresh brings it back.
_ENDED = frozenset({Notice.AUTO_REFRESH_STOPPED, Notice.LIVE_UPDATES_ENDED, Notice.UPDATES_STOPPED})


def controls_for(task: Task | None, notice: Notice | None, *, private: bool) -> tuple[Control, ...]:
    """The buttons a card shows: while it is kept current, Refresh, Stop updates and (on a
    public card) Notify me; once it stopped, Refresh; Lyrics whenever there are lyrics."""
    lyrics = (Control.LYRICS,) if task is not None and has_lyrics(task) else ()
    if task is not None and task.status is TaskStatus.SUCCESS:
        return lyrics
    if task is not None and task.status is TaskStatus.FAILURE:
        return ()
    if notice in _ENDED:
        return (*lyrics, Control.REFRESH)
    notify = () if private else (Control.NOTIFY,)
    return (*lyrics, Control.REFRESH, Control.STOP, *notify)


def has_lyrics(task: Task) -> bool:
    if any((clip.lyrics or "").strip() for clip in task.clips):
        return True
    return task.lyrics is not None and bool((task.lyrics.text or "").strip())


def control_items(
    task_id: str, controls: Sequence[Control], *, locale: str, catalog: Catalog | None = None
) -> list[discord.ui.Item[Any]]:
    """The buttons for `controls`, labelled in `locale`, for the card's row of controls."""
    catalog = catalog or default_catalog()
    return [
        CardButton(control, task_id, catalog.text(locale, f"button.{control.value}"))
        for control in controls
    ]


def with_controls(
    card: RenderedMessage,
    task_id: str,
    task: Task | None,
    notice: Notice | None,
    *,
    locale: str,
    private: bool = False,
) -> RenderedMessage:
    """`card` with the buttons its state calls for, at its foot."""
    controls = controls_for(task, notice, private=private)
    if not controls:
        return card
    items = control_items(task_id, controls, locale=locale)
    return card.with_controls(items, state=f"{locale}|{','.join(controls)}")
