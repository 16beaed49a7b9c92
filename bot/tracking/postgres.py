"""Keeps the watches in PostgreSQL, shared by every bot process of a cluster.

The same contract as the SQLite store (bot.tracking.store.WatchStore), plus what several
processes on one database need: task leases (which process polls which task) and a
notification channel that hands a new watch to the process leading its task.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from bot.tracking.poller import PollKey
from bot.tracking.store import (
    DEFAULT_ATTACHMENT_SIZE_LIMIT,
    AudioState,
    BotStore,
    Lease,
    NewWatch,
    StoredKey,
    StoreError,
    StoreObserver,
    Watch,
    WatchOutcome,
)
from bot.tracking.store import WATCH_COLUMNS as _WATCH_COLUMNS

log = logging.getLogger(__name__)

# Both sides of a schema change take this transaction-level advisory lock, so processes that
# start together apply each step once. The number is arbitrary but fixed ("suno" in ASCII).
MIGRATION_LOCK = 0x73756E6F
# Connections per process: the tracker's edits and the cog's writes share them.
POOL_SIZE = 10
# A new watch on a task led by another process: "<watch id>:<key id, 0 for none>:<task id>".
HANDOVER_CHANNEL = "suno_watch_handover"
# A process let go of tasks (it stops, or sheds load): the others claim them at once.
RELEASED_CHANNEL = "suno_tasks_released"
# A button pressed on a message another process keeps current: "<action>:<watch id>".
CONTROL_CHANNEL = "suno_watch_control"

# Each step moves the schema from version N to N + 1 (the row count of schema_migrations) in
# one transaction. Append-only, like the SQLite steps: a released step is never edited.
# A new table or column is a new step here and one in bot.tracking.store.MIGRATIONS (each
# backend in its own dialect); a new watch column is also named in the store's WATCH_COLUMNS
# (both backends read those) and read in both _watch_from_row functions.
MIGRATIONS: list[tuple[str, ...]] = [
    (
        """
        CREATE TABLE watches (
            id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            task_id TEXT NOT NULL,
            application_id BIGINT NOT NULL,
            guild_id BIGINT,
            channel_id BIGINT,
            message_id BIGINT,
            requester_id BIGINT NOT NULL,
            locale TEXT NOT NULL,
            ephemeral BOOLEAN NOT NULL,
            interaction_id BIGINT NOT NULL,
            interaction_token TEXT,
            token_expires_at TIMESTAMPTZ NOT NULL,
            deadline_at TIMESTAMPTZ NOT NULL,
            last_fingerprint TEXT,
            outcome TEXT NOT NULL DEFAULT 'active'
                CHECK (outcome IN ('active', 'finished', 'timed_out', 'lost')),
            created_at TIMESTAMPTZ NOT NULL,
            updated_at TIMESTAMPTZ NOT NULL
        )
        """,
        # Partial indexes keep the live scans proportional to the live rows, as in SQLite.
        "CREATE INDEX watches_active ON watches (id) WHERE outcome = 'active'",
        "CREATE INDEX watches_active_tasks ON watches (task_id) WHERE outcome = 'active'",
        "CREATE INDEX watches_live_tokens ON watches (token_expires_at)"
        " WHERE interaction_token IS NOT NULL",
        "CREATE INDEX watches_ended ON watches (updated_at) WHERE outcome <> 'active'",
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        """
        CREATE TABLE leases (
            name TEXT PRIMARY KEY,
            owner TEXT NOT NULL,
            acquired_at TIMESTAMPTZ NOT NULL,
            expires_at TIMESTAMPTZ NOT NULL
        )
        """,
        # Which process polls a task, until when; a row past `expires_at` is free.
        """
        CREATE TABLE task_leases (
            task_id TEXT PRIMARY KEY,
            owner TEXT NOT NULL,
            expires_at TIMESTAMPTZ NOT NULL
        )
        """,
        "CREATE INDEX task_leases_owner ON task_leases (owner)",
    ),
    (
        # Member (owner_kind 'user') and server ('guild') relay keys, encrypted by the bot
        # (never in clear); one per owner. A watch names the key it polls with by its row:
        # NULL is the operator's key. Removing a key ends its active watches first (see
        # remove_key), so SET NULL only ever touches watches that have ended. An identity
        # column never gives a removed key's id to another key.
        """
        CREATE TABLE relay_keys (
            id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            owner_kind TEXT NOT NULL CHECK (owner_kind IN ('user', 'guild')),
            owner_id BIGINT NOT NULL,
            ciphertext BYTEA NOT NULL,
            last4 TEXT NOT NULL,
            set_at TIMESTAMPTZ NOT NULL,
            UNIQUE (owner_kind, owner_id)
        )
        """,
        "ALTER TABLE watches ADD COLUMN key_id BIGINT"
        " REFERENCES relay_keys (id) ON DELETE SET NULL",
        "CREATE INDEX watches_key_id ON watches (key_id) WHERE key_id IS NOT NULL",
    ),
    (
        # Task leases per (key, task id): members polling one task id with keys of their own
        # are polled apart, so each pair has its leader. key_id 0 is the operator's key (a
        # primary key column cannot be NULL; identity ids start at 1).
        "ALTER TABLE task_leases ADD COLUMN key_id BIGINT NOT NULL DEFAULT 0",
        "ALTER TABLE task_leases DROP CONSTRAINT task_leases_pkey",
        "ALTER TABLE task_leases ADD PRIMARY KEY (task_id, key_id)",
        "CREATE INDEX watches_active_poll_keys ON watches (task_id, (coalesce(key_id, 0)))"
        " WHERE outcome = 'active'",
    ),
    (
        # A watch can end because a member stopped its updates.
        "ALTER TABLE watches DROP CONSTRAINT watches_outcome_check",
        "ALTER TABLE watches ADD CONSTRAINT watches_outcome_check"
        " CHECK (outcome IN ('active', 'finished', 'timed_out', 'lost', 'stopped'))",
        # What follows a finished task: the upload limit of the interaction that asked (bytes),
        # whether the requester asked to be mentioned, whether the completion reply went out,
        # and the song files: NULL until tried, then 'attached' or 'given_up'.
        "ALTER TABLE watches ADD COLUMN attachment_size_limit BIGINT NOT NULL"
        f" DEFAULT {DEFAULT_ATTACHMENT_SIZE_LIMIT}",
        "ALTER TABLE watches ADD COLUMN notify_requester BOOLEAN NOT NULL DEFAULT false",
        "ALTER TABLE watches ADD COLUMN announced BOOLEAN NOT NULL DEFAULT false",
        "ALTER TABLE watches ADD COLUMN audio TEXT CHECK (audio IN ('attached', 'given_up'))",
        "ALTER TABLE watches ADD COLUMN audio_attempts INTEGER NOT NULL DEFAULT 0",
        # Watches that ended before this step had nothing follow them, and never will.
        "UPDATE watches SET announced = true, audio = 'given_up' WHERE outcome <> 'active'",
        # The buttons on a message find its watch by the message, or by the command.
        "CREATE INDEX watches_message_id ON watches (message_id)",
        "CREATE INDEX watches_interaction_id ON watches (interaction_id)",
        # Who pressed "Notify me" on a watch's message, in the order they pressed it.
        """
        CREATE TABLE subscribers (
            watch_id BIGINT NOT NULL REFERENCES watches (id) ON DELETE CASCADE,
            user_id BIGINT NOT NULL,
            position BIGINT GENERATED ALWAYS AS IDENTITY,
            PRIMARY KEY (watch_id, user_id)
        )
        """,
    ),
]

_KEY_COLUMNS = "id, owner_kind, owner_id, ciphertext, last4, set_at"

# asyncpg's errors for a statement the server refused, a connection that broke, or a server
# that never answered; each becomes a StoreError.
_FAILURES: tuple[type[BaseException], ...] = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    OSError,
    TimeoutError,
)


def redacted(url: str) -> str:
    """The URL without its password, to name the database in logs and errors."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{parts.username}@{host}" if parts.username else host
    if parts.port is not None:
        netloc = f"{netloc}:{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


