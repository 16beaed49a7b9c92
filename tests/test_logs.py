"""Log redaction: secrets and interaction tokens never reach a log line."""

from __future__ import annotations

import io
import logging

from bot.logs import REDACTED, RedactSecrets


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
