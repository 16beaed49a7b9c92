"""Typed relay failures; each carries a catalog key for the message the requester sees."""

from __future__ import annotations

from typing import ClassVar


class RelayError(Exception):
    """Base of every relay failure. `str()` is safe to log: it never holds a secret."""

    message_key: ClassVar[str] = "error.relay_unavailable"
    transient: ClassVar[bool] = False
    # The failure's name in the relay request metrics: one of a few fixed words.
    outcome: ClassVar[str] = "error"

    def __init__(self, detail: str, *, status: int | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.status = status

    def __str__(self) -> str:
        prefix = f"HTTP {self.status}: " if self.status is not None else ""
        return f"{prefix}{self.detail}"


class InvalidTaskId(RelayError):
    """The id is not 1-128 characters of [A-Za-z0-9_-]; no request was made."""

    message_key = "error.invalid_task_id"
    outcome = "invalid_id"


class TaskNotFound(RelayError):
    """The relay does not know the task, or it belongs to another key."""

    message_key = "error.task_not_found"
    outcome = "not_found"


class RelayKeyRejected(RelayError):
    """The relay answered 401/403: the bot's key is not accepted."""

    message_key = "error.key_rejected"
    outcome = "key_rejected"


class RelayUnavailable(RelayError):
    """Timeouts, connection errors, 5xx, 429, HTML or malformed JSON: try again later."""

    message_key = "error.relay_unavailable"
    outcome = "unavailable"
    transient = True

    def __init__(
        self, detail: str, *, status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(detail, status=status)
        self.retry_after = retry_after


class RelayProtocolError(RelayError):
    """A successful answer whose body is not a task."""

    message_key = "error.relay_protocol"
    outcome = "protocol_error"
    transient = True


class BatchUnsupported(RelayError):
    """The relay has no batch fetch endpoint (404/405, or an answer that is not a list)."""

    message_key = "error.relay_protocol"
    outcome = "unsupported"
