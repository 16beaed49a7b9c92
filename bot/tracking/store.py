"""Keeps the bot's watches in one SQLite file, so they survive restarts and crashes."""

from __future__ import annotations

import asyncio
import math
import sqlite3
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

import aiosqlite

from bot.tracking.commits import GroupCommitter

# Discord's upload limit when an interaction does not say (10 MiB).
DEFAULT_ATTACHMENT_SIZE_LIMIT = 10 * 1024 * 1024

# How long a statement waits for another connection's write lock before giving up.
BUSY_TIMEOUT_MS = 5000

# Each step moves the schema from version N to N + 1 (PRAGMA user_version) in one transaction.
# Steps are append-only: a released step is never edited, a change is a new step.
# The PostgreSQL store (bot.tracking.postgres) keeps its own steps: a change is a step in both.
MIGRATIONS: list[tuple[str, ...]] = [
    (
        """
        CREATE TABLE watches (
            id INTEGER PRIMARY KEY,
            task_id TEXT NOT NULL,
            application_id INTEGER NOT NULL,
            guild_id INTEGER,
            channel_id INTEGER,
            message_id INTEGER,
            requester_id INTEGER NOT NULL,
            locale TEXT NOT NULL,
            ephemeral INTEGER NOT NULL CHECK (ephemeral IN (0, 1)),
            interaction_id INTEGER NOT NULL,
            interaction_token TEXT,
            token_expires_at REAL NOT NULL,
            deadline_at REAL NOT NULL,
            last_fingerprint TEXT,
            outcome TEXT NOT NULL DEFAULT 'active',
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL
        )
        """,
        # Finished watches pile up forever; these partial indexes keep the resume scan and
        # the token purge proportional to the live rows only.
        "CREATE INDEX watches_active ON watches (id) WHERE outcome = 'active'",
        "CREATE INDEX watches_live_tokens ON watches (token_expires_at)"
        " WHERE interaction_token IS NOT NULL",
        "CREATE INDEX watches_task_id ON watches (task_id)",
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    ),
    (
        # Named leases: which process may work on what, until when (unix seconds). A row is
        # free once `expires_at` has passed; releasing deletes it.
        """
        CREATE TABLE leases (
            name TEXT PRIMARY KEY,
            owner TEXT NOT NULL,
            acquired_at REAL NOT NULL,
            expires_at REAL NOT NULL
        )
        """,
    ),
    (
        # Member (owner_kind 'user') and server ('guild') relay keys, encrypted by the bot
        # (never in clear); one per owner. A watch names the key it polls with by its row:
        # NULL is the operator's key. Removing a key ends its active watches first (see
        # remove_key), so SET NULL only ever touches watches that have ended. AUTOINCREMENT:
        # a removed key's id is never given to another key, so nothing that still holds the
        # old id (a command half-way through) can ever ask with someone else's key.
        """
        CREATE TABLE relay_keys (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            owner_kind TEXT NOT NULL CHECK (owner_kind IN ('user', 'guild')),
            owner_id INTEGER NOT NULL,
            ciphertext BLOB NOT NULL,
            last4 TEXT NOT NULL,
            set_at REAL NOT NULL,
            UNIQUE (owner_kind, owner_id)
        )
        """,
        "ALTER TABLE watches ADD COLUMN key_id INTEGER"
        " REFERENCES relay_keys (id) ON DELETE SET NULL",
        "CREATE INDEX watches_key_id ON watches (key_id) WHERE key_id IS NOT NULL",
    ),
    (
        # What follows a finished task: the upload limit of the interaction that asked (bytes),
        # whether the requester asked to be mentioned, whether the completion reply went out,
        # and the song files: NULL until tried, then 'attached' or 'given_up'.
        "ALTER TABLE watches ADD COLUMN attachment_size_limit INTEGER NOT NULL"
        f" DEFAULT {DEFAULT_ATTACHMENT_SIZE_LIMIT}",
        "ALTER TABLE watches ADD COLUMN notify_requester INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE watches ADD COLUMN announced INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE watches ADD COLUMN audio TEXT",
        "ALTER TABLE watches ADD COLUMN audio_attempts INTEGER NOT NULL DEFAULT 0",
        # Watches that ended before this step had nothing follow them, and never will.
        "UPDATE watches SET announced = 1, audio = 'given_up' WHERE outcome != 'active'",
        # The buttons on a message find its watch by the message.
        "CREATE INDEX watches_message_id ON watches (message_id)",
        # Who pressed "Notify me" on a watch's message.
        """
        CREATE TABLE subscribers (
            watch_id INTEGER NOT NULL REFERENCES watches (id) ON DELETE CASCADE,
            user_id INTEGER NOT NULL,
            PRIMARY KEY (watch_id, user_id)
        )
        """,
    ),
]

