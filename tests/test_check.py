"""`python -m bot check`: the operator's self-test against a relay with the right and wrong key."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr

from bot.config import Settings
from bot.keys import KeyOwner, KeyRing, MemberKeys
from bot.runner import check
from bot.tracking.store import SqliteWatchStore
from tests.kit.fake_relay import FakeRelay, RelayReply

REPO = Path(__file__).resolve().parent.parent
RELAY_KEY = "sk-check-relay-key"
DISCORD_TOKEN = "discord-token-for-check"


def settings_for(base_url: str, key: str, tmp_path: Path) -> Settings:
    return Settings(
        _env_file=None,
        DISCORD_TOKEN=DISCORD_TOKEN,
        SUNO_API_BASE_URL=base_url,
        SUNO_API_KEY=key,
        DATABASE_URL=f"sqlite:///{tmp_path / 'check.sqlite3'}",
        SUNO_API_TIMEOUT_SECONDS=2,
    )


async def test_check_passes_with_the_right_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with FakeRelay(api_key=RELAY_KEY) as relay:
        code = await check(settings_for(relay.base_url, RELAY_KEY, tmp_path))
        [probe] = relay.requests
    out = capsys.readouterr().out
    assert code == 0
    assert [line.split()[0] for line in out.splitlines()] == ["ok"] * 4
    assert "relay key accepted" in out
    assert probe.method == "GET" and probe.path.startswith("/suno/fetch/check-")
    assert probe.authorization == f"Bearer {RELAY_KEY}"
    assert RELAY_KEY not in out and DISCORD_TOKEN not in out


async def test_check_fails_and_says_so_with_a_wrong_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with FakeRelay(api_key=RELAY_KEY) as relay:
        code = await check(settings_for(relay.base_url, "sk-wrong-key", tmp_path))
    out = capsys.readouterr().out
    assert code == 1
    assert "ok    relay reachable" in out
    assert "FAIL  relay key rejected (401): check SUNO_API_KEY" in out
    assert "sk-wrong-key" not in out


async def test_check_reports_an_unreachable_relay(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with FakeRelay(api_key=RELAY_KEY) as relay:
        relay.fail_next(1, RelayReply(status=502, body="<html>Bad gateway</html>"))
        code = await check(settings_for(relay.base_url, RELAY_KEY, tmp_path))
    out = capsys.readouterr().out
    assert code == 1
    assert "FAIL  relay unreachable" in out


async def test_check_flags_a_base_url_that_is_not_a_suno_relay(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with FakeRelay(api_key=RELAY_KEY, prefix="/v1") as relay:
        wrong_base = relay.base_url.removesuffix("/v1")
        code = await check(settings_for(wrong_base, RELAY_KEY, tmp_path))
    out = capsys.readouterr().out
    assert code == 1
    assert "check SUNO_API_BASE_URL" in out


async def test_the_check_command_runs_from_the_command_line(tmp_path: Path) -> None:
    async with FakeRelay(api_key=RELAY_KEY) as relay:
        env = {
            "PATH": os.environ.get("PATH", ""),
            "PYTHONPATH": str(REPO),
            "DISCORD_TOKEN": DISCORD_TOKEN,
            "SUNO_API_BASE_URL": relay.base_url,
            "SUNO_API_KEY": RELAY_KEY,
            "DATABASE_URL": f"sqlite:///{tmp_path / 'cli.sqlite3'}",
        }
        process = await _run([sys.executable, "-m", "bot", "check"], cwd=tmp_path, env=env)
        out = process.stdout
    assert process.returncode == 0, out
    assert out.count("\n") == 4
    assert RELAY_KEY not in out


async def _run(
    args: list[str], *, cwd: Path, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    proc = await asyncio.create_subprocess_exec(
        *args, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    stdout, _ = await asyncio.wait_for(proc.communicate(), timeout=60)
    return subprocess.CompletedProcess(args, proc.returncode or 0, stdout.decode(), None)


async def test_check_on_postgresql_names_the_database_and_the_running_processes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], postgres_url: str
) -> None:
    async with FakeRelay(api_key=RELAY_KEY) as relay:
        settings = settings_for(relay.base_url, RELAY_KEY, tmp_path).model_copy(
            update={"database_url": postgres_url}
        )
        code = await check(settings)
    out = capsys.readouterr().out
    assert code == 0
    [database] = [line for line in out.splitlines() if "database opens" in line]
    assert "@127.0.0.1:" in database
    assert "no process of the cluster runs now" in database
    assert "test-password" not in out


async def test_check_says_whether_every_member_key_still_decrypts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    store = await SqliteWatchStore.open(tmp_path / "check.sqlite3")
    await MemberKeys(store, KeyRing([SecretStr(old)])).save(
        KeyOwner.USER, 7, "sk-member-0123456789"
    )
    await store.close()
    async with FakeRelay(api_key=RELAY_KEY) as relay:
        settings = settings_for(relay.base_url, RELAY_KEY, tmp_path)
        rotated = settings.model_copy(update={"key_encryption_secret": SecretStr(f"{new},{old}")})
        assert await check(rotated) == 0
        forgotten = settings.model_copy(update={"key_encryption_secret": SecretStr(new)})
        assert await check(forgotten) == 1
    out = capsys.readouterr().out
    assert "ok    member keys on: 1 stored, all readable" in out
    assert "FAIL  member keys: 1 of 1 cannot be decrypted with KEY_ENCRYPTION_SECRET" in out
    assert old not in out and new not in out and "sk-member" not in out
