"""`python -m bot backup PATH`: an online copy of the running store, checked, one line; and
never an empty database passed off as a backup."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.backup import BackupError, back_up, run_backup
from bot.config import StoreSettings, load
from bot.tracking.store import NewWatch, SqliteWatchStore, WatchOutcome

REPO = Path(__file__).resolve().parent.parent


def new_watch(number: int) -> NewWatch:
    now = datetime.now(UTC)
    return NewWatch(
        task_id=f"task-{number}",
        application_id=1181000000000000001,
        guild_id=1181000000000000002,
        channel_id=1181000000000000003,
        requester_id=1181000000000000004,
        locale="en-US",
        ephemeral=False,
        interaction_id=1181000000000000100 + number,
        interaction_token=f"interaction-token-{number}",
        token_expires_at=now + timedelta(minutes=15),
        deadline_at=now + timedelta(minutes=30),
    )


@pytest.fixture
async def running_store(tmp_path: Path) -> AsyncIterator[SqliteWatchStore]:
    """The bot's store, open as while the bot runs: three watches, one of them finished."""
    store = await SqliteWatchStore.open(tmp_path / "data" / "suno-bot.sqlite3")
    try:
        for number in range(3):
            watch = await store.add(new_watch(number))
        await store.finish(watch.id, WatchOutcome.FINISHED)
        yield store
    finally:
        await store.close()