# Every column of a watch row, in the order both stores read them.
WATCH_COLUMNS = """
    id, task_id, application_id, guild_id, channel_id, requester_id, locale, ephemeral,
    interaction_id, interaction_token, token_expires_at, deadline_at, message_id,
    last_fingerprint, outcome, created_at, updated_at, key_id, attachment_size_limit,
    notify_requester, announced, audio
"""
_SELECT_WATCHES = "SELECT " + WATCH_COLUMNS + " FROM watches"  # noqa: S608 - constant columns

_SELECT_ACTIVE = (
    _SELECT_WATCHES
    + """
    WHERE outcome = 'active'  -- a literal, not a parameter, so the partial index applies
    ORDER BY id
"""
)
_SELECT_BY_MESSAGE = (
    _SELECT_WATCHES
    + """
    WHERE message_id = ?
    ORDER BY id DESC
    LIMIT 1
"""
)
_SELECT_BY_INTERACTION = (
    _SELECT_WATCHES
    + """
    WHERE interaction_id = ?
    ORDER BY id DESC
    LIMIT 1
"""
)
_SELECT_FOLLOW_UPS = (
    _SELECT_WATCHES
    + """
    WHERE outcome = 'finished' AND updated_at >= ? AND (audio IS NULL OR announced = 0)
    ORDER BY id
"""
)
_SELECT_BY_ID = (
    _SELECT_WATCHES
    + """
    WHERE id = ?
"""
)


class WatchOutcome(StrEnum):
    ACTIVE = "active"
    FINISHED = "finished"
    TIMED_OUT = "timed_out"
    # The message can no longer be edited: deleted, no access, or token expired with no fallback.
    LOST = "lost"
    # Someone pressed "Stop updates".
    STOPPED = "stopped"


class AudioState(StrEnum):
    """What became of a finished watch's song files."""

    ATTACHED = "attached"
    GIVEN_UP = "given_up"


@dataclass(frozen=True, slots=True)
class NewWatch:
    """What the cog knows about a watch before it answers the interaction."""

    task_id: str
    application_id: int
    guild_id: int | None
    channel_id: int | None
    requester_id: int
    locale: str
    ephemeral: bool
    interaction_id: int
    interaction_token: str = field(repr=False)
    token_expires_at: datetime
    deadline_at: datetime
    # The member or server key the task is polled with (its row); None: the operator's key.
    key_id: int | None = None
    attachment_size_limit: int = DEFAULT_ATTACHMENT_SIZE_LIMIT
    notify_requester: bool = False


@dataclass(frozen=True, slots=True)
class Watch:
    """A stored watch; the token is None once it expired or the watch finished."""

    id: int
    task_id: str
    application_id: int
    guild_id: int | None
    channel_id: int | None
    requester_id: int
    locale: str
    ephemeral: bool
    interaction_id: int
    interaction_token: str | None = field(repr=False)
    token_expires_at: datetime
    deadline_at: datetime
    message_id: int | None
    last_fingerprint: str | None
    outcome: WatchOutcome
    created_at: datetime
    updated_at: datetime
    attachment_size_limit: int = DEFAULT_ATTACHMENT_SIZE_LIMIT
    notify_requester: bool = False
    announced: bool = False
    audio: AudioState | None = None
    key_id: int | None = None


@dataclass(frozen=True, slots=True)
class StoredKey:
    """A member's or server's relay key as stored: encrypted, with its last 4 characters."""

    id: int
    owner_kind: str  # "user" or "guild"
    owner_id: int
    ciphertext: bytes = field(repr=False)
    last4: str = field(repr=False)
    set_at: datetime


@dataclass(frozen=True, slots=True)
class Lease:
    """Who holds a named lease, since when and until when."""

    name: str
    owner: str
    acquired_at: datetime
    expires_at: datetime


class StoreError(Exception):
    """The store cannot be used; the message names the file and what the operator can do."""


