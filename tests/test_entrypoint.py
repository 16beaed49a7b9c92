"""`python -m bot` as an operator runs it: configuration errors and the usage line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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


def test_without_configuration_the_bot_exits_with_one_line_naming_the_variable(
    tmp_path: Path,
) -> None:
    result = run_module(cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "DISCORD_TOKEN is required" in lines[0]
    assert "Traceback" not in result.stderr


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
