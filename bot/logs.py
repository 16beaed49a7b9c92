"""Logging setup that keeps secrets and interaction tokens out of every log line, and shows
discord.py's connection trouble as one line per failure."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from typing import Any

import aiohttp
import discord

# Interaction tokens travel in webhook and callback URLs that discord.py logs at DEBUG.
_TOKEN_IN_URL = re.compile(r"(/(?:webhooks|interactions)/\d+/)[A-Za-z0-9_.\-]{20,}")
REDACTED = "[redacted]"


class RedactSecrets(logging.Filter):
    """Replaces known secret values and URL-borne tokens in a record's final message."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self._secrets = [secret for secret in secrets if len(secret) >= 4]

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return _TOKEN_IN_URL.sub(rf"\1{REDACTED}", text)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = self.redact(message)
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


def configure_logging(level: str, secrets: Iterable[str]) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%Y-%m-%d %H:%M:%S")
    )
    handler.addFilter(RedactSecrets(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # At DEBUG these log every gateway frame and every SQL statement with its parameters,
    # interaction tokens included: too noisy to help and too revealing to keep.
    for chatty in ("discord.gateway", "aiosqlite"):
        logging.getLogger(chatty).setLevel(max(logging.INFO, logging.getLevelName(level)))
    install_discord_log_filters()


# discord.py warns at every start that voice needs PyNaCl and davey; this bot has no voice.
_VOICE_WARNINGS = frozenset(
    {
        "PyNaCl is not installed, voice will NOT be supported",
        "davey is not installed, voice will NOT be supported",
    }
)
# discord.py logs each failed gateway (re)connection like this, with the whole traceback.
_RECONNECT = "Attempting a reconnect in %.2fs"
# discord.py's notice at every login try; the runner says when it logs in, and why it retries.
_LOGGING_IN = "logging in using static token"
_DESCRIPTION_LIMIT = 200


class DiscordLogFilter(logging.Filter):
    """On the `discord.client` logger: drops the voice warnings and the login notice, and turns
    each failed gateway (re)connection into one warning naming the failure and when discord.py
    tries again."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg in _VOICE_WARNINGS or record.msg == _LOGGING_IN:
            return False
        if record.msg == _RECONNECT and record.exc_info and isinstance(record.args, tuple):
            failure = record.exc_info[1]
            if failure is not None:
                record.msg = "Discord gateway connection failed: %s; next try in %.1fs"
                record.args = (describe_failure(failure), *record.args)
                record.exc_info, record.exc_text = None, None
                record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def install_discord_log_filters() -> None:
    logger = logging.getLogger("discord.client")
    if not any(isinstance(existing, DiscordLogFilter) for existing in logger.filters):
        logger.addFilter(DiscordLogFilter())


def describe_failure(exc: BaseException) -> str:
    """What went wrong talking to Discord, in a few words for one log line: no traceback and
    no response body (a proxy's error page can be long HTML)."""
    for kind, describe in _DESCRIPTIONS:
        if isinstance(exc, kind):
            return describe(exc)[:_DESCRIPTION_LIMIT]
    return _plain(exc)


def _plain(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    text = f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
    return text[:_DESCRIPTION_LIMIT]


def _http_failure(exc: discord.HTTPException) -> str:
    response = exc.response
    return f"{response.method} {response.url.path} answered {exc.status} {response.reason}"


# Most specific first: ClientConnectorError and TimeoutError are OSErrors too.
_DESCRIPTIONS: tuple[tuple[type[BaseException], Callable[[Any], str]], ...] = (
    (discord.HTTPException, _http_failure),
    (discord.ConnectionClosed, lambda e: f"the gateway closed the connection (code {e.code})"),
    (aiohttp.ClientResponseError, lambda e: f"HTTP {e.status} ({e.message})"),
    (
        aiohttp.ClientConnectorError,
        lambda e: f"cannot connect to {e.host}:{e.port}: {e.strerror or _plain(e.os_error)}",
    ),
    (TimeoutError, lambda e: "no answer in time"),
    (OSError, lambda e: e.strerror or _plain(e)),
)
