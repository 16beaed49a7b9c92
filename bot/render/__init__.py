"""Rendering of a task or an error into Discord embeds and link buttons, within Discord's limits."""

from bot.render.budget import MAX_BUTTONS, LinkButton
from bot.render.layout import STAGES, Notice, render_error, render_task, render_unanswered
from bot.render.message import RenderedMessage
from bot.safety import escape, truncate

__all__ = [
    "MAX_BUTTONS",
    "STAGES",
    "LinkButton",
    "Notice",
    "RenderedMessage",
    "escape",
    "render_error",
    "render_task",
    "render_unanswered",
    "truncate",
]
