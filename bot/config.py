"""The bot's settings, read once from the environment and `.env`."""

from __future__ import annotations

import base64
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, TypeVar

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    SecretStr,
    ValidationError,
    model_validator,
)
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.audio import DEFAULT_AUDIO_HOSTS, AudioHost, parse_audio_hosts
from bot.safety import safe_url


class ConfigError(Exception):
    """Settings are missing, empty or invalid: one line per variable saying what it expects,
    and where the settings were read from. Never holds a value, so never a secret."""

    def __init__(self, problems: Sequence[str], source: str) -> None:
        self.problems = tuple(problems)
        self.source = source
        count = len(self.problems)
        heading = f"{count} setting{'s' if count != 1 else ''} to fix ({source}):"
        super().__init__("\n".join([heading, *(f"  {problem}" for problem in self.problems)]))


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


# SQLAlchemy spells the driver into the scheme; the bot always uses asyncpg.
POSTGRES_SCHEMES = ("postgresql://", "postgres://", "postgresql+asyncpg://")


def is_postgres_url(database_url: str) -> bool:
    """Whether the URL names a PostgreSQL database (the cluster store) rather than a file."""
    return database_url.startswith(POSTGRES_SCHEMES)


def _database_url(value: str) -> str:
    if is_postgres_url(value):
        if len(value) == len(value.split("//", 1)[0]) + 2:
            raise ValueError("a PostgreSQL URL needs a host or a database")
        return value
    sqlite_path(value)
    return value


def shard_ids(value: str) -> list[int]:
    """The shard ids a `0-3`, `4,5,6` or `0-1,4` setting names, sorted, each once."""
    ids: set[int] = set()
    for part in value.split(","):
        first, dash, last = part.strip().partition("-")
        if not first.isdigit() or (dash and not last.isdigit()):
            raise ValueError("expected shard ids such as 0-3 or 0,2,5")
        low, high = int(first), int(last) if dash else int(first)
        if high < low:
            raise ValueError("a shard range must go upwards, such as 0-3")
        ids.update(range(low, high + 1))
    return sorted(ids)


def _shard_ids(value: str | None) -> str | None:
    if value is not None:
        shard_ids(value)
    return value


def split_address(address: str) -> tuple[str, int]:
    """The host and port of `host:port` (`[::1]:9108` for IPv6; port 0 takes any free port)."""
    host, colon, port = address.strip().rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not colon or not host or not port.isdigit() or int(port) > 65535:
        raise ValueError("expected host:port")
    return host, int(port)


def _audio_hosts(value: str) -> str:
    parse_audio_hosts(value)
    return value


def _metrics_address(value: str | None) -> str | None:
    if value is not None:
        split_address(value)
    return value


def _key_encryption_secret(value: SecretStr | None) -> SecretStr | None:
    if value is not None:
        split_secrets(value)
    return value


def split_secrets(value: SecretStr) -> tuple[SecretStr, ...]:
    """The comma-separated Fernet keys of KEY_ENCRYPTION_SECRET, newest (the one that
    encrypts) first; ValueError, without the value, when one is not a Fernet key."""
    parts = [part.strip() for part in value.get_secret_value().split(",")]
    if not all(_is_fernet_key(part) for part in parts):
        raise ValueError("expected Fernet keys")
    return tuple(SecretStr(part) for part in parts)


def _is_fernet_key(text: str) -> bool:
    try:
        return len(base64.urlsafe_b64decode(text.encode("ascii"))) == FERNET_KEY_BYTES
    except (ValueError, UnicodeEncodeError):
        return False


