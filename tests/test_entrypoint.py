"""`python -m bot` as an operator runs it: configuration errors and the usage line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from cryptography.fernet import Fernet

REPO = Path(__file__).resolve().parent.parent


def run_module(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    base = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(REPO)}
    return subprocess.run(  # noqa: S603
        [sys.executable, "-m", "bot", *args],
        cwd=cwd,
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_without_configuration_every_required_variable_is_named_on_its_own_line(
    tmp_path: Path,
) -> None:
    result = run_module(cwd=tmp_path)
    assert result.returncode == 2
    heading, *lines = result.stderr.strip().splitlines()
    assert heading == (
        "suno-bot: configuration error: 3 settings to fix "
        f"(no .env file in {tmp_path.resolve()}; read the environment only):"
    )
    assert [line.split(":")[0].strip() for line in lines] == [
        "DISCORD_TOKEN is required",
        "SUNO_API_BASE_URL is required",
        "SUNO_API_KEY is required",
    ]
    assert "Traceback" not in result.stderr


def test_a_dotenv_with_empty_values_lists_them_all_and_names_the_file(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(
        "DISCORD_TOKEN=\nSUNO_API_BASE_URL=https://relay.example.com\nSUNO_API_KEY=\n"
        "POLL_INTERVAL_SECONDS=\n"
    )
    result = run_module(cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "suno-bot: configuration error: 3 settings to fix "
        f"(read {(tmp_path / '.env').resolve()} and the environment):",
        "  DISCORD_TOKEN is empty: set it to the bot token from the Discord developer portal",
        "  SUNO_API_KEY is empty: set it to the relay's API key (sent as a bearer token)",
        "  POLL_INTERVAL_SECONDS is empty: set it to a number of seconds, at least 0.1",
    ]


def test_an_invalid_value_is_reported_without_the_secrets(tmp_path: Path) -> None:
    env = {
        "DISCORD_TOKEN": "discord-secret-value",
        "SUNO_API_KEY": "relay-secret-value",
        "SUNO_API_BASE_URL": "not a url",
    }
    result = run_module(cwd=tmp_path, env=env)
    assert result.returncode == 2
    assert "SUNO_API_BASE_URL is invalid" in result.stderr
    assert "secret-value" not in result.stderr + result.stdout


def test_an_unknown_subcommand_prints_the_usage(tmp_path: Path) -> None:
    result = run_module("launch", cwd=tmp_path)
    assert result.returncode == 2
    assert "usage: python -m bot" in result.stderr


def test_new_secret_prints_a_fresh_key_encryption_secret_without_any_configuration(
    tmp_path: Path,
) -> None:
    first, second = (run_module("new-secret", cwd=tmp_path) for _ in range(2))
    assert (first.returncode, second.returncode) == (0, 0)
    secret = first.stdout.strip()
    assert secret != second.stdout.strip()
    assert Fernet(secret.encode()).decrypt(Fernet(secret.encode()).encrypt(b"sk-x")) == b"sk-x"
