"""Settings: the configuration contract, its defaults, and the one-line errors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from bot.config import ConfigError, ProbeSettings, Settings, StoreSettings, load, load_settings

REPO = Path(__file__).resolve().parent.parent

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
    "METRICS_ADDRESS",
    "SHARD_COUNT",
    "SHARD_IDS",
    "CLUSTER_LEASE_SECONDS",
    "ATTACH_AUDIO",
    "AUDIO_HOSTS",
    "AUDIO_TIMEOUT_SECONDS",
    "KEY_ENCRYPTION_SECRET",
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
    assert settings.metrics_address is None  # no health and metrics endpoint unless asked
    assert settings.attach_audio is True
    assert {entry.host for entry in settings.audio_host_list} == {
        "cdn1.suno.ai",
        "cdn2.suno.ai",
        "audiopipe.suno.ai",
    }


@pytest.mark.parametrize("missing", list(REQUIRED))
def test_each_missing_required_variable_is_named_in_one_line(
    monkeypatch: pytest.MonkeyPatch, missing: str
) -> None:
    set_required(monkeypatch)
    monkeypatch.delenv(missing)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    [line] = [line for line in str(caught.value).splitlines() if missing in line]
    assert f"{missing} is required: set it to " in line


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SUNO_API_BASE_URL", "ftp://relay.example.com"),
        ("SUNO_API_BASE_URL", "relay.example.com"),
        ("POLL_INTERVAL_SECONDS", "0.01"),
        ("POLL_INTERVAL_SECONDS", "soon"),
        ("WATCH_TIMEOUT_SECONDS", "0"),
        ("DISCORD_GUILD_ID", "my-server"),
        ("DATABASE_URL", "mysql://db/suno"),
        ("DATABASE_URL", "postgresql://"),
        ("SHARD_COUNT", "0"),
        ("SHARD_IDS", "three"),
        ("CLUSTER_LEASE_SECONDS", "0.5"),
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
    [problem] = caught.value.problems
    assert problem.startswith(f"{name} is invalid: expected ")


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


def test_every_variable_is_in_the_example_file_and_the_readme_table() -> None:
    example = (REPO / ".env.example").read_text()
    in_example = {line.split("=")[0] for line in example.splitlines() if "=" in line}
    readme = (REPO / "README.md").read_text()
    in_table = {row.split("`")[1] for row in readme.splitlines() if row.startswith("| `")}
    assert set(ALL_VARIABLES) <= {name.lstrip("# ") for name in in_example}
    assert set(ALL_VARIABLES) <= in_table


def test_the_readme_lists_the_log_levels_the_error_message_names() -> None:
    description = Settings.model_fields["log_level"].description or ""
    levels = re.findall(r"[A-Z]+", description)
    readme = (REPO / "README.md").read_text()
    logs = readme.split("\n## Logs\n")[1].split("\n## ")[0]
    row = next(line for line in readme.splitlines() if line.startswith("| `LOG_LEVEL`"))
    meaning = row.split("|")[4]
    for text in (logs, meaning):
        assert list(dict.fromkeys(re.findall(r"`([A-Z]+)`", text))) == levels
        assert "in any case" in text


@pytest.mark.parametrize("level", ["debug", "Info", "warning", "ERROR", " critical "])
def test_a_log_level_is_accepted_in_any_case(monkeypatch: pytest.MonkeyPatch, level: str) -> None:
    set_required(monkeypatch, LOG_LEVEL=level)
    assert load_settings().log_level == level.strip().upper()


@pytest.mark.parametrize("address", ["127.0.0.1:9108", "0.0.0.0:9108", "[::1]:9108"])
def test_a_metrics_address_is_a_host_and_port(
    monkeypatch: pytest.MonkeyPatch, address: str
) -> None:
    set_required(monkeypatch, METRICS_ADDRESS=address)
    assert load_settings().metrics_address == address


@pytest.mark.parametrize("address", ["9108", ":9108", "localhost", "host:port", "host:70000"])
def test_a_metrics_address_without_a_host_and_port_is_named_with_what_it_expects(
    monkeypatch: pytest.MonkeyPatch, address: str
) -> None:
    set_required(monkeypatch, METRICS_ADDRESS=address)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert caught.value.problems == (
        "METRICS_ADDRESS is invalid: expected host:port such as 127.0.0.1:9108, or unset",
    )


def test_backup_and_health_need_no_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "sqlite:////srv/bot/watches.sqlite3")
    monkeypatch.setenv("METRICS_ADDRESS", "127.0.0.1:9108")
    assert load(StoreSettings).database_path == Path("/srv/bot/watches.sqlite3")
    assert load(ProbeSettings).metrics_address == "127.0.0.1:9108"
    with pytest.raises(ConfigError):
        load_settings()  # the bot itself still needs its token and relay


def test_every_missing_or_empty_value_is_listed_in_one_message(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(
        "DISCORD_TOKEN=\nSUNO_API_KEY=\nPOLL_INTERVAL_SECONDS=soon\nLOG_LEVEL=INFO\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_settings()
    error = caught.value
    assert error.problems == (
        "DISCORD_TOKEN is empty: set it to the bot token from the Discord developer portal",
        "SUNO_API_BASE_URL is required: set it to the relay's base URL, "
        "e.g. https://relay.example.com",
        "SUNO_API_KEY is empty: set it to the relay's API key (sent as a bearer token)",
        "POLL_INTERVAL_SECONDS is invalid: expected a number of seconds, at least 0.1",
    )
    assert all(problem in str(error) for problem in error.problems)


def test_an_empty_value_is_reported_as_empty_rather_than_invalid(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    set_required(monkeypatch, SUNO_API_BASE_URL="  ", DATABASE_URL="")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert caught.value.problems == (
        "SUNO_API_BASE_URL is empty: set it to the relay's base URL, e.g. https://relay.example.com",
        "DATABASE_URL is empty: set it to a SQLite URL such as sqlite:///data/suno-bot.sqlite3,"
        " or a PostgreSQL URL such as postgresql://user:password@host/database",
    )


def test_the_message_names_the_dotenv_file_it_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("DISCORD_TOKEN=x\n")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert caught.value.source == f"read {tmp_path.resolve() / '.env'} and the environment"
    assert str(tmp_path.resolve() / ".env") in str(caught.value)


def test_without_a_dotenv_the_message_says_none_was_found(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert caught.value.source == (
        f"no .env file in {tmp_path.resolve()}; read the environment only"
    )
    assert "no .env file in" in str(caught.value)


def test_a_dotenv_full_of_problems_never_shows_a_secret(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(
        "DISCORD_TOKEN=discord-secret-token\nSUNO_API_KEY=sk-relay-secret\n"
        "SUNO_API_BASE_URL=sk-relay-secret\nDISCORD_GUILD_ID=discord-secret-token\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_settings()
    message = str(caught.value)
    assert "SUNO_API_BASE_URL is invalid" in message
    assert "DISCORD_GUILD_ID is invalid" in message
    assert "discord-secret-token" not in message
    assert "sk-relay-secret" not in message


@pytest.mark.parametrize(
    ("value", "shards"), [("0-3", [0, 1, 2, 3]), ("4,6", [4, 6]), ("0-1, 6", [0, 1, 6])]
)
def test_shard_ids_name_ranges_and_lists(
    monkeypatch: pytest.MonkeyPatch, value: str, shards: list[int]
) -> None:
    set_required(monkeypatch, SHARD_COUNT="8", SHARD_IDS=value, DATABASE_URL="postgresql://db/suno")
    assert load_settings().shards == shards


def test_without_shard_ids_a_process_runs_every_shard(monkeypatch: pytest.MonkeyPatch) -> None:
    set_required(monkeypatch, SHARD_COUNT="3")
    assert load_settings().shards == [0, 1, 2]
    set_required(monkeypatch, SHARD_COUNT="")
    assert load_settings().shards is None


@pytest.mark.parametrize(
    ("env", "problem"),
    [
        ({"SHARD_IDS": "0-1"}, "SHARD_IDS needs SHARD_COUNT"),
        (
            {"SHARD_COUNT": "4", "SHARD_IDS": "2-4"},
            "SHARD_IDS names a shard at or above SHARD_COUNT",
        ),
        ({"SHARD_COUNT": "4", "SHARD_IDS": "3-1"}, "SHARD_IDS is invalid: expected shard ids"),
        ({"SHARD_COUNT": "4", "SHARD_IDS": "0-1"}, "SHARD_IDS names only some shards"),
    ],
)
def test_shard_ids_that_do_not_fit_are_named(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], problem: str
) -> None:
    set_required(monkeypatch, **env)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    [line] = caught.value.problems
    assert line.startswith(problem)


def test_a_postgresql_url_selects_the_shared_store_and_is_never_shown(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    set_required(monkeypatch, DATABASE_URL="postgresql://bot:pw-secret@db:5432/suno")
    settings = load_settings()
    assert settings.clustered
    assert "pw-secret" not in repr(settings)


def test_a_sqlite_process_may_run_every_shard_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    set_required(monkeypatch, SHARD_COUNT="2", SHARD_IDS="0-1")
    assert load_settings().shards == [0, 1]


def test_audio_hosts_take_hosts_and_host_ports(monkeypatch: pytest.MonkeyPatch) -> None:
    set_required(monkeypatch, AUDIO_HOSTS=" CDN.example.com , 127.0.0.1:8080,[::1]:9000 ")
    hosts = load_settings().audio_host_list
    assert [(entry.host, entry.port) for entry in hosts] == [
        ("cdn.example.com", None),
        ("127.0.0.1", 8080),
        ("::1", 9000),
    ]


@pytest.mark.parametrize("value", ["cdn.example.com:99999", "http://cdn.example.com", "a b"])
def test_a_bad_audio_host_is_named_with_what_it_expects(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    set_required(monkeypatch, AUDIO_HOSTS=value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert caught.value.problems[0].startswith("AUDIO_HOSTS is invalid: expected comma-separated")


def test_attach_audio_can_be_turned_off(monkeypatch: pytest.MonkeyPatch) -> None:
    set_required(monkeypatch, ATTACH_AUDIO="false")
    assert load_settings().attach_audio is False


def test_member_keys_are_off_unless_key_encryption_secret_is_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    set_required(monkeypatch, KEY_ENCRYPTION_SECRET="  ")
    assert load_settings().key_encryption_secrets == ()


def test_key_encryption_secret_lists_the_current_secret_first_then_older_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    current, older = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    set_required(monkeypatch, KEY_ENCRYPTION_SECRET=f"{current}, {older}")
    secrets = load_settings().key_encryption_secrets
    assert [secret.get_secret_value() for secret in secrets] == [current, older]
    assert current not in repr(load_settings())


@pytest.mark.parametrize("value", ["a passphrase", "sk-0123456789", f"{'A' * 44},"])
def test_a_key_encryption_secret_that_is_not_fernet_keys_is_named_but_never_shown(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    set_required(monkeypatch, KEY_ENCRYPTION_SECRET=value)
    with pytest.raises(ConfigError) as raised:
        load_settings()
    [problem] = raised.value.problems
    assert problem.startswith("KEY_ENCRYPTION_SECRET is invalid: expected")
    assert "python -m bot new-secret" in problem
    assert value not in str(raised.value)
