"""The bot's settings, read once from the environment and `.env`."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    SecretStr,
    ValidationError,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.safety import safe_url

_SECRET_FIELDS = frozenset({"DISCORD_TOKEN", "SUNO_API_KEY"})

# What each variable expects, for the one line an operator sees when it is wrong.
_EXPECTED = {
    "DISCORD_TOKEN": "the bot token from the Discord developer portal",
    "SUNO_API_BASE_URL": "the relay's base URL, e.g. https://relay.example.com",
    "SUNO_API_KEY": "the relay's API key (sent as a bearer token)",
    "DISCORD_GUILD_ID": "a numeric server id, or unset",
    "DATABASE_URL": "a SQLite URL such as sqlite:///data/suno-bot.sqlite3",
    "POLL_INTERVAL_SECONDS": "a number of seconds, at least 0.1",
    "WATCH_TIMEOUT_SECONDS": "a number of seconds greater than 0",
    "LOG_LEVEL": "one of DEBUG, INFO, WARNING, ERROR, CRITICAL",
    "SUNO_API_TIMEOUT_SECONDS": "a number of seconds greater than 0",
    "SUNO_BATCH_SIZE": "a whole number from 1 to 1000",
    "INTERACTION_EXPIRY_MARGIN_SECONDS": "a number of seconds from 0 to 600",
}


class ConfigError(Exception):
    """A setting is missing or invalid; the message names it and never holds a secret."""


def _base_url(value: str) -> str:
    url = safe_url(value)
    if url is None:
        raise ValueError("must be an http(s) URL")
    return url.rstrip("/")


def _blank_is_none(value: Any) -> Any:
    if isinstance(value, str) and not value.strip():
        return None
    return value


def _log_level(value: str) -> str:
    level = value.strip().upper()
    if level not in logging.getLevelNamesMapping():
        raise ValueError("unknown log level")
    return level


def sqlite_path(database_url: str) -> Path:
    """The file a `sqlite:///relative` or `sqlite:////absolute` URL names."""
    prefix = "sqlite:///"
    if not database_url.startswith(prefix) or len(database_url) == len(prefix):
        raise ValueError("only sqlite:/// URLs are supported")
    return Path(database_url[len(prefix) :])


def _database_url(value: str) -> str:
    sqlite_path(value)
    return value


class Settings(BaseSettings):
    """Everything the bot is configured with; built once in `main` and passed down."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
        validate_by_name=True,
    )

    discord_token: SecretStr = Field(alias="DISCORD_TOKEN", min_length=1)
    suno_api_base_url: Annotated[str, AfterValidator(_base_url)] = Field(alias="SUNO_API_BASE_URL")
    suno_api_key: SecretStr = Field(alias="SUNO_API_KEY", min_length=1)
    discord_guild_id: Annotated[int | None, BeforeValidator(_blank_is_none)] = Field(
        default=None, alias="DISCORD_GUILD_ID", gt=0
    )
    database_url: Annotated[str, AfterValidator(_database_url)] = Field(
        default="sqlite:///data/suno-bot.sqlite3", alias="DATABASE_URL"
    )
    poll_interval_seconds: float = Field(default=5.0, alias="POLL_INTERVAL_SECONDS", ge=0.1)
    watch_timeout_seconds: float = Field(default=1800.0, alias="WATCH_TIMEOUT_SECONDS", gt=0)
    log_level: Annotated[str, AfterValidator(_log_level)] = Field(default="INFO", alias="LOG_LEVEL")
    suno_api_timeout_seconds: float = Field(default=15.0, alias="SUNO_API_TIMEOUT_SECONDS", gt=0)
    suno_batch_size: int = Field(default=100, alias="SUNO_BATCH_SIZE", ge=1, le=1000)
    interaction_expiry_margin_seconds: float = Field(
        default=60.0, alias="INTERACTION_EXPIRY_MARGIN_SECONDS", ge=0, le=600
    )

    @property
    def database_path(self) -> Path:
        return sqlite_path(self.database_url)


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment and `.env`, or ConfigError naming the first bad variable."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None


def _describe(exc: ValidationError) -> str:
    error = exc.errors(include_input=False, include_url=False)[0]
    name = str(error["loc"][0]) if error["loc"] else "configuration"
    name = name.upper()
    expected = _EXPECTED.get(name, "a valid value")
    if error["type"] == "missing":
        return f"{name} is required: set it to {expected} (in the environment or .env)"
    return f"{name} is invalid: expected {expected}"
