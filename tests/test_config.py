"""Settings: the configuration contract, its defaults, and the one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import ConfigError, Settings, load_settings

REQUIRED = {
    "DISCORD_TOKEN": "discord-secret-token",
    "SUNO_API_BASE_URL": "https://relay.example.com/",
    "SUNO_API_KEY": "sk-relay-secret",
}
ALL_VARIABLES = [
    *REQUIRED,
    "DISCORD_GUILD_ID",
    "DATABASE_URL",
    "POLL_INTERVAL_SECONDS",
    "WATCH_TIMEOUT_SECONDS",
    "LOG_LEVEL",
    "SUNO_API_TIMEOUT_SECONDS",
    "SUNO_BATCH_SIZE",
    "INTERACTION_EXPIRY_MARGIN_SECONDS",
]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ALL_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    # No .env from the developer's checkout may leak into these tests.
    monkeypatch.chdir(tmp_path)


def set_required(monkeypatch: pytest.MonkeyPatch, **overrides: str) -> None:
    for name, value in {**REQUIRED, **overrides}.items():
        monkeypatch.setenv(name, value)


def test_defaults_follow_the_configuration_contract(monkeypatch: pytest.MonkeyPatch) -> None:
    set_required(monkeypatch)
    settings = load_settings()
    assert settings.suno_api_base_url == "https://relay.example.com"
    assert settings.discord_guild_id is None
    assert settings.database_url == "sqlite:///data/suno-bot.sqlite3"
    assert settings.database_path == Path("data/suno-bot.sqlite3")
    assert settings.poll_interval_seconds == 5
    assert settings.watch_timeout_seconds == 1800
    assert settings.log_level == "INFO"
    assert settings.suno_batch_size == 100


@pytest.mark.parametrize("missing", list(REQUIRED))
def test_each_missing_required_variable_is_named_in_one_line(
    monkeypatch: pytest.MonkeyPatch, missing: str
) -> None:
    set_required(monkeypatch)
    monkeypatch.delenv(missing)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    message = str(caught.value)
    assert missing in message
    assert "required" in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SUNO_API_BASE_URL", "ftp://relay.example.com"),
        ("SUNO_API_BASE_URL", "relay.example.com"),
        ("POLL_INTERVAL_SECONDS", "0.01"),
        ("POLL_INTERVAL_SECONDS", "soon"),
        ("WATCH_TIMEOUT_SECONDS", "0"),
        ("DISCORD_GUILD_ID", "my-server"),
        ("DATABASE_URL", "postgres://db/suno"),
        ("LOG_LEVEL", "LOUD"),
        ("SUNO_BATCH_SIZE", "0"),
    ],
)
def test_an_invalid_variable_is_named_with_what_it_expects(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    set_required(monkeypatch, **{name: value})
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert str(caught.value).startswith(f"{name} is invalid: expected ")


def test_errors_never_show_a_secret_value(monkeypatch: pytest.MonkeyPatch) -> None:
    set_required(monkeypatch, SUNO_API_KEY="", POLL_INTERVAL_SECONDS="x")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert "discord-secret-token" not in str(caught.value)


def test_settings_never_show_a_secret_value(monkeypatch: pytest.MonkeyPatch) -> None:
    set_required(monkeypatch)
    settings = load_settings()
    shown = repr(settings) + str(settings) + settings.model_dump_json()
    assert "discord-secret-token" not in shown
    assert "sk-relay-secret" not in shown


def test_values_are_read_from_a_dotenv_file(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(
        "DISCORD_TOKEN=from-file\nSUNO_API_BASE_URL=http://127.0.0.1:9\nSUNO_API_KEY=k\n"
        "DISCORD_GUILD_ID=123456789012345678\nPOLL_INTERVAL_SECONDS=0.5\n"
    )
    settings = load_settings()
    assert settings.discord_token.get_secret_value() == "from-file"
    assert settings.discord_guild_id == 123456789012345678
    assert settings.poll_interval_seconds == 0.5


def test_an_empty_guild_id_means_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    set_required(monkeypatch, DISCORD_GUILD_ID="")
    assert load_settings().discord_guild_id is None


def test_absolute_sqlite_urls_name_absolute_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    set_required(monkeypatch, DATABASE_URL="sqlite:////data/suno-bot.sqlite3")
    assert load_settings().database_path == Path("/data/suno-bot.sqlite3")


def test_keyword_overrides_use_the_variable_names(monkeypatch: pytest.MonkeyPatch) -> None:
    set_required(monkeypatch, POLL_INTERVAL_SECONDS="7")
    settings = load_settings(POLL_INTERVAL_SECONDS=2, SUNO_API_KEY="sk-override")
    assert settings.poll_interval_seconds == 2
    assert settings.suno_api_key.get_secret_value() == "sk-override"


def test_every_variable_says_what_it_expects() -> None:
    assert {name.upper() for name in Settings.model_fields} == set(ALL_VARIABLES)
    assert all(field.description for field in Settings.model_fields.values())
