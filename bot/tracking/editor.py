"""Edits a status message through the interaction token or the bot's channel route."""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from enum import Enum
from typing import Any, Protocol

import aiohttp
import discord
from discord.http import Route, handle_message_parameters
from discord.webhook.async_ import async_context

log = logging.getLogger(__name__)

NO_MENTIONS = discord.AllowedMentions.none()

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


class EditResult(Enum):
    OK = "ok"
    # The interaction token no longer works: switch path, never retry it.
    TOKEN_DEAD = "token_dead"  # noqa: S105
    GONE = "gone"  # message deleted or channel out of reach: the watch ends quietly
    RETRY = "retry"  # Discord or the network failed transiently: try again later
    REJECTED = "rejected"  # Discord refused the body: retrying the same body would fail again


class MessageContent(Protocol):
    """What the editor sends; a RenderedMessage provides it."""

    @property
    def embeds(self) -> tuple[discord.Embed, ...]: ...

    def view(self) -> discord.ui.View | None: ...


def _payload(message: MessageContent) -> dict[str, Any]:
    with handle_message_parameters(
        content=None,
        embeds=list(message.embeds),
        view=message.view(),
        allowed_mentions=NO_MENTIONS,
    ) as params:
        return dict(params.payload or {})


def classify(error: Exception) -> EditResult:
    """What an edit failure means for the watch that made it."""
    if isinstance(error, discord.HTTPException):
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
    """Sends one rendered message to Discord with the bot's own HTTP session and rate limits."""

    def __init__(self, client: discord.Client) -> None:
        self._client = client

    async def edit_original(
        self, application_id: int, token: str, message: MessageContent
    ) -> EditResult:
        # Through discord.py's interaction webhook adapter, as Interaction.edit_original_response
        # does: the bot's HTTPClient keeps one rate-limit bucket per token and rescans them all
        # for each new one, which made ten thousand watches cost minutes of CPU.
        webhook = discord.Webhook.partial(application_id, token, client=self._client)
        http = self._client.http
        request = async_context.get().edit_original_interaction_response(
            application_id,
            token,
            session=webhook.session,
            proxy=http.proxy,
            proxy_auth=http.proxy_auth,
            payload=_payload(message),
        )
        return await self._attempt(request, via="interaction")

    async def edit_channel_message(
        self, channel_id: int, message_id: int, message: MessageContent
    ) -> EditResult:
        route = Route(
            "PATCH",
            "/channels/{channel_id}/messages/{message_id}",
            channel_id=channel_id,
            message_id=message_id,
        )
        return await self._send(route, message, via="channel")

    async def _send(self, route: Route, message: MessageContent, *, via: str) -> EditResult:
        request = self._client.http.request(route, json=_payload(message))
        return await self._attempt(request, via=via)

    async def _attempt(self, request: Awaitable[Any], *, via: str) -> EditResult:
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
            return result
        return EditResult.OK


def _describe(error: Exception) -> str:
    if isinstance(error, discord.HTTPException):
        return f"HTTP {error.status} code {error.code}: {error.text[:200]}"
    return type(error).__name__
