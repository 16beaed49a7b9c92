"""Rendering of a task or an error into a Components V2 card, within Discord's limits."""

from bot.render.layout import (
    MAX_CARD_CLIPS,
    STAGES,
    Notice,
    render_error,
    render_picked,
    render_task,
    render_unanswered,
)
from bot.render.message import RenderedMessage
from bot.render.picker import (
    DIGEST_MARK,
    PICK_EVENT,
    PICKER_PREFIX,
    ClipPicker,
    picker_custom_id,
    task_digest,
)
from bot.safety import escape, truncate

__all__ = [
    "DIGEST_MARK",
    "MAX_CARD_CLIPS",
    "PICKER_PREFIX",
    "PICK_EVENT",
    "STAGES",
    "ClipPicker",
    "Notice",
    "RenderedMessage",
    "escape",
    "picker_custom_id",
    "render_error",
    "render_picked",
    "render_task",
    "render_unanswered",
    "task_digest",
    "truncate",
]