class PostgresWatchStore(BotStore):
    """Watches in PostgreSQL, through a pool of connections shared by every task."""

    def __init__(self, pool: asyncpg.Pool, url: str, observer: StoreObserver | None = None) -> None:
        self._pool = pool
        self._url = url
        self._where = redacted(url)
        self._observer = observer
        self._closed = False
        self._listener: asyncpg.Connection | None = None

    @classmethod
    async def open(cls, url: str, *, observer: StoreObserver | None = None) -> PostgresWatchStore:
        """Connect to the database at `url` and bring its schema up to date."""
        where = redacted(url)
        try:
            pool = await asyncpg.create_pool(url, min_size=1, max_size=POOL_SIZE)
        except _FAILURES as exc:
            raise StoreError(_connect_advice(where, exc)) from None
        except ValueError as exc:
            raise StoreError(
                f"DATABASE_URL {where} is not a valid PostgreSQL URL ({exc})"
            ) from None
        store = cls(pool, url, observer)
        try:
            await store._migrate()
        except BaseException:
            await pool.close()
            raise
        return store

    # -- schema --------------------------------------------------------------------------

    async def _migrate(self) -> None:
        while True:
            with self._failures("bring the schema up to date"):
                async with self._pool.acquire() as connection, connection.transaction():
                    await connection.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
                    version = await self._schema_version(connection)
                    if version == len(MIGRATIONS):
                        return
                    for statement in MIGRATIONS[version]:
                        await connection.execute(statement)
                    await connection.execute(
                        "INSERT INTO schema_migrations (version) VALUES ($1)", version + 1
                    )

    async def _schema_version(self, connection: PoolConnectionProxy[asyncpg.Record]) -> int:
        known = len(MIGRATIONS)
        exists = await connection.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
        if not exists:
            await self._refuse_foreign_tables(connection)
            await connection.execute(
                "CREATE TABLE schema_migrations ("
                " version INTEGER PRIMARY KEY,"
                " applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
            )
            return 0
        version = int(
            await connection.fetchval("SELECT coalesce(max(version), 0) FROM schema_migrations")
        )
        if version > known:
            raise StoreError(
                f"database {self._where} has schema version {version}, but this version of the"
                f" bot knows only up to {known}; run a newer bot or point DATABASE_URL at"
                " another database"
            )
        return version

    async def _refuse_foreign_tables(self, connection: PoolConnectionProxy[asyncpg.Record]) -> None:
        rows = await connection.fetch(
            "SELECT table_name FROM information_schema.tables"
            " WHERE table_schema = current_schema() ORDER BY table_name"
        )
        names = [str(row["table_name"]) for row in rows]
        if names:
            raise StoreError(
                f"database {self._where} already holds tables that are not the bot's"
                f" ({', '.join(names[:5])}); point DATABASE_URL at a new database or schema"
            )

    # -- plumbing ------------------------------------------------------------------------

    @contextmanager
    def _failures(self, action: str) -> Iterator[None]:
        """Database errors inside become a StoreError saying what could not be done."""
        try:
            yield
        except _FAILURES as exc:
            if self._observer is not None:
                self._observer.store_error()
            raise StoreError(
                f"database {self._where}: could not {action} ({_describe(exc)});"
                " check that PostgreSQL runs and accepts the bot's connections"
            ) from None

    async def _fetch(self, action: str, sql: str, *args: Any) -> list[asyncpg.Record]:
        with self._failures(action):
            return list(await self._pool.fetch(sql, *args))

    async def _count(self, action: str, sql: str, *args: Any) -> int:
        """Runs a statement and returns how many rows it changed."""
        with self._failures(action):
            status = await self._pool.execute(sql, *args)
        return int(status.rsplit(" ", 1)[-1])

    # -- watches -------------------------------------------------------------------------

    async def add(self, watch: NewWatch) -> Watch:
        now = _moment(_now())
        expires = _aware(watch.token_expires_at, "token_expires_at")
        deadline = _aware(watch.deadline_at, "deadline_at")
        rows = await self._fetch(
            "record a new watch",
            """
            INSERT INTO watches (
                task_id, application_id, guild_id, channel_id, requester_id, locale,
                ephemeral, interaction_id, interaction_token, token_expires_at,
                deadline_at, outcome, created_at, updated_at, key_id, attachment_size_limit,
                notify_requester
            ) VALUES (
                $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'active', $12, $12, $13, $14, $15
            )
            RETURNING id
            """,
            watch.task_id,
            watch.application_id,
            watch.guild_id,
            watch.channel_id,
            watch.requester_id,
            watch.locale,
            watch.ephemeral,
            watch.interaction_id,
            watch.interaction_token,
            expires,
            deadline,
            now,
            watch.key_id,
            watch.attachment_size_limit,
            watch.notify_requester,
        )
        return Watch(
            id=int(rows[0]["id"]),
            task_id=watch.task_id,
            application_id=watch.application_id,
            guild_id=watch.guild_id,
            channel_id=watch.channel_id,
            requester_id=watch.requester_id,
            locale=watch.locale,
            ephemeral=watch.ephemeral,
            interaction_id=watch.interaction_id,
            interaction_token=watch.interaction_token,
            token_expires_at=expires.astimezone(UTC),
            deadline_at=deadline.astimezone(UTC),
            message_id=None,
            last_fingerprint=None,
            outcome=WatchOutcome.ACTIVE,
            created_at=now,
            updated_at=now,
            key_id=watch.key_id,
            attachment_size_limit=watch.attachment_size_limit,
            notify_requester=watch.notify_requester,
        )

    async def _update_watch(self, watch_id: int, action: str, sql: str, *args: Any) -> None:
        changed = await self._fetch(action, f"{sql} RETURNING id", *args)
        if not changed:
            known = await self._fetch(action, "SELECT 1 FROM watches WHERE id = $1", watch_id)
            if not known:
                raise LookupError(f"no watch with id {watch_id}")

    async def set_message_id(self, watch_id: int, message_id: int) -> None:
        await self._update_watch(
            watch_id,
            "record a message id",
            "UPDATE watches SET message_id = $1, updated_at = $2 WHERE id = $3",
            message_id,
            _moment(_now()),
            watch_id,
        )

    async def set_fingerprint(self, watch_id: int, fingerprint: str) -> None:
        await self._update_watch(
            watch_id,
            "record what a message shows",
            "UPDATE watches SET last_fingerprint = $1, updated_at = $2 WHERE id = $3",
            fingerprint,
            _moment(_now()),
            watch_id,
        )

    async def finish(self, watch_id: int, outcome: WatchOutcome) -> None:
        if outcome is WatchOutcome.ACTIVE:
            raise ValueError("a watch cannot finish as active")
        await self._update_watch(
            watch_id,
            "finish a watch",
            "UPDATE watches SET outcome = $1, interaction_token = NULL, updated_at = $2"
            " WHERE id = $3 AND outcome = 'active'",
            outcome.value,
            _moment(_now()),
            watch_id,
        )

    async def active(self) -> list[Watch]:
        rows = await self._fetch(
            "read the active watches",
            f"SELECT {_WATCH_COLUMNS} FROM watches WHERE outcome = 'active' ORDER BY id",  # noqa: S608 - a constant column list
        )
        return [_watch_from_row(row) for row in rows]

    async def purge_expired_tokens(self, now: datetime) -> int:
        return await self._count(
            "forget expired tokens",
            "UPDATE watches SET interaction_token = NULL, updated_at = $1"
            " WHERE interaction_token IS NOT NULL AND token_expires_at <= $2",
            _moment(_now()),
            _aware(now, "now"),
        )

    async def prune_finished(self, before: datetime) -> int:
        cutoff = _aware(before, "before")
        # Leases of crashed processes are never released: they go with the ended watches.
        await self._count("prune lapsed leases", "DELETE FROM leases WHERE expires_at < $1", cutoff)
        await self._count(
            "prune lapsed task leases", "DELETE FROM task_leases WHERE expires_at < $1", cutoff
        )
        return await self._count(
            "prune ended watches",
            "DELETE FROM watches WHERE outcome <> 'active' AND updated_at < $1",
            cutoff,
        )

    # -- what follows a finished task, and the buttons -----------------------------------

    async def _one(self, where: str, *args: Any) -> Watch | None:
        rows = await self._fetch(
            "read a watch",
            f"SELECT {_WATCH_COLUMNS} FROM watches WHERE {where} ORDER BY id DESC LIMIT 1",  # noqa: S608 - constant columns and conditions
            *args,
        )
        return _watch_from_row(rows[0]) if rows else None

    async def by_message(self, message_id: int) -> Watch | None:
        return await self._one("message_id = $1", message_id)

    async def by_interaction(self, interaction_id: int) -> Watch | None:
        return await self._one("interaction_id = $1", interaction_id)

    async def get(self, watch_id: int) -> Watch | None:
        return await self._one("id = $1", watch_id)

    async def revive(
        self, watch_id: int, *, token: str, token_expires_at: datetime, deadline_at: datetime
    ) -> Watch:
        rows = await self._fetch(
            "restart a watch",
            "UPDATE watches SET outcome = 'active', interaction_token = $1,"  # noqa: S608 - a constant column list
            " token_expires_at = $2, deadline_at = $3, updated_at = $4 WHERE id = $5"
            f" RETURNING {_WATCH_COLUMNS}",
            token,
            _aware(token_expires_at, "token_expires_at"),
            _aware(deadline_at, "deadline_at"),
            _moment(_now()),
            watch_id,
        )
        if not rows:
            raise LookupError(f"no watch with id {watch_id}")
        return _watch_from_row(rows[0])

    async def toggle_subscriber(self, watch_id: int, user_id: int) -> bool:
        with self._failures("change a subscription"):
            async with self._pool.acquire() as connection, connection.transaction():
                removed = await connection.fetch(
                    "DELETE FROM subscribers WHERE watch_id = $1 AND user_id = $2"
                    " RETURNING user_id",
                    watch_id,
                    user_id,
                )
                if removed:
                    return False
                await connection.execute(
                    "INSERT INTO subscribers (watch_id, user_id) VALUES ($1, $2)"
                    " ON CONFLICT DO NOTHING",
                    watch_id,
                    user_id,
                )
        return True

    async def subscribers(self, watch_id: int) -> list[int]:
        rows = await self._fetch(
            "read subscriptions",
            "SELECT user_id FROM subscribers WHERE watch_id = $1 ORDER BY position",
            watch_id,
        )
        return [int(row["user_id"]) for row in rows]

    async def claim_announcement(self, watch_id: int) -> bool:
        claimed = await self._fetch(
            "record a completion reply",
            "UPDATE watches SET announced = true WHERE id = $1 AND NOT announced RETURNING id",
            watch_id,
        )
        return bool(claimed)

    async def claim_audio_attempt(self, watch_id: int, max_attempts: int) -> bool:
        claimed = await self._fetch(
            "record a song download",
            "UPDATE watches SET audio_attempts = audio_attempts + 1"
            " WHERE id = $1 AND audio IS NULL AND audio_attempts < $2 RETURNING id",
            watch_id,
            max_attempts,
        )
        return bool(claimed)

    async def set_audio(self, watch_id: int, state: AudioState) -> None:
        await self._update_watch(
            watch_id,
            "record the song files",
            "UPDATE watches SET audio = $1 WHERE id = $2",
            state.value,
            watch_id,
        )

    async def unfollowed(self, since: datetime) -> list[Watch]:
        rows = await self._fetch(
            "read finished watches",
            f"SELECT {_WATCH_COLUMNS} FROM watches"  # noqa: S608 - a constant column list
            " WHERE outcome = 'finished' AND updated_at >= $1"
            " AND (audio IS NULL OR NOT announced) ORDER BY id",
            _aware(since, "since"),
        )
        return [_watch_from_row(row) for row in rows]

    async def get_meta(self, key: str) -> str | None:
        rows = await self._fetch("read a setting", "SELECT value FROM meta WHERE key = $1", key)
        return str(rows[0]["value"]) if rows else None

    async def set_meta(self, key: str, value: str) -> None:
        await self._count(
            "save a setting",
            "INSERT INTO meta (key, value) VALUES ($1, $2)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            key,
            value,
        )

    # -- named leases --------------------------------------------------------------------

    async def acquire_lease(self, name: str, owner: str, ttl: float) -> bool:
        now = _now()
        taken = await self._fetch(
            "take a lease",
            """
            INSERT INTO leases (name, owner, acquired_at, expires_at)
            VALUES ($1, $2, $3, $4)
            ON CONFLICT (name) DO UPDATE SET
                owner = excluded.owner,
                acquired_at = CASE WHEN leases.owner = excluded.owner
                    THEN leases.acquired_at ELSE excluded.acquired_at END,
                expires_at = excluded.expires_at
            WHERE leases.owner = excluded.owner OR leases.expires_at <= $3
            RETURNING owner
            """,
            name,
            owner,
            _moment(now),
            _moment(now + _lease_ttl(ttl)),
        )
        return bool(taken)

    async def renew_lease(self, name: str, owner: str, ttl: float) -> bool:
        expires = _moment(_now() + _lease_ttl(ttl))
        renewed = await self._count(
            "renew a lease",
            "UPDATE leases SET expires_at = $1 WHERE name = $2 AND owner = $3",
            expires,
            name,
            owner,
        )
        return renewed > 0

    async def release_lease(self, name: str, owner: str) -> bool:
        released = await self._count(
            "release a lease", "DELETE FROM leases WHERE name = $1 AND owner = $2", name, owner
        )
        return released > 0

    async def lease_holder(self, name: str) -> Lease | None:
        rows = await self._fetch(
            "read a lease",
            "SELECT owner, acquired_at, expires_at FROM leases WHERE name = $1 AND expires_at > $2",
            name,
            _moment(_now()),
        )
        if not rows:
            return None
        return Lease(
            name=name,
            owner=str(rows[0]["owner"]),
            acquired_at=rows[0]["acquired_at"],
            expires_at=rows[0]["expires_at"],
        )

    async def lease_count(self, prefix: str) -> int:
        """How many unexpired leases have a name starting with `prefix`."""
        rows = await self._fetch(
            "count the leases",
            "SELECT count(*) AS n FROM leases WHERE starts_with(name, $1) AND expires_at > $2",
            prefix,
            _moment(_now()),
        )
        return int(rows[0]["n"])

    # -- task leases: which process polls which task -------------------------------------

    async def claim_task(self, poll_key: PollKey, owner: str, ttl: float) -> bool:
        """Lead `poll_key` (key, task id) for `ttl` seconds if nobody else does; True when
        `owner` leads it."""
        now = _now()
        key_id, task_id = poll_key
        taken = await self._fetch(
            "claim a task",
            """
            INSERT INTO task_leases (task_id, key_id, owner, expires_at) VALUES ($1, $2, $3, $4)
            ON CONFLICT (task_id, key_id) DO UPDATE SET owner = excluded.owner,
                expires_at = excluded.expires_at
            WHERE task_leases.owner = excluded.owner OR task_leases.expires_at <= $5
            RETURNING task_id
            """,
            task_id,
            _key_column(key_id),
            owner,
            _moment(now + _lease_ttl(ttl)),
            _moment(now),
        )
        return bool(taken)

    async def claim_free_tasks(self, owner: str, ttl: float, limit: int) -> list[PollKey]:
        """Lead up to `limit` (key, task id) pairs that have active watches and no live leader.

        Each process walks the free tasks in its own order (a hash of task, key and owner), so
        processes claiming together rarely queue for the same rows; inserts go in task order,
        so two of them never wait for each other in a cycle.
        """
        if limit <= 0:
            return []
        now = _now()
        rows = await self._fetch(
            "claim tasks",
            """
            WITH free AS (
                SELECT DISTINCT w.task_id, coalesce(w.key_id, 0) AS key_id FROM watches w
                WHERE w.outcome = 'active' AND NOT EXISTS (
                    SELECT 1 FROM task_leases l
                    WHERE l.task_id = w.task_id AND l.key_id = coalesce(w.key_id, 0)
                        AND l.expires_at > $3
                )
            ), picked AS (
                SELECT task_id, key_id FROM free
                ORDER BY md5(task_id || ':' || key_id::text || $1) LIMIT $4
            )
            INSERT INTO task_leases (task_id, key_id, owner, expires_at)
            SELECT task_id, key_id, $1, $2 FROM picked ORDER BY task_id, key_id
            ON CONFLICT (task_id, key_id) DO UPDATE SET owner = excluded.owner,
                expires_at = excluded.expires_at
            WHERE task_leases.expires_at <= $3
            RETURNING task_id, key_id
            """,
            owner,
            _moment(now + _lease_ttl(ttl)),
            _moment(now),
            limit,
        )
        return [_poll_key(row) for row in rows]

    async def renew_tasks(self, owner: str, ttl: float) -> set[PollKey]:
        """Extends every task lease `owner` still holds; returns their (key, task id) pairs."""
        rows = await self._fetch(
            "renew the task leases",
            "UPDATE task_leases SET expires_at = $1 WHERE owner = $2 RETURNING task_id, key_id",
            _moment(_now() + _lease_ttl(ttl)),
            owner,
        )
        return {_poll_key(row) for row in rows}

    async def release_tasks(
        self, owner: str, poll_keys: Sequence[PollKey] | None = None, *, announce: bool = True
    ) -> int:
        """Lets go of `poll_keys` (every task, when None); `announce` tells the other
        processes, so they claim the tasks now rather than at their next sync."""
        with self._failures("release tasks"):
            async with self._pool.acquire() as connection, connection.transaction():
                if poll_keys is None:
                    status = await connection.execute(
                        "DELETE FROM task_leases WHERE owner = $1", owner
                    )
                else:
                    status = await connection.execute(
                        "DELETE FROM task_leases WHERE owner = $1 AND (task_id, key_id) IN"
                        " (SELECT * FROM unnest($2::text[], $3::bigint[]))",
                        owner,
                        [task_id for _, task_id in poll_keys],
                        [_key_column(key_id) for key_id, _ in poll_keys],
                    )
                released = int(status.rsplit(" ", 1)[-1])
                if released and announce:
                    await connection.execute("SELECT pg_notify($1, $2)", RELEASED_CHANNEL, owner)
        return released

    async def active_task_count(self) -> int:
        """How many distinct (key, task id) pairs have an active watch."""
        rows = await self._fetch(
            "count the watched tasks",
            "SELECT count(*) AS n FROM (SELECT DISTINCT task_id, coalesce(key_id, 0)"
            " FROM watches WHERE outcome = 'active') AS polled",
        )
        return int(rows[0]["n"])

    async def unfollowed_watches(self, owner: str, following: Sequence[int]) -> list[Watch]:
        """Active watches of the tasks `owner` leads, except the ids in `following`."""
        missing = await self._fetch(
            "read the watches of led tasks",
            """
            SELECT id FROM watches
            WHERE outcome = 'active'
                AND (task_id, coalesce(key_id, 0)) IN
                    (SELECT task_id, key_id FROM task_leases WHERE owner = $1)
                AND NOT (id = ANY($2::bigint[]))
            """,
            owner,
            list(following),
        )
        if not missing:
            return []
        rows = await self._fetch(
            "read the watches of led tasks",
            f"SELECT {_WATCH_COLUMNS} FROM watches WHERE id = ANY($1::bigint[]) ORDER BY id",  # noqa: S608 - a constant column list
            [row["id"] for row in missing],
        )
        return [_watch_from_row(row) for row in rows]

    async def active_watch(self, watch_id: int) -> Watch | None:
        """The watch with `watch_id` while it is active."""
        rows = await self._fetch(
            "read a watch",
            f"SELECT {_WATCH_COLUMNS} FROM watches WHERE id = $1 AND outcome = 'active'",  # noqa: S608 - a constant column list
            watch_id,
        )
        return _watch_from_row(rows[0]) if rows else None

    async def hand_over(self, watch: Watch) -> None:
        """Tells whichever process leads the watch's task that it has a new watch."""
        await self._count(
            "hand a watch over",
            "SELECT pg_notify($1, $2)",
            HANDOVER_CHANNEL,
            f"{watch.id}:{_key_column(watch.key_id)}:{watch.task_id}",
        )

    async def send_control(self, action: str, watch_id: int) -> None:
        """Asks whichever process keeps the watch current to `action` it (stop, refresh)."""
        await self._count(
            "pass a button on", "SELECT pg_notify($1, $2)", CONTROL_CHANNEL, f"{action}:{watch_id}"
        )

    async def listen(
        self,
        on_handover: Callable[[int, PollKey], None],
        on_release: Callable[[str], None],
        on_control: Callable[[str, int], None] | None = None,
    ) -> None:
        """Calls `on_handover(watch id, (key, task id))` for each watch handed over and
        `on_release(owner)` when a process lets go of tasks; (re)connects the listener."""
        if self._listener is not None and not self._listener.is_closed():
            return

        def handover(_: object, __: int, ___: str, payload: object) -> None:
            watch_id, _, rest = str(payload).partition(":")
            key_id, _, task_id = rest.partition(":")
            if watch_id.isdigit() and key_id.isdigit():
                on_handover(int(watch_id), (int(key_id) or None, task_id))

        def release(_: object, __: int, ___: str, payload: object) -> None:
            on_release(str(payload))

        def control(_: object, __: int, ___: str, payload: object) -> None:
            action, _colon, watch_id = str(payload).partition(":")
            if on_control is not None and watch_id.isdigit():
                on_control(action, int(watch_id))

        with self._failures("listen for handovers"):
            listener = await asyncpg.connect(self._url)
            await listener.add_listener(HANDOVER_CHANNEL, handover)
            await listener.add_listener(RELEASED_CHANNEL, release)
            await listener.add_listener(CONTROL_CHANNEL, control)
        self._listener = listener

    # -- member and server relay keys (encrypted by bot.keys; never in clear here) --------

    async def put_key(
        self, owner_kind: str, owner_id: int, ciphertext: bytes, last4: str
    ) -> StoredKey:
        """Store the owner's key, replacing theirs if any (the row, and so its watches, stay)."""
        rows = await self._fetch(
            "save a relay key",
            f"""
            INSERT INTO relay_keys (owner_kind, owner_id, ciphertext, last4, set_at)
            VALUES ($1, $2, $3, $4, $5)
            ON CONFLICT (owner_kind, owner_id) DO UPDATE SET
                ciphertext = excluded.ciphertext,
                last4 = excluded.last4,
                set_at = excluded.set_at
            RETURNING {_KEY_COLUMNS}
            """,  # noqa: S608 - a constant column list
            owner_kind,
            owner_id,
            ciphertext,
            last4,
            _moment(_now()),
        )
        return _key_from_row(rows[0])

    async def get_key(self, owner_kind: str, owner_id: int) -> StoredKey | None:
        rows = await self._fetch(
            "read a relay key",
            f"SELECT {_KEY_COLUMNS} FROM relay_keys WHERE owner_kind = $1 AND owner_id = $2",  # noqa: S608 - a constant column list
            owner_kind,
            owner_id,
        )
        return _key_from_row(rows[0]) if rows else None

    async def key_by_id(self, key_id: int) -> StoredKey | None:
        rows = await self._fetch(
            "read a relay key",
            f"SELECT {_KEY_COLUMNS} FROM relay_keys WHERE id = $1",  # noqa: S608 - a constant column list
            key_id,
        )
        return _key_from_row(rows[0]) if rows else None

    async def all_keys(self) -> list[StoredKey]:
        rows = await self._fetch(
            "read the relay keys",
            f"SELECT {_KEY_COLUMNS} FROM relay_keys ORDER BY id",  # noqa: S608 - a constant column list
        )
        return [_key_from_row(row) for row in rows]

    async def replace_ciphertext(self, key_id: int, old: bytes, new: bytes) -> None:
        """Re-encrypt a key in place, unless it was set anew since `old` was read."""
        await self._count(
            "re-encrypt a relay key",
            "UPDATE relay_keys SET ciphertext = $1 WHERE id = $2 AND ciphertext = $3",
            new,
            key_id,
            old,
        )

    async def remove_key(self, key_id: int) -> list[int]:
        """Delete a key's row; its active watches end first (as lost), so none of them is
        ever resumed with another key. One transaction: no watch is left half-way. Returns
        the ids of the watches it ended, whichever process followed them."""
        with self._failures("remove a relay key"):
            async with self._pool.acquire() as connection, connection.transaction():
                ended = await connection.fetch(
                    "UPDATE watches SET outcome = 'lost', interaction_token = NULL,"
                    " updated_at = $1 WHERE key_id = $2 AND outcome = 'active' RETURNING id",
                    _moment(_now()),
                    key_id,
                )
                await connection.execute("DELETE FROM relay_keys WHERE id = $1", key_id)
        return sorted(int(row["id"]) for row in ended)

    # -- lifecycle -----------------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        return not self._closed

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.terminate()
        await self._pool.close()


