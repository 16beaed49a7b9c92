"""The real bot, assembled as in production, run against the fake Discord and fake relay."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from bot.app import SunoBot
from bot.config import Settings
from bot.runner import assembled_bot
from tests.kit.cards import card_text
from tests.kit.cards import link_buttons as card_links
from tests.kit.fake_discord import FAKE_BOT_TOKEN, FakeDiscord, FakeMessage
from tests.kit.fake_relay import FakeRelay

RELAY_KEY = "sk-test-relay-key-0123456789"


def bot_settings(relay: FakeRelay, database: Path, **overrides: Any) -> Settings:
    """Settings for a bot under test: fast polling, nothing read from the environment."""
    values: dict[str, Any] = {
        "DISCORD_TOKEN": FAKE_BOT_TOKEN,
        "SUNO_API_BASE_URL": relay.base_url,
        "SUNO_API_KEY": relay.api_key or RELAY_KEY,
        "DATABASE_URL": f"sqlite:///{database}",
        "POLL_INTERVAL_SECONDS": 0.1,
        "SUNO_API_TIMEOUT_SECONDS": 2,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


@asynccontextmanager
async def running_bot(fake: FakeDiscord, settings: Settings) -> AsyncIterator[SunoBot]:
    """The production wiring (store, relay session, SunoBot), connected and ready."""
    async with (
        assembled_bot(settings) as bot,
        fake.running(bot, token=settings.discord_token.get_secret_value()),
    ):
        yield bot


def text_of(message: FakeMessage) -> str:
    """Everything a user can read in the message: its content and its card's text displays."""
    return "\n".join([message.content, card_text(message.components)])


def link_buttons(message: FakeMessage) -> list[tuple[str, str]]:
    return card_links(message.components)