async def backup_command(*args: str, cwd: Path, **env: str) -> tuple[int, str]:
    """`python -m bot backup ...` with only these settings (no Discord token, no relay key)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "backup",
        *args,
        cwd=cwd,
        env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(REPO), **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(process.communicate(), 60)
    return process.returncode or 0, out.decode()


def names_in(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir())


def size_of(path: Path) -> int:
    return path.stat().st_size


def rows(path: Path, sql: str) -> list[tuple[object, ...]]:
    with closing(sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)) as connection:
        return connection.execute(sql).fetchall()


async def test_a_backup_of_the_running_store_holds_every_watch_and_says_so_in_one_line(
    tmp_path: Path, running_store: SqliteWatchStore
) -> None:
    database = tmp_path / "data" / "suno-bot.sqlite3"
    # The writes are still in the write-ahead log, not yet in the database file.
    assert size_of(Path(f"{database}-wal")) > 0
    code, out = await backup_command("backup.sqlite3", cwd=tmp_path)
    backup = tmp_path / "backup.sqlite3"
    size = size_of(backup)
    assert (code, out) == (
        0,
        f"ok    backup of {database} written to {backup} (3 watches, 2 unfinished;"
        f" {size // 1024} KiB; quick_check ok)\n",
    )
    assert rows(backup, "SELECT task_id, outcome FROM watches ORDER BY id") == [
        ("task-0", "active"),
        ("task-1", "active"),
        ("task-2", "finished"),
    ]
    assert rows(backup, "PRAGMA journal_mode") == [("delete",)]  # one file, nothing beside it
    assert names_in(tmp_path) == ["backup.sqlite3", "data"]
    await running_store.add(new_watch(4))  # the bot goes on writing


async def test_a_backup_taken_while_the_bot_writes_is_one_consistent_snapshot(
    tmp_path: Path, running_store: SqliteWatchStore
) -> None:
    settings = StoreSettings(
        _env_file=None, DATABASE_URL=f"sqlite:///{tmp_path}/data/suno-bot.sqlite3"
    )
    writing = True

    async def write() -> int:
        written = 0
        while writing:
            await running_store.add(new_watch(100 + written))
            written += 1
        return written

    writer = asyncio.create_task(write())
    await asyncio.sleep(0.05)
    made = await asyncio.to_thread(back_up, settings, str(tmp_path / "during.sqlite3"))
    writing = False
    written = await writer
    assert 3 < made.watches < 3 + written + 1
    assert rows(made.path, "PRAGMA quick_check") == [("ok",)]
    assert rows(made.path, "SELECT count(*) FROM watches") == [(made.watches,)]


async def test_a_directory_as_the_target_gets_a_dated_file(
    tmp_path: Path, running_store: SqliteWatchStore
) -> None:
    (tmp_path / "backups").mkdir()
    code, out = await backup_command("backups/", cwd=tmp_path)
    [made] = (tmp_path / "backups").iterdir()
    assert code == 0, out
    assert made.name.startswith(f"suno-bot-{datetime.now(UTC):%Y%m%d}-")
    assert made.suffix == ".sqlite3"
    assert f"written to {made} (3 watches" in out


async def test_a_custom_database_url_is_the_database_backed_up(
    tmp_path: Path, running_store: SqliteWatchStore
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    url = f"sqlite:///{tmp_path}/data/suno-bot.sqlite3"  # absolute: four slashes
    code, out = await backup_command(
        str(tmp_path / "copy.sqlite3"), cwd=elsewhere, DATABASE_URL=url
    )
    assert code == 0, out
    assert rows(tmp_path / "copy.sqlite3", "SELECT count(*) FROM watches") == [(3,)]


async def test_from_the_wrong_directory_no_database_is_created_and_the_line_says_why(
    tmp_path: Path,
) -> None:
    code, out = await backup_command("backup.sqlite3", cwd=tmp_path)
    assert code == 1
    assert out == (
        f"FAIL  backup not written: no database at {tmp_path}/data/suno-bot.sqlite3:"
        f" DATABASE_URL=sqlite:///data/suno-bot.sqlite3 is relative to the working directory"
        f" {tmp_path}; run this where the bot runs, or set DATABASE_URL to an absolute"
        " sqlite:////path\n"
    )
    assert names_in(tmp_path) == []  # neither a database nor an empty "backup"


async def test_a_missing_database_at_an_absolute_url_is_named(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/nothing/here.sqlite3"
    code, out = await backup_command("backup.sqlite3", cwd=tmp_path, DATABASE_URL=url)
    assert (code, out) == (
        1,
        f"FAIL  backup not written: no database at {tmp_path}/nothing/here.sqlite3;"
        " check DATABASE_URL\n",
    )
    assert names_in(tmp_path) == []


@pytest.mark.parametrize("contents", [b"", b"not a database at all, just some bytes" * 50])
async def test_a_file_that_is_not_the_bots_database_is_refused(
    tmp_path: Path, contents: bytes
) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "suno-bot.sqlite3").write_bytes(contents)
    code, out = await backup_command("backup.sqlite3", cwd=tmp_path)
    assert code == 1
    assert out.startswith("FAIL  backup not written: ")
    assert "is not" in out
    assert not (tmp_path / "backup.sqlite3").exists()
    assert (tmp_path / "data" / "suno-bot.sqlite3").read_bytes() == contents


async def test_an_existing_file_is_never_overwritten(
    tmp_path: Path, running_store: SqliteWatchStore
) -> None:
    (tmp_path / "backup.sqlite3").write_text("yesterday's backup")
    code, out = await backup_command("backup.sqlite3", cwd=tmp_path)
    assert (code, out) == (
        1,
        f"FAIL  backup not written: {tmp_path}/backup.sqlite3 already exists;"
        " give a new file name or a directory\n",
    )
    assert (tmp_path / "backup.sqlite3").read_text() == "yesterday's backup"


@pytest.mark.parametrize("target", ["missing/", "missing/backup.sqlite3"])
async def test_a_target_directory_that_does_not_exist_is_named(
    tmp_path: Path, running_store: SqliteWatchStore, target: str
) -> None:
    code, out = await backup_command(target, cwd=tmp_path)
    assert (code, out) == (
        1,
        f"FAIL  backup not written: directory {tmp_path}/missing does not exist; create it first\n",
    )
    assert not (tmp_path / "missing").exists()


async def test_the_database_itself_is_never_the_target(
    tmp_path: Path, running_store: SqliteWatchStore
) -> None:
    settings = StoreSettings(
        _env_file=None, DATABASE_URL=f"sqlite:///{tmp_path}/data/suno-bot.sqlite3"
    )
    for target in ("data/suno-bot.sqlite3", "data/suno-bot.sqlite3-wal"):
        with pytest.raises(BackupError, match="is the database itself; choose another file"):
            back_up(settings, str(tmp_path / target))
    assert len(await running_store.active()) == 2


async def test_a_restored_backup_resumes_its_unfinished_watches(
    tmp_path: Path, running_store: SqliteWatchStore
) -> None:
    code, out = await backup_command("backup.sqlite3", cwd=tmp_path)
    assert code == 0, out
    # Restore as the README says: the bot stopped, the backup in place of the database.
    restored = tmp_path / "restored" / "suno-bot.sqlite3"
    restored.parent.mkdir()
    restored.write_bytes((tmp_path / "backup.sqlite3").read_bytes())
    store = await SqliteWatchStore.open(restored)
    try:
        watches = await store.active()
    finally:
        await store.close()
    assert [watch.task_id for watch in watches] == ["task-0", "task-1"]
    assert [watch.interaction_token for watch in watches] == [
        "interaction-token-0",
        "interaction-token-1",
    ]


async def test_backup_without_a_path_prints_the_usage(tmp_path: Path) -> None:
    code, out = await backup_command(cwd=tmp_path)
    assert (code, out) == (
        2,
        "usage: python -m bot [run | check | backup PATH | health | new-secret]\n",
    )


def test_a_postgresql_store_is_left_to_pg_dump(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", "postgresql://bot:pw-secret@db/suno")

    assert run_backup(load(StoreSettings), str(tmp_path)) == 1

    out = capsys.readouterr().out
    assert "FAIL  backup not written" in out
    assert "pg_dump" in out
    assert "pw-secret" not in out
    assert list(tmp_path.iterdir()) == []