DatabaseUrl = Annotated[str, AfterValidator(_database_url)]
MetricsAddress = Annotated[
    str | None, BeforeValidator(_blank_is_none), AfterValidator(_metrics_address)
]
DATABASE_URL_DEFAULT = "sqlite:///data/suno-bot.sqlite3"
DATABASE_URL_EXPECTED = (
    "a SQLite URL such as sqlite:///data/suno-bot.sqlite3, or a PostgreSQL URL such as"
    " postgresql://user:password@host/database"
)
ShardIds = Annotated[str | None, BeforeValidator(_blank_is_none), AfterValidator(_shard_ids)]
METRICS_ADDRESS_EXPECTED = "host:port such as 127.0.0.1:9108, or unset"
FERNET_KEY_BYTES = 32
ENCRYPTION_EXPECTED = (
    "one or more comma-separated Fernet keys (make one with: python -m bot new-secret), or unset"
)


class Settings(BaseSettings):
    """Everything the bot is configured with; built once in `main` and passed down."""

    # Each variable is its field's name in upper case: matching ignores case, for the
    # environment, `.env` and keyword arguments alike (Settings(DISCORD_TOKEN=...) works).
    # A description says what the variable expects, for the one line an operator sees when
    # it is wrong.
    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
    )

    discord_token: SecretStr = Field(
        min_length=1, description="the bot token from the Discord developer portal"
    )
    suno_api_base_url: Annotated[str, AfterValidator(_base_url)] = Field(
        description="the relay's base URL, e.g. https://relay.example.com"
    )
    suno_api_key: SecretStr = Field(
        min_length=1, description="the relay's API key (sent as a bearer token)"
    )
    discord_guild_id: Annotated[int | None, BeforeValidator(_blank_is_none)] = Field(
        default=None, gt=0, description="a numeric server id, or unset"
    )
    # A PostgreSQL URL may hold a password: kept out of the settings' repr.
    database_url: DatabaseUrl = Field(
        default=DATABASE_URL_DEFAULT, description=DATABASE_URL_EXPECTED, repr=False
    )
    poll_interval_seconds: float = Field(
        default=5.0, ge=0.1, description="a number of seconds, at least 0.1"
    )
    watch_timeout_seconds: float = Field(
        default=1800.0, gt=0, description="a number of seconds greater than 0"
    )
    log_level: Annotated[str, AfterValidator(_log_level)] = Field(
        default="INFO", description="one of DEBUG, INFO, WARNING, ERROR, CRITICAL"
    )
    suno_api_timeout_seconds: float = Field(
        default=15.0, gt=0, description="a number of seconds greater than 0"
    )
    suno_batch_size: int = Field(
        default=100, ge=1, le=1000, description="a whole number from 1 to 1000"
    )
    interaction_expiry_margin_seconds: float = Field(
        default=60.0, ge=0, le=600, description="a number of seconds from 0 to 600"
    )
    metrics_address: MetricsAddress = Field(default=None, description=METRICS_ADDRESS_EXPECTED)
    shard_count: Annotated[int | None, BeforeValidator(_blank_is_none)] = Field(
        default=None, ge=1, description="a whole number of shards, at least 1, or unset"
    )
    shard_ids: ShardIds = Field(
        default=None,
        description="shard ids below SHARD_COUNT such as 0-3 or 0,2,5, or unset (all shards)",
    )
    cluster_lease_seconds: float = Field(
        default=15.0, ge=1, le=300, description="a number of seconds from 1 to 300"
    )
    attach_audio: bool = Field(default=True, description="true or false")
    audio_hosts: Annotated[str, AfterValidator(_audio_hosts)] = Field(
        default=DEFAULT_AUDIO_HOSTS,
        description="comma-separated host or host:port entries, e.g. cdn1.suno.ai,cdn2.suno.ai",
    )
    audio_timeout_seconds: float = Field(
        default=60.0, gt=0, le=600, description="a number of seconds from 0 to 600"
    )
    # Member and server relay keys are on only with this set: the first key encrypts, every
    # key listed decrypts (older ones stay listed while keys are re-encrypted).
    key_encryption_secret: Annotated[
        SecretStr | None,
        BeforeValidator(_blank_is_none),
        AfterValidator(_key_encryption_secret),
    ] = Field(default=None, description=ENCRYPTION_EXPECTED)

    @model_validator(mode="after")
    def _shards_fit(self) -> Settings:
        if self.shard_ids is not None:
            if self.shard_count is None:
                raise ValueError("SHARD_IDS needs SHARD_COUNT")
            ids = shard_ids(self.shard_ids)
            if ids[-1] >= self.shard_count:
                raise ValueError("SHARD_IDS names a shard at or above SHARD_COUNT")
            if len(ids) < self.shard_count and not self.clustered:
                # On SQLite one process works at a time: the other shards would go unserved.
                raise ValueError(
                    "SHARD_IDS names only some shards: the others need processes of their own,"
                    " which share a PostgreSQL DATABASE_URL (a SQLite store serves one process)"
                )
        return self

    @property
    def database_path(self) -> Path:
        return sqlite_path(self.database_url)

    @property
    def clustered(self) -> bool:
        """Whether the store is shared by several processes (PostgreSQL)."""
        return is_postgres_url(self.database_url)

    @property
    def shards(self) -> list[int] | None:
        """The shard ids this process runs, or None when it is not sharded."""
        if self.shard_count is None:
            return None
        if self.shard_ids is None:
            return list(range(self.shard_count))
        return shard_ids(self.shard_ids)

    @property
    def audio_host_list(self) -> tuple[AudioHost, ...]:
        return parse_audio_hosts(self.audio_hosts)

    @property
    def key_encryption_secrets(self) -> tuple[SecretStr, ...]:
        """The Fernet keys for member and server relay keys, newest first; () when off."""
        if self.key_encryption_secret is None:
            return ()
        return split_secrets(self.key_encryption_secret)


