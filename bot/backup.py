"""`python -m bot backup PATH`: an online copy of the store, checked before it is kept.

SQLite's backup API copies the database as one consistent snapshot, and is safe while the bot
runs and writes (the store is in WAL mode). The copy is written beside its destination under a
temporary name, checked with `PRAGMA quick_check`, and only then given its name. Nothing is
ever created where the database should be: a missing database is an error, not an empty backup.
"""

from __future__ import annotations

import os
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bot.config import StoreSettings, is_postgres_url

# How long the copy waits for a writer's lock before giving up.
BUSY_TIMEOUT_SECONDS = 10.0
# The file name a backup gets when PATH is a directory.
BACKUP_NAME = "suno-bot-%Y%m%d-%H%M%S.sqlite3"


class BackupError(Exception):
    """Why no backup was written; one line, naming the file and what to do."""


@dataclass(frozen=True, slots=True)
class Backup:
    path: Path
    watches: int
    active: int
    size: int


def run_backup(settings: StoreSettings, target: str) -> int:
    """Prints one line, `ok` or `FAIL`, and returns the exit code."""
    try:
        made = back_up(settings, target)
    except BackupError as exc:
        print(f"FAIL  backup not written: {exc}", flush=True)
        return 1
    print(
        f"ok    backup of {settings.database_path.resolve()} written to {made.path}"
        f" ({made.watches} watches, {made.active} unfinished; {_size(made.size)};"
        " quick_check ok)",
        flush=True,
    )
    return 0


def back_up(settings: StoreSettings, target: str) -> Backup:
    """Copies the store at DATABASE_URL to `target` (a new file, or a directory to put a
    dated file in), checks the copy and returns what it holds."""
    if is_postgres_url(settings.database_url):
        raise BackupError(
            "DATABASE_URL names a PostgreSQL database; back it up with PostgreSQL's own tools"
            " (pg_dump --format=custom), see the README"
        )
    database = settings.database_path.resolve()
    if not database.is_file():
        raise BackupError(_missing(settings, database))
    destination = _destination(target, database)
    partial = destination.with_name(f".{destination.name}.partial-{os.getpid()}")
    try:
        with closing(_open_existing(database)) as source:
            _require_the_bots(source, database)
            watches, active = _copy(source, partial)
        # Checked after the copy too: two backups started together must not overwrite.
        if destination.exists():
            raise BackupError(f"{destination} appeared while the backup ran; nothing replaced")
        os.replace(partial, destination)
    except sqlite3.Error as exc:
        raise BackupError(f"SQLite failed ({exc}); {database} is unchanged") from exc
    except OSError as exc:
        raise BackupError(f"cannot write {destination} ({exc.strerror or exc})") from exc
    finally:
        partial.unlink(missing_ok=True)
    return Backup(destination, watches, active, destination.stat().st_size)


def _missing(settings: StoreSettings, database: Path) -> str:
    if settings.database_path.is_absolute():
        return f"no database at {database}; check DATABASE_URL"
    return (
        f"no database at {database}: DATABASE_URL={settings.database_url} is relative to the"
        f" working directory {Path.cwd()}; run this where the bot runs, or set DATABASE_URL"
        " to an absolute sqlite:////path"
    )


def _destination(target: str, database: Path) -> Path:
    path = Path(target).expanduser().absolute()
    if path.is_dir():
        path = path / datetime.now(UTC).strftime(BACKUP_NAME)
    elif target.endswith(("/", os.sep)):
        raise BackupError(f"directory {path} does not exist; create it first")
    elif not path.parent.is_dir():
        raise BackupError(f"directory {path.parent} does not exist; create it first")
    if path.resolve() in {database, *(Path(f"{database}{end}") for end in ("-wal", "-shm"))}:
        raise BackupError(f"{path} is the database itself; choose another file")
    if path.exists():
        raise BackupError(f"{path} already exists; give a new file name or a directory")
    if not os.access(path.parent, os.W_OK):
        raise BackupError(f"directory {path.parent} is not writable by this user")
    return path


def _open_existing(database: Path) -> sqlite3.Connection:
    # mode=rw opens an existing file and never creates one.
    try:
        return sqlite3.connect(
            f"{database.as_uri()}?mode=rw", uri=True, timeout=BUSY_TIMEOUT_SECONDS
        )
    except sqlite3.Error as exc:
        raise BackupError(f"cannot open the database at {database} ({exc})") from exc


def _require_the_bots(source: sqlite3.Connection, database: Path) -> None:
    try:
        found = source.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'watches'"
        ).fetchall()
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{database} is not a readable SQLite database ({exc})") from exc
    if not found:
        raise BackupError(f"{database} is not the bot's database (no watches table)")


def _copy(source: sqlite3.Connection, partial: Path) -> tuple[int, int]:
    """Writes the snapshot to `partial` as a single self-contained file; returns its counts
    of watches and unfinished watches once `quick_check` has passed."""
    with closing(sqlite3.connect(partial)) as copy:
        source.backup(copy)  # every page in one step: one consistent snapshot
        copy.execute("PRAGMA journal_mode = DELETE")  # no -wal file beside the backup
        check = [row[0] for row in copy.execute("PRAGMA quick_check")]
        if check != ["ok"]:
            raise BackupError(f"the copy failed its check ({'; '.join(check[:3])}); not kept")
        watches, active = copy.execute(
            "SELECT count(*), coalesce(sum(outcome = 'active'), 0) FROM watches"
        ).fetchone()
    return int(watches), int(active)


def _size(size: int) -> str:
    return f"{size / 1024:.0f} KiB" if size < 1024 * 1024 else f"{size / 1024 / 1024:.1f} MiB"