class LeaseStore(Protocol):
    """Named leases: one owner at a time, for `ttl` seconds unless renewed.

    Each call is one atomic statement, so any number of processes may race for a lease and
    exactly one wins. Owners are opaque strings that must be unique per process lifetime.
    """

    async def acquire_lease(self, name: str, owner: str, ttl: float) -> bool:
        """Take `name` for `ttl` seconds if it is free, expired or already `owner`'s."""
        ...

    async def renew_lease(self, name: str, owner: str, ttl: float) -> bool:
        """Hold `name` for `ttl` more seconds; False when `owner` no longer holds it.

        A lease that lapsed but was taken by no one is still `owner`'s and is renewed: any
        other owner taking it in between would have replaced or released the row.
        """
        ...

    async def release_lease(self, name: str, owner: str) -> bool:
        """Free `name` if `owner` holds it; False when it was not theirs (or no longer)."""
        ...

    async def lease_holder(self, name: str) -> Lease | None:
        """The current, unexpired holder of `name`, if any."""
        ...


class WatchStore(LeaseStore, Protocol):
    """The store as the tracker sees it; any method raises StoreError when the disk fails it."""

    async def add(self, watch: NewWatch) -> Watch:
        """Record a new active watch; it is committed when this returns."""
        ...

    async def set_message_id(self, watch_id: int, message_id: int) -> None:
        """Remember which message shows the watch; LookupError for an unknown id."""
        ...

    async def set_fingerprint(self, watch_id: int, fingerprint: str) -> None:
        """Remember what the message last showed; LookupError for an unknown id."""
        ...

    async def finish(self, watch_id: int, outcome: WatchOutcome) -> None:
        """End an active watch and drop its token; a finished watch keeps its first outcome."""
        ...

    async def active(self) -> list[Watch]:
        """Every unfinished watch, oldest first."""
        ...

    async def purge_expired_tokens(self, now: datetime) -> int:
        """Forget tokens whose expiry is at or before `now`; returns how many were dropped."""
        ...

    async def prune_finished(self, before: datetime) -> int:
        """Delete ended watches last touched before `before`; returns how many went."""
        ...

    async def get_meta(self, key: str) -> str | None: ...

    async def set_meta(self, key: str, value: str) -> None: ...

    async def close(self) -> None: ...


class FollowUpStore(Protocol):
    """What the buttons and the steps after a finished task keep in the store."""

    async def by_message(self, message_id: int) -> Watch | None:
        """The newest watch shown in `message_id`, whatever its outcome."""
        ...

    async def by_interaction(self, interaction_id: int) -> Watch | None:
        """The newest watch started by the command `interaction_id` (its message id may not
        be recorded yet in the instant after the answer)."""
        ...

    async def get(self, watch_id: int) -> Watch | None: ...

    async def revive(
        self, watch_id: int, *, token: str, token_expires_at: datetime, deadline_at: datetime
    ) -> Watch:
        """Make an ended watch active again, edited through a new interaction's token."""
        ...

    async def toggle_subscriber(self, watch_id: int, user_id: int) -> bool:
        """Subscribe `user_id` to the watch's completion reply, or unsubscribe; True when
        subscribed now."""
        ...

    async def subscribers(self, watch_id: int) -> list[int]: ...

    async def claim_announcement(self, watch_id: int) -> bool:
        """True for the one caller that may send the watch's completion reply."""
        ...

    async def claim_audio_attempt(self, watch_id: int, max_attempts: int) -> bool:
        """True when the song files are still to be attached and fewer than `max_attempts`
        tries were made; counts this try."""
        ...

    async def set_audio(self, watch_id: int, state: AudioState) -> None: ...

    async def unfollowed(self, since: datetime) -> list[Watch]:
        """Finished watches (ended at or after `since`) whose reply or songs may still be due:
        a stop or crash came between the last edit and what follows it."""
        ...


class StoreObserver(Protocol):
    def store_error(self) -> None:
        """A statement failed (the metrics count these)."""


class BotStore(WatchStore, FollowUpStore, Protocol):
    """Everything the bot keeps: watches, and what its buttons and follow-ups record."""


