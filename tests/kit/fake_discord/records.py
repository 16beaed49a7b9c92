"""What the fake Discord stores and records: messages, interactions, requests, callbacks, edits."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from tests.kit.snowflakes import snowflake_time

DEFAULT_APPLICATION_ID = 1_181_000_000_000_000_001
DEFAULT_BOT_USER_ID = 1_181_000_000_000_000_002
DEFAULT_GUILD_ID = 1_181_000_000_000_000_003
DEFAULT_CHANNEL_ID = 1_181_000_000_000_000_004
DEFAULT_USER_ID = 1_181_000_000_000_000_005
FAKE_BOT_TOKEN = "fake-bot-token"

ACK_WINDOW_SECONDS = 3.0
TOKEN_LIFETIME = timedelta(minutes=15)
ATTACHMENT_SIZE_LIMIT = 10 * 1024 * 1024

SUPPRESS_EMBEDS = 1 << 2
EPHEMERAL = 1 << 6
LOADING = 1 << 7
SUPPRESS_NOTIFICATIONS = 1 << 12
IS_COMPONENTS_V2 = 1 << 15

# The flags a message body may set: on any message, and on one posted with the bot token.
MESSAGE_FLAGS = SUPPRESS_EMBEDS | EPHEMERAL | SUPPRESS_NOTIFICATIONS | IS_COMPONENTS_V2
CHANNEL_MESSAGE_FLAGS = SUPPRESS_EMBEDS | SUPPRESS_NOTIFICATIONS | IS_COMPONENTS_V2

# Predicates may depend on the clock as well as on the fake's state.
POLL_INTERVAL = 0.05

EditVia = Literal["callback", "webhook", "channel"]
JSONObject = dict[str, Any]


@dataclass
class RecordedRequest:
    """One REST request the bot made, and how the fake answered it."""

    method: str
    path: str
    query: dict[str, str]
    json: Any
    headers: dict[str, str]
    has_authorization: bool
    time: float
    files: list[str] = field(default_factory=list)
    status: int = 0
    response: Any = None

    def __str__(self) -> str:
        return f"{self.method} {self.path} -> {self.status}"


@dataclass(frozen=True)
class CallbackRecord:
    """An accepted interaction callback: its type, its data and how long after dispatch it came."""

    type: int
    data: JSONObject | None
    elapsed: float


@dataclass(frozen=True)
class EditRecord:
    """One change to a message: which route made it, the body it sent, when (monotonic)."""

    via: EditVia
    payload: JSONObject
    time: float


@dataclass(frozen=True)
class Upload:
    """A file uploaded with a request (only its name, size and type are kept)."""

    filename: str
    size: int
    content_type: str


@dataclass(eq=False)
class FakeMessage:
    """A message as the fake Discord stores it."""

    id: int
    channel_id: int
    guild_id: int | None
    author: JSONObject
    type: int
    created_at: datetime
    webhook_id: int | None = None
    interaction_id: int | None = None
    interaction_metadata: JSONObject | None = None
    content: str = ""
    embeds: list[JSONObject] = field(default_factory=list)
    components: list[JSONObject] = field(default_factory=list)
    attachments: list[JSONObject] = field(default_factory=list)
    flags: int = 0
    tts: bool = False
    edited_at: datetime | None = None
    deleted: bool = False
    edits: list[EditRecord] = field(default_factory=list)
    # What a new message was sent with: the message it replies to, and whom it may ping.
    message_reference: JSONObject | None = None
    allowed_mentions: JSONObject | None = None

    @property
    def ephemeral(self) -> bool:
        return bool(self.flags & EPHEMERAL)

    @property
    def loading(self) -> bool:
        return bool(self.flags & LOADING)

    @property
    def payload(self) -> JSONObject:
        """The message object Discord would return for this message now."""
        data: JSONObject = {
            "id": str(self.id),
            "type": self.type,
            "channel_id": str(self.channel_id),
            "author": dict(self.author),
            "content": self.content,
            "embeds": copy.deepcopy(self.embeds),
            "components": copy.deepcopy(self.components),
            "attachments": copy.deepcopy(self.attachments),
            "mentions": [],
            "mention_roles": [],
            "mention_everyone": False,
            "pinned": False,
            "tts": self.tts,
            "timestamp": self.created_at.isoformat(),
            "edited_timestamp": self.edited_at.isoformat() if self.edited_at else None,
            "flags": self.flags,
        }
        if self.guild_id is not None:
            data["guild_id"] = str(self.guild_id)
        if self.webhook_id is not None:
            data["webhook_id"] = str(self.webhook_id)
            data["application_id"] = str(self.webhook_id)
        if self.interaction_metadata is not None:
            data["interaction_metadata"] = copy.deepcopy(self.interaction_metadata)
        if self.message_reference is not None:
            data["message_reference"] = copy.deepcopy(self.message_reference)
            data["type"] = 19  # a reply
        return data


class Changes:
    """Wakes waiters whenever the fake's state changes, so waiting costs no busy polling."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    async def until(
        self, predicate: Callable[[], bool], within: float, describe: Callable[[], str]
    ) -> None:
        deadline = time.monotonic() + within
        while not predicate():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(describe())
            event = self._event
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), min(remaining, POLL_INTERVAL))


class FakeInteraction:
    """An interaction the fake dispatched, and what the bot did with it."""

    def __init__(
        self,
        *,
        id: int,
        token: str,
        type: int,
        channel_id: int,
        guild_id: int | None,
        user: JSONObject,
        payload: JSONObject,
        message_id: int | None,
        changes: Changes,
    ) -> None:
        self.id = id
        self.token = token
        self.type = type
        self.channel_id = channel_id
        self.guild_id = guild_id
        self.user = user
        self.payload = payload
        self.message_id = message_id
        self.created_at = snowflake_time(id)
        self.dispatched_at = 0.0
        self.callback: CallbackRecord | None = None
        self.followup_ids: list[int] = []
        self.original_message_id: int | None = None
        self.token_revoked = False
        self._changes = changes

    @property
    def expires_at(self) -> datetime:
        return self.created_at + TOKEN_LIFETIME

    def token_expired(self) -> bool:
        return self.token_revoked or datetime.now(UTC) >= self.expires_at

    async def wait_callback(self, timeout: float = 5.0) -> CallbackRecord:  # noqa: ASYNC109
        await self._changes.until(
            lambda: self.callback is not None,
            timeout,
            lambda: f"interaction {self.id} got no accepted callback within {timeout}s",
        )
        assert self.callback is not None
        return self.callback

    def __repr__(self) -> str:
        return f"<FakeInteraction id={self.id} type={self.type} callback={self.callback}>"