def _now() -> float:
    return datetime.now(UTC).timestamp()


def _moment(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _lease_ttl(ttl: float) -> float:
    # NaN or infinity would make a lease that never lapses, even when its owner is long dead.
    if not (ttl > 0 and ttl < timedelta.max.total_seconds()):
        raise ValueError("a lease's ttl must be a positive number of seconds")
    return ttl


def _aware(moment: datetime, name: str) -> datetime:
    # A naive datetime would be read in the server's time zone and shift every deadline.
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime")
    return moment


def _key_column(key_id: int | None) -> int:
    """A task lease's key_id: 0 for the operator's key."""
    return 0 if key_id is None else key_id


def _poll_key(row: asyncpg.Record) -> PollKey:
    key_id = int(row["key_id"])
    return (key_id or None, str(row["task_id"]))


def _watch_from_row(row: asyncpg.Record) -> Watch:
    return Watch(
        id=row["id"],
        task_id=row["task_id"],
        application_id=row["application_id"],
        guild_id=row["guild_id"],
        channel_id=row["channel_id"],
        requester_id=row["requester_id"],
        locale=row["locale"],
        ephemeral=row["ephemeral"],
        interaction_id=row["interaction_id"],
        interaction_token=row["interaction_token"],
        token_expires_at=row["token_expires_at"],
        deadline_at=row["deadline_at"],
        message_id=row["message_id"],
        last_fingerprint=row["last_fingerprint"],
        outcome=WatchOutcome(row["outcome"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        key_id=row["key_id"],
        attachment_size_limit=row["attachment_size_limit"],
        notify_requester=row["notify_requester"],
        announced=row["announced"],
        audio=AudioState(row["audio"]) if row["audio"] is not None else None,
    )


def _key_from_row(row: asyncpg.Record) -> StoredKey:
    return StoredKey(
        id=row["id"],
        owner_kind=row["owner_kind"],
        owner_id=row["owner_id"],
        ciphertext=bytes(row["ciphertext"]),
        last4=row["last4"],
        set_at=row["set_at"],
    )


def _describe(exc: BaseException) -> str:
    # asyncpg's messages carry the server's words, never the password.
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _connect_advice(where: str, exc: BaseException) -> str:
    if isinstance(
        exc, asyncpg.InvalidPasswordError | asyncpg.InvalidAuthorizationSpecificationError
    ):
        return (
            f"PostgreSQL at {where} refused the bot's login ({_describe(exc)}); check the user"
            " and password in DATABASE_URL"
        )
    if isinstance(exc, asyncpg.InvalidCatalogNameError):
        return f"database {where} does not exist ({_describe(exc)}); create it first"
    return (
        f"cannot connect to PostgreSQL at {where} ({_describe(exc)}); check DATABASE_URL and"
        " that the server runs and accepts connections"
    )