class SqliteWatchStore(BotStore):
    """Watches in one SQLite file, through a single connection shared by every task."""

    def __init__(
        self, connection: aiosqlite.Connection, path: Path, observer: StoreObserver | None = None
    ) -> None:
        self._db = connection
        self._path = path
        self._observer = observer
        self._closed = False
        # Writes share transactions with every other write waiting at the same moment, on a
        # connection of their own; this one reads, between those transactions.
        self._commits = GroupCommitter(
            path,
            next_id_query="SELECT coalesce(max(id), 0) + 1 FROM watches",
            busy_timeout_ms=BUSY_TIMEOUT_MS,
        )

    @classmethod
    async def open(cls, path: Path, *, observer: StoreObserver | None = None) -> SqliteWatchStore:
        """Open (or create) the database at `path`, check it and bring its schema up to date."""
        await asyncio.to_thread(_prepare_location, path)
        try:
            connection = await aiosqlite.connect(path, isolation_level=None)
        except sqlite3.Error as exc:
            raise _store_error(path, "open", exc) from exc
        connection.row_factory = aiosqlite.Row
        store = cls(connection, path, observer)
        try:
            await store._prepare()
            with store._failures("open"):
                await store._commits.open()
        except BaseException:
            await store._commits.close()
            await connection.close()
            raise
        return store

    async def _prepare(self) -> None:
        with self._failures("open"):
            await self._db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            # Read before anything writes, so a damaged or foreign file is refused untouched.
            rows = await self._db.execute_fetchall("PRAGMA quick_check")
            check = [row["quick_check"] for row in rows]
            if check != ["ok"]:
                raise StoreError(
                    f"database file {self._path} is damaged ({'; '.join(check[:3])}); "
                    "move it aside or restore a backup, then start again"
                )
            mode = await self._db.execute_fetchall("PRAGMA journal_mode = WAL")
            if [row["journal_mode"].lower() for row in mode] != ["wal"]:
                raise StoreError(
                    f"database file {self._path} cannot use write-ahead logging; keep it on "
                    "a local filesystem (not a network share)"
                )
            # In WAL mode a commit is in the log (the OS's page cache) before it returns, so a
            # killed process loses nothing it acknowledged; NORMAL only skips the fsync per
            # commit, which matters on power loss, and even then the file stays consistent.
            await self._db.execute("PRAGMA synchronous = NORMAL")
            await self._db.execute("PRAGMA foreign_keys = ON")
            await self._migrate()

    async def _migrate(self) -> None:
        # One step per transaction, re-reading the version each time, so two processes that
        # start together never apply a step twice.
        while True:
            async with self._transaction():
                version = await self._user_version()
                known = len(MIGRATIONS)
                if version > known:
                    raise StoreError(
                        f"database file {self._path} has schema version {version}, but this "
                        f"version of the bot knows only up to {known}; run a newer bot or point "
                        "DATABASE_URL at another file"
                    )
                if version == known:
                    return
                if version == 0:
                    await self._refuse_foreign_tables()
                for statement in MIGRATIONS[version]:
                    await self._db.execute(statement)
                await self._db.execute(f"PRAGMA user_version = {version + 1}")

    async def _user_version(self) -> int:
        rows = list(await self._db.execute_fetchall("PRAGMA user_version"))
        return int(rows[0]["user_version"])

    async def _refuse_foreign_tables(self) -> None:
        rows = await self._db.execute_fetchall(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
        names = sorted(str(row["name"]) for row in rows)
        if names:
            raise StoreError(
                f"database file {self._path} already holds tables that are not the bot's "
                f"({', '.join(names[:5])}); point DATABASE_URL at a new file"
            )

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[None]:
        # Only migrations use this, and they run inside `open()` before the store is handed to
        # anyone, so no other task's statement can land inside one. After that, writes go
        # through the group committer and reads run between its transactions.
        # IMMEDIATE takes the write lock up front: a deferred transaction that reads first
        # cannot wait for the lock when another connection writes in between.
        await self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
            await self._db.execute("COMMIT")
        except BaseException:
            if self._db.in_transaction:
                await self._db.execute("ROLLBACK")
            raise

    @contextmanager
    def _failures(self, action: str) -> Iterator[None]:
        """SQLite errors inside become a StoreError saying what could not be done."""
        try:
            yield
        except sqlite3.Error as exc:
            if self._observer is not None:
                self._observer.store_error()
            raise _store_error(self._path, action, exc) from exc

    async def _update(self, action: str, sql: str, parameters: Sequence[Any]) -> int:
        with self._failures(action):
            return await self._commits.write(sql, parameters)

    async def _read(self, sql: str, parameters: Sequence[Any] = ()) -> list[aiosqlite.Row]:
        """Rows of one query, run between group commits."""
        async with self._commits.exclusive():
            return list(await self._db.execute_fetchall(sql, parameters))

    async def _require(self, watch_id: int) -> None:
        rows = await self._read("SELECT 1 FROM watches WHERE id = ?", (watch_id,))
        if not rows:
            raise LookupError(f"no watch with id {watch_id}")

    async def add(self, watch: NewWatch) -> Watch:
        now = datetime.now(UTC)
        stamp = now.timestamp()
        expires = _to_unix(watch.token_expires_at, "token_expires_at")
        deadline = _to_unix(watch.deadline_at, "deadline_at")
        with self._failures("record a new watch"):
            # Concurrent commands share one transaction; the batch numbers the rows.
            watch_id = await self._commits.insert(
                """
                    INSERT INTO watches (
                        id, task_id, application_id, guild_id, channel_id, requester_id,
                        locale, ephemeral, interaction_id, interaction_token, token_expires_at,
                        deadline_at, outcome, created_at, updated_at, key_id,
                        attachment_size_limit, notify_requester
                    ) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                (
                    None,
                    watch.task_id,
                    watch.application_id,
                    watch.guild_id,
                    watch.channel_id,
                    watch.requester_id,
                    watch.locale,
                    int(watch.ephemeral),
                    watch.interaction_id,
                    watch.interaction_token,
                    expires,
                    deadline,
                    WatchOutcome.ACTIVE.value,
                    stamp,
                    stamp,
                    watch.key_id,
                    watch.attachment_size_limit,
                    int(watch.notify_requester),
                ),
            )
        moment = _from_unix(stamp)
        return Watch(
            id=watch_id,
            task_id=watch.task_id,
            application_id=watch.application_id,
            guild_id=watch.guild_id,
            channel_id=watch.channel_id,
            requester_id=watch.requester_id,
            locale=watch.locale,
            ephemeral=watch.ephemeral,
            interaction_id=watch.interaction_id,
            interaction_token=watch.interaction_token,
            token_expires_at=_from_unix(expires),
            deadline_at=_from_unix(deadline),
            message_id=None,
            last_fingerprint=None,
            outcome=WatchOutcome.ACTIVE,
            created_at=moment,
            updated_at=moment,
            key_id=watch.key_id,
            attachment_size_limit=watch.attachment_size_limit,
            notify_requester=watch.notify_requester,
        )

    async def set_message_id(self, watch_id: int, message_id: int) -> None:
        await self._update_watch(
            watch_id,
            "record a message id",
            "UPDATE watches SET message_id = ?, updated_at = ? WHERE id = ?",
            (message_id, _now(), watch_id),
        )

    async def set_fingerprint(self, watch_id: int, fingerprint: str) -> None:
        await self._update_watch(
            watch_id,
            "record what a message shows",
            "UPDATE watches SET last_fingerprint = ?, updated_at = ? WHERE id = ?",
            (fingerprint, _now(), watch_id),
        )

    async def _update_watch(
        self, watch_id: int, action: str, sql: str, parameters: Sequence[Any]
    ) -> None:
        with self._failures(action):
            if not await self._commits.write(sql, parameters):
                await self._require(watch_id)

    async def finish(self, watch_id: int, outcome: WatchOutcome) -> None:
        if outcome is WatchOutcome.ACTIVE:
            raise ValueError("a watch cannot finish as active")
        # Only an active watch changes, so the first outcome recorded is the one that stays.
        await self._update_watch(
            watch_id,
            "finish a watch",
            "UPDATE watches SET outcome = ?, interaction_token = NULL, updated_at = ?"
            " WHERE id = ? AND outcome = 'active'",
            (outcome.value, _now(), watch_id),
        )

    async def active(self) -> list[Watch]:
        with self._failures("read the active watches"):
            rows = await self._read(_SELECT_ACTIVE)
        return [_watch_from_row(row) for row in rows]

    async def purge_expired_tokens(self, now: datetime) -> int:
        return await self._update(
            "forget expired tokens",
            "UPDATE watches SET interaction_token = NULL, updated_at = ?"
            " WHERE interaction_token IS NOT NULL AND token_expires_at <= ?",
            (_now(), _to_unix(now, "now")),
        )

    async def prune_finished(self, before: datetime) -> int:
        return await self._update(
            "prune ended watches",
            "DELETE FROM watches WHERE outcome != 'active' AND updated_at < ?",
            (_to_unix(before, "before"),),
        )

    async def by_message(self, message_id: int) -> Watch | None:
        return await self._one(_SELECT_BY_MESSAGE, (message_id,))

    async def by_interaction(self, interaction_id: int) -> Watch | None:
        return await self._one(_SELECT_BY_INTERACTION, (interaction_id,))

    async def get(self, watch_id: int) -> Watch | None:
        return await self._one(_SELECT_BY_ID, (watch_id,))

    async def _one(self, sql: str, parameters: Sequence[Any]) -> Watch | None:
        with self._failures("read a watch"):
            rows = await self._read(sql, parameters)
        return _watch_from_row(rows[0]) if rows else None

    async def revive(
        self, watch_id: int, *, token: str, token_expires_at: datetime, deadline_at: datetime
    ) -> Watch:
        await self._update_watch(
            watch_id,
            "restart a watch",
            "UPDATE watches SET outcome = 'active', interaction_token = ?, token_expires_at = ?,"
            " deadline_at = ?, updated_at = ? WHERE id = ?",
            (
                token,
                _to_unix(token_expires_at, "token_expires_at"),
                _to_unix(deadline_at, "deadline_at"),
                _now(),
                watch_id,
            ),
        )
        watch = await self.get(watch_id)
        assert watch is not None
        return watch

    async def _claim(self, action: str, sql: str, parameters: Sequence[Any]) -> bool:
        """Runs a write whose outcome only one caller may get (a claim, a toggle): alone,
        between group commits, since a batch cannot tell identical statements' counts apart."""
        with self._failures(action):
            async with self._commits.exclusive():
                rows = await self._db.execute_fetchall(sql, parameters)
        return bool(list(rows))

    async def toggle_subscriber(self, watch_id: int, user_id: int) -> bool:
        removed = await self._claim(
            "change a subscription",
            "DELETE FROM subscribers WHERE watch_id = ? AND user_id = ? RETURNING user_id",
            (watch_id, user_id),
        )
        if removed:
            return False
        await self._update(
            "change a subscription",
            "INSERT OR IGNORE INTO subscribers (watch_id, user_id) VALUES (?, ?)",
            (watch_id, user_id),
        )
        return True

    async def subscribers(self, watch_id: int) -> list[int]:
        with self._failures("read subscriptions"):
            rows = await self._read(
                "SELECT user_id FROM subscribers WHERE watch_id = ? ORDER BY rowid", (watch_id,)
            )
        return [int(row["user_id"]) for row in rows]

    async def claim_announcement(self, watch_id: int) -> bool:
        return await self._claim(
            "record a completion reply",
            "UPDATE watches SET announced = 1 WHERE id = ? AND announced = 0 RETURNING id",
            (watch_id,),
        )

    async def claim_audio_attempt(self, watch_id: int, max_attempts: int) -> bool:
        return await self._claim(
            "record a song download",
            "UPDATE watches SET audio_attempts = audio_attempts + 1"
            " WHERE id = ? AND audio IS NULL AND audio_attempts < ? RETURNING id",
            (watch_id, max_attempts),
        )

    async def set_audio(self, watch_id: int, state: AudioState) -> None:
        await self._update_watch(
            watch_id,
            "record the song files",
            "UPDATE watches SET audio = ? WHERE id = ?",
            (state.value, watch_id),
        )

    async def unfollowed(self, since: datetime) -> list[Watch]:
        with self._failures("read finished watches"):
            rows = await self._read(_SELECT_FOLLOW_UPS, (_to_unix(since, "since"),))
        return [_watch_from_row(row) for row in rows]

    async def get_meta(self, key: str) -> str | None:
        with self._failures("read a setting"):
            rows = await self._read("SELECT value FROM meta WHERE key = ?", (key,))
        return str(rows[0]["value"]) if rows else None

    async def set_meta(self, key: str, value: str) -> None:
        await self._update(
            "save a setting",
            "INSERT INTO meta (key, value) VALUES (?, ?)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    async def acquire_lease(self, name: str, owner: str, ttl: float) -> bool:
        now = _now()
        with self._failures("take a lease"):
            taken = await self._read(
                """
                    INSERT INTO leases (name, owner, acquired_at, expires_at)
                    VALUES (?, ?, ?, ?)
                    ON CONFLICT (name) DO UPDATE SET
                        owner = excluded.owner,
                        acquired_at = CASE WHEN leases.owner = excluded.owner
                            THEN leases.acquired_at ELSE excluded.acquired_at END,
                        expires_at = excluded.expires_at
                    WHERE leases.owner = excluded.owner OR leases.expires_at <= ?
                    RETURNING owner
                    """,
                (name, owner, now, now + _lease_ttl(ttl), now),
            )
        return bool(taken)

    async def renew_lease(self, name: str, owner: str, ttl: float) -> bool:
        expires = _now() + _lease_ttl(ttl)
        renewed = await self._update(
            "renew a lease",
            "UPDATE leases SET expires_at = ? WHERE name = ? AND owner = ?",
            (expires, name, owner),
        )
        return renewed > 0

    async def release_lease(self, name: str, owner: str) -> bool:
        released = await self._update(
            "release a lease",
            "DELETE FROM leases WHERE name = ? AND owner = ?",
            (name, owner),
        )
        return released > 0

    async def lease_holder(self, name: str) -> Lease | None:
        with self._failures("read a lease"):
            rows = await self._read(
                "SELECT owner, acquired_at, expires_at FROM leases"
                " WHERE name = ? AND expires_at > ?",
                (name, _now()),
            )
        if not rows:
            return None
        return Lease(
            name=name,
            owner=str(rows[0]["owner"]),
            acquired_at=_from_unix(rows[0]["acquired_at"]),
            expires_at=_from_unix(rows[0]["expires_at"]),
        )

    # -- member and server relay keys (encrypted by bot.keys; never in clear here) --------

    async def put_key(
        self, owner_kind: str, owner_id: int, ciphertext: bytes, last4: str
    ) -> StoredKey:
        """Store the owner's key, replacing theirs if any (the row, and so its watches, stay)."""
        with self._failures("save a relay key"):
            # One statement that returns its row: run alone, between group commits.
            rows = await self._read(
                """
                INSERT INTO relay_keys (owner_kind, owner_id, ciphertext, last4, set_at)
                VALUES (?, ?, ?, ?, ?)
                ON CONFLICT (owner_kind, owner_id) DO UPDATE SET
                    ciphertext = excluded.ciphertext,
                    last4 = excluded.last4,
                    set_at = excluded.set_at
                RETURNING id, owner_kind, owner_id, ciphertext, last4, set_at
                """,
                (owner_kind, owner_id, ciphertext, last4, _now()),
            )
        return _key_from_row(rows[0])

    async def get_key(self, owner_kind: str, owner_id: int) -> StoredKey | None:
        return await self._one_key(
            "SELECT id, owner_kind, owner_id, ciphertext, last4, set_at FROM relay_keys"
            " WHERE owner_kind = ? AND owner_id = ?",
            (owner_kind, owner_id),
        )

    async def key_by_id(self, key_id: int) -> StoredKey | None:
        return await self._one_key(
            "SELECT id, owner_kind, owner_id, ciphertext, last4, set_at FROM relay_keys"
            " WHERE id = ?",
            (key_id,),
        )

    async def _one_key(self, sql: str, parameters: Sequence[Any]) -> StoredKey | None:
        with self._failures("read a relay key"):
            rows = await self._read(sql, parameters)
        return _key_from_row(rows[0]) if rows else None

    async def all_keys(self) -> list[StoredKey]:
        with self._failures("read the relay keys"):
            rows = await self._read(
                "SELECT id, owner_kind, owner_id, ciphertext, last4, set_at FROM relay_keys"
                " ORDER BY id"
            )
        return [_key_from_row(row) for row in rows]

    async def replace_ciphertext(self, key_id: int, old: bytes, new: bytes) -> None:
        """Re-encrypt a key in place, unless it was set anew since `old` was read."""
        await self._update(
            "re-encrypt a relay key",
            "UPDATE relay_keys SET ciphertext = ? WHERE id = ? AND ciphertext = ?",
            (new, key_id, old),
        )

    async def remove_key(self, key_id: int) -> list[int]:
        """Delete a key's row; its active watches end first (as lost), so none of them is
        ever resumed with another key. Returns the ids of the watches it ended."""
        with self._failures("end the watches of a relay key"):
            # One statement that returns its rows: run alone, between group commits.
            ended = await self._read(
                "UPDATE watches SET outcome = 'lost', updated_at = ?"
                " WHERE key_id = ? AND outcome = 'active' RETURNING id",
                (_now(), key_id),
            )
        await self._update("remove a relay key", "DELETE FROM relay_keys WHERE id = ?", (key_id,))
        return sorted(int(row["id"]) for row in ended)

    @property
    def is_open(self) -> bool:
        return not self._closed

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            await self._commits.close()
        finally:
            await self._db.close()


def _prepare_location(path: Path) -> None:
    if path.is_dir():
        raise StoreError(
            f"database path {path} is a directory, not a file; point DATABASE_URL at a "
            f"file (for example {path / 'suno-bot.sqlite3'}) or remove the directory"
        )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(
            f"cannot create directory {path.parent} for database file {path} "
            f"({exc.strerror or exc}); create it or make it writable by the bot"
        ) from exc


def _now() -> float:
    return datetime.now(UTC).timestamp()


def _lease_ttl(ttl: float) -> float:
    # NaN or infinity would make a lease that never lapses, even when its owner is long dead.
    if not (ttl > 0 and math.isfinite(ttl)):
        raise ValueError("a lease's ttl must be a positive number of seconds")
    return ttl


def _to_unix(moment: datetime, name: str) -> float:
    # A naive datetime would be read as local time and shift every deadline by the UTC offset.
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime")
    return moment.timestamp()


def _from_unix(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _watch_from_row(row: aiosqlite.Row) -> Watch:
    return Watch(
        id=row["id"],
        task_id=row["task_id"],
        application_id=row["application_id"],
        guild_id=row["guild_id"],
        channel_id=row["channel_id"],
        requester_id=row["requester_id"],
        locale=row["locale"],
        ephemeral=bool(row["ephemeral"]),
        interaction_id=row["interaction_id"],
        interaction_token=row["interaction_token"],
        token_expires_at=_from_unix(row["token_expires_at"]),
        deadline_at=_from_unix(row["deadline_at"]),
        message_id=row["message_id"],
        last_fingerprint=row["last_fingerprint"],
        outcome=WatchOutcome(row["outcome"]),
        created_at=_from_unix(row["created_at"]),
        updated_at=_from_unix(row["updated_at"]),
        attachment_size_limit=row["attachment_size_limit"],
        notify_requester=bool(row["notify_requester"]),
        announced=bool(row["announced"]),
        audio=AudioState(row["audio"]) if row["audio"] else None,
        key_id=row["key_id"],
    )


def _key_from_row(row: aiosqlite.Row) -> StoredKey:
    return StoredKey(
        id=row["id"],
        owner_kind=row["owner_kind"],
        owner_id=row["owner_id"],
        ciphertext=bytes(row["ciphertext"]),
        last4=row["last4"],
        set_at=_from_unix(row["set_at"]),
    )


_ADVICE = {
    "SQLITE_NOTADB": "move it aside or restore a backup, then start again",
    "SQLITE_CORRUPT": "move it aside or restore a backup, then start again",
    "SQLITE_BUSY": "another process is holding the database; stop it or try again",
    "SQLITE_LOCKED": "another process is holding the database; stop it or try again",
    "SQLITE_FULL": "free some disk space",
    "SQLITE_READONLY": "make the file and its directory writable by the bot",
    "SQLITE_PERM": "make the file and its directory writable by the bot",
    "SQLITE_CANTOPEN": "check that the path exists and is readable and writable by the bot",
    "SQLITE_IOERR": "check the disk holding the file",
}


def _store_error(path: Path, action: str, exc: sqlite3.Error) -> StoreError:
    name = getattr(exc, "sqlite_errorname", None) or ""
    # Extended codes (SQLITE_IOERR_WRITE, SQLITE_BUSY_SNAPSHOT) share their primary's advice.
    primary = "_".join(name.split("_")[:2])
    advice = _ADVICE.get(primary, "check the disk and the file's permissions")
    if primary == "SQLITE_NOTADB":
        return StoreError(f"database file {path} is not a valid SQLite database ({exc}); {advice}")
    if primary == "SQLITE_CORRUPT":
        return StoreError(f"database file {path} is damaged ({exc}); {advice}")
    return StoreError(f"database file {path}: could not {action} ({exc}); {advice}")
