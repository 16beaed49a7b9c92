"""Validation of user-supplied task ids before they reach a URL."""

from __future__ import annotations

import re

from bot.suno.errors import InvalidTaskId

MAX_TASK_ID_LENGTH = 128
_TASK_ID = re.compile(f"[A-Za-z0-9_-]{{1,{MAX_TASK_ID_LENGTH}}}")


def normalize_task_id(raw: str) -> str:
    """The trimmed id, or InvalidTaskId when it is not 1-128 characters of [A-Za-z0-9_-]."""
    candidate = raw.strip()
    if not _TASK_ID.fullmatch(candidate):
        raise InvalidTaskId(
            f"task id must be 1-{MAX_TASK_ID_LENGTH} characters of letters, digits, '_' or '-'"
        )
    return candidate