class StoreSettings(BaseSettings):
    """What `python -m bot backup` needs: the store's location, and nothing secret."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    database_url: DatabaseUrl = Field(
        default=DATABASE_URL_DEFAULT, description=DATABASE_URL_EXPECTED
    )

    @property
    def database_path(self) -> Path:
        return sqlite_path(self.database_url)


class ProbeSettings(BaseSettings):
    """What `python -m bot health` needs: where the running bot serves /healthz."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    metrics_address: MetricsAddress = Field(default=None, description=METRICS_ADDRESS_EXPECTED)


AnySettings = TypeVar("AnySettings", bound=BaseSettings)


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment and `.env`, or ConfigError naming every bad variable."""
    return load(Settings, **overrides)


def load(kind: type[AnySettings], **overrides: Any) -> AnySettings:
    """Settings of `kind` (Settings, or the few a subcommand needs), or ConfigError."""
    try:
        return kind(**overrides)
    except ValidationError as exc:
        raise ConfigError(_problems(exc), _source()) from None


def _source() -> str:
    """Which `.env` file was read (pydantic-settings looks in the working directory)."""
    env_file = Path(str(Settings.model_config.get("env_file") or ".env"))
    if env_file.is_file():
        return f"read {env_file.resolve()} and the environment"
    return f"no {env_file} file in {Path.cwd().resolve()}; read the environment only"


def _problems(exc: ValidationError) -> list[str]:
    """One line per variable, in the order of the fields; the first error of a field counts."""
    problems: dict[str, str] = {}
    for error in exc.errors(include_url=False):
        field = str(error["loc"][0]) if error["loc"] else "configuration"
        if field not in problems:
            problems[field] = _problem(field, error)
    return list(problems.values())


def _problem(field: str, error: ErrorDetails) -> str:
    if not error["loc"]:
        # A rule between settings (SHARD_IDS against SHARD_COUNT): its own words, no values.
        return str(error["msg"]).removeprefix("Value error, ")
    info = Settings.model_fields.get(field)
    expected = (info.description if info else None) or "a valid value"
    name = field.upper()
    if error["type"] == "missing":
        return f"{name} is required: set it to {expected}"
    # The input is looked at only to tell an empty value apart; it is never shown.
    value = error.get("input")
    if isinstance(value, str) and not value.strip():
        return f"{name} is empty: set it to {expected}"
    return f"{name} is invalid: expected {expected}"
