"""Log redaction: secrets and interaction tokens never reach a log line."""

from __future__ import annotations

import errno
import io
import logging
import socket
from collections.abc import Iterator
from types import SimpleNamespace

import aiohttp
import discord
import pytest

from bot.logs import (
    REDACTED,
    DiscordLogFilter,
    RedactSecrets,
    describe_failure,
    install_discord_log_filters,
)


def capture(filter_: RedactSecrets) -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(filter_)
    logger = logging.getLogger(f"test-redaction-{id(stream)}")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    return logger, stream


def test_known_secrets_are_replaced_in_messages_and_arguments() -> None:
    logger, stream = capture(RedactSecrets(["discord-secret", "sk-relay-key"]))
    logger.info("token %s and key sk-relay-key", "discord-secret")
    output = stream.getvalue()
    assert "discord-secret" not in output
    assert "sk-relay-key" not in output
    assert output.count(REDACTED) == 2


def test_interaction_tokens_in_urls_are_replaced() -> None:
    logger, stream = capture(RedactSecrets([]))
    token = "aW50ZXJhY3Rpb246MTIzNDU2Nzg5MDEyMzQ1Njc4OmFiY2RlZmdo"
    logger.debug("PATCH https://discord.com/api/v10/webhooks/1234/%s/messages/@original", token)
    logger.debug("POST https://discord.com/api/v10/interactions/99/%s/callback", token)
    output = stream.getvalue()
    assert token not in output
    assert "/webhooks/1234/[redacted]/messages/@original" in output


def test_secrets_inside_tracebacks_are_replaced() -> None:
    logger, stream = capture(RedactSecrets(["sk-relay-key"]))
    try:
        raise RuntimeError("request with sk-relay-key failed")
    except RuntimeError:
        logger.exception("boom")
    assert "sk-relay-key" not in stream.getvalue()
    assert "RuntimeError" in stream.getvalue()


@pytest.fixture
def discord_client_log() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """discord.py's `discord.client` logger with the bot's filters, captured in a stream."""
    logger = logging.getLogger("discord.client")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    saved = logger.handlers[:], logger.filters[:], logger.propagate, logger.level
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    install_discord_log_filters()
    try:
        yield logger, stream
    finally:
        logger.handlers[:], logger.filters[:], logger.propagate, logger.level = saved


def test_voice_support_warnings_are_silenced_and_other_warnings_are_kept(
    discord_client_log: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = discord_client_log
    logger.warning("PyNaCl is not installed, voice will NOT be supported")
    logger.warning("davey is not installed, voice will NOT be supported")
    logger.warning("Application has an interaction endpoint URL set")
    assert stream.getvalue().splitlines() == [
        "WARNING Application has an interaction endpoint URL set"
    ]


def test_discord_login_notice_is_left_to_the_runner(
    discord_client_log: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = discord_client_log
    logger.info("logging in using static token")
    assert stream.getvalue() == ""


def test_installing_the_filters_twice_adds_them_once() -> None:
    logger = logging.getLogger("discord.client")
    saved = logger.filters[:]
    try:
        install_discord_log_filters()
        install_discord_log_filters()
        assert sum(isinstance(f, DiscordLogFilter) for f in logger.filters) == 1
    finally:
        logger.filters[:] = saved


def test_a_failed_gateway_reconnect_is_one_line_naming_the_failure_and_the_next_try(
    discord_client_log: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = discord_client_log
    try:
        raise OSError(errno.ECONNREFUSED, "Connect call failed ('127.0.0.1', 9)")
    except OSError:
        logger.exception("Attempting a reconnect in %.2fs", 3.25)
    assert stream.getvalue().splitlines() == [
        "WARNING Discord gateway connection failed: Connect call failed ('127.0.0.1', 9); "
        "next try in 3.2s"
    ]


def test_other_discord_errors_keep_their_traceback(
    discord_client_log: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = discord_client_log
    try:
        raise RuntimeError("a bug in an event handler")
    except RuntimeError:
        logger.exception("Ignoring exception in %s", "on_ready")
    assert "Traceback" in stream.getvalue()


async def test_a_refused_connection_is_described_by_host_and_reason() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientConnectorError) as caught:
            await session.get(f"http://127.0.0.1:{port}/api/v10/users/@me")
    described = describe_failure(caught.value)
    assert described.startswith(f"cannot connect to 127.0.0.1:{port}: ")
    assert "\n" not in described


def test_failures_are_described_in_a_few_words() -> None:
    closed = SimpleNamespace(close_code=4000)
    assert describe_failure(TimeoutError()) == "no answer in time"
    assert (
        describe_failure(discord.ConnectionClosed(closed, shard_id=None))  # type: ignore[arg-type]
        == "the gateway closed the connection (code 4000)"
    )
    handshake = aiohttp.WSServerHandshakeError(
        request_info=SimpleNamespace(real_url="ws://127.0.0.1/gateway"),  # type: ignore[arg-type]
        history=(),
        status=503,
        message="Invalid response status",
    )
    assert describe_failure(handshake) == "HTTP 503 (Invalid response status)"
    assert describe_failure(ValueError("bad\nthing")) == "ValueError: bad"
