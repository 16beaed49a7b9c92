"""Edits a status message through the interaction token or the bot's channel route."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Sequence
from enum import Enum
from typing import Any, Final, Protocol, cast

import aiohttp
import discord

log = logging.getLogger(__name__)

# Discord's documented name for an interaction's original response in the webhook message
# routes ("Edit Original Interaction Response"); discord.py types message ids as int.
ORIGINAL_RESPONSE: Final = cast(int, "@original")

# Discord JSON error codes that mean "this message can no longer be edited by us".
_GONE_CODES = frozenset(
    {
        10003,  # Unknown Channel
        10008,  # Unknown Message
        10015,  # Unknown Webhook
        50001,  # Missing Access
        50013,  # Missing Permissions
    }
)
_TOKEN_DEAD_CODES = frozenset({50027, 10062})  # Invalid Webhook Token, Unknown Interaction
# "This message has been edited too many times": the cap on edits of messages over an hour old.
_EDIT_CAP_CODE = 30046


class EditResult(Enum):
    OK = "ok"
    # The interaction token no longer works: switch path, never retry it.
    TOKEN_DEAD = "token_dead"  # noqa: S105
    GONE = "gone"  # message deleted or channel out of reach: the watch ends quietly
    RETRY = "retry"  # Discord or the network failed transiently: try again later
    CAPPED = "capped"  # the cap on edits of old messages: the same edit works later
    REJECTED = "rejected"  # Discord refused the body: retrying the same body would fail again


class MessageContent(Protocol):
    """What the editor sends (a Components V2 card); a RenderedMessage provides it."""

    def view(self) -> discord.ui.LayoutView: ...


class EditObserver(Protocol):
    """Told about every edit (the metrics); `route` is "token" or "channel"."""

    def discord_edit(self, route: str, result: EditResult) -> None: ...


def classify(error: Exception) -> EditResult:
    """What an edit failure means for the watch that made it."""
    if isinstance(error, discord.HTTPException):
        # Discord has sent this code with more than one status; it always means "later".
        if error.code == _EDIT_CAP_CODE:
            return EditResult.CAPPED
        if error.code in _TOKEN_DEAD_CODES or error.status == 401:
            return EditResult.TOKEN_DEAD
        if error.code in _GONE_CODES or error.status in (403, 404):
            return EditResult.GONE
        if error.status >= 500 or error.status == 429:
            return EditResult.RETRY
        return EditResult.REJECTED
    if isinstance(error, aiohttp.ClientError | TimeoutError | OSError):
        return EditResult.RETRY
    raise error


class MessageEditor:
    """Sends one rendered message to Discord through discord.py's public edit calls.

    The bot-wide `allowed_mentions` applies to every edit; nothing here can make one ping.
    """

    def __init__(self, client: discord.Client, observer: EditObserver | None = None) -> None:
        self._client = client
        self._observer = observer

    async def edit_original(
        self,
        application_id: int,
        token: str,
        message: MessageContent,
        *,
        files: Sequence[discord.File] = (),
    ) -> EditResult:
        # Through the interaction's webhook, as Interaction.edit_original_response does: the
        # bot's HTTPClient keeps one rate-limit bucket per token and rescans them all for each
        # new one, which made ten thousand watches cost minutes of CPU.
        webhook = discord.Webhook.partial(application_id, token, client=self._client)
        edit = _card_edit(message, files)
        try:
            request = webhook.edit_message(ORIGINAL_RESPONSE, **edit)
            return await self._attempt(request, via="interaction", route="token")
        finally:
            release_layout(edit["view"])

    async def edit_channel_message(
        self,
        channel_id: int,
        message_id: int,
        message: MessageContent,
        *,
        files: Sequence[discord.File] = (),
    ) -> EditResult:
        channel = self._client.get_partial_messageable(channel_id)
        edit = _card_edit(message, files)
        try:
            request = channel.get_partial_message(message_id).edit(**edit)
            return await self._attempt(request, via="channel", route="channel")
        finally:
            release_layout(edit["view"])

    async def _attempt(self, request: Awaitable[Any], *, via: str, route: str) -> EditResult:
        try:
            await request
        except Exception as exc:
            result = classify(exc)
            log.log(
                logging.WARNING if result is EditResult.REJECTED else logging.INFO,
                "edit via %s failed (%s): %s",
                via,
                result.value,
                _describe(exc),
            )
        else:
            result = EditResult.OK
        if self._observer is not None:
            self._observer.discord_edit(route, result)
        return result


def _card_edit(message: MessageContent, files: Sequence[discord.File] = ()) -> dict[str, Any]:
    """The edit that shows `message`: discord.py sets the Components V2 flag for a layout, and
    `embeds: []` turns a message that still shows embeds (sent before the cards) into a card
    (discord.py's typing offers no `embeds` beside a layout; its edit sends both as given).
    `attachments` is sent only with files: leaving it out keeps the message's attachments (the
    songs stay on later edits), and an empty list would remove them."""
    edit: dict[str, Any] = {"embeds": [], "view": message.view()}
    if files:
        edit["attachments"] = list(files)
    return edit


def _describe(error: Exception) -> str:
    if isinstance(error, discord.HTTPException):
        return f"HTTP {error.status} code {error.code}: {error.text[:200]}"
    return type(error).__name__


def release_layout(view: discord.ui.LayoutView) -> None:
    """Unlinks a sent layout's items from their parents, so the layout is freed as soon as
    nothing holds it.

    A discord.py layout is a web of parents and children that only the garbage collector can
    free; one per edit, at ten thousand watches, left it hundreds of thousands of objects to
    look through and held some hundred megabytes until it did. The card's buttons are
    DynamicItems, answered whatever message they are on: nothing needs the layout once sent.
    """
    containers = (discord.ui.Container, discord.ui.Section, discord.ui.ActionRow)
    for item in list(view.walk_children()):
        if isinstance(item, containers):
            item.clear_items()
    view.clear_items()
