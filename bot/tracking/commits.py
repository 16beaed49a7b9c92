"""Group commits: concurrent writes to the SQLite file share one transaction and one trip to
the writer's thread."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import groupby
from pathlib import Path
from typing import Any


@dataclass(eq=False, slots=True)
class _Write:
    sql: str
    parameters: Sequence[Any]
    # True: the statement inserts a row whose id (the first parameter, left as None) the batch
    # assigns; the write's result is then that id instead of the row count.
    assigns_id: bool
    done: asyncio.Future[int] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class GroupCommitter:
    """Runs writes in batches: every write queued while a batch commits goes into the next one,
    in one transaction (BEGIN IMMEDIATE … COMMIT) run by a thread of its own on its own
    connection, in one trip however many writes it holds. A write's caller resumes once its
    batch is committed, so each write is as durable as if it had been a transaction of its own.

    The store's other connection (reads, and the few statements that must return rows) runs
    its statements under `exclusive()`, between batches, so they never wait for the lock.
    """

    def __init__(self, path: Path, *, next_id_query: str, busy_timeout_ms: int) -> None:
        self._path = path
        # The id the next inserted row gets, read inside the batch's transaction.
        self._next_id_query = next_id_query
        self._busy_timeout_ms = busy_timeout_ms
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store-writer")
        self._connection: sqlite3.Connection | None = None
        self._queue: list[_Write] = []
        self._lock = asyncio.Lock()
        self._writer: asyncio.Task[None] | None = None
        self.batches = 0  # committed batches (for tests and benchmarks)

    async def open(self) -> None:
        self._connection = await self._in_thread(self._connect)

    async def close(self) -> None:
        """Commits what is queued, then closes the writer's connection."""
        try:
            await self.flush()
        finally:
            with contextlib.suppress(sqlite3.Error):
                await self._in_thread(self._disconnect)
            self._thread.shutdown(wait=False)

    @contextlib.asynccontextmanager
    async def exclusive(self) -> AsyncIterator[None]:
        """No batch runs inside this block."""
        async with self._lock:
            yield

    async def write(self, sql: str, parameters: Sequence[Any]) -> int:
        """Runs `sql` in the next batch; returns the rows it changed once the batch commits.

        Statements written here must be idempotent (a second run leaves the rows as the first
        did): when a group of identical statements did not change one row each, each is run
        again alone to learn its own count, and may then count 0 for a row it changed.
        """
        return await self._enqueue(_Write(sql, parameters, assigns_id=False))

    async def insert(self, sql: str, parameters: Sequence[Any]) -> int:
        """Inserts a row whose id (the first parameter, left as None) the batch assigns;
        returns that id once the batch commits."""
        return await self._enqueue(_Write(sql, parameters, assigns_id=True))

    async def flush(self) -> None:
        """Waits until every write queued so far is committed (or failed)."""
        writer = self._writer
        if writer is not None:
            await asyncio.shield(writer)

    def _enqueue(self, write: _Write) -> Awaitable[int]:
        self._queue.append(write)
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(
                self._drain(), name="store-group-commit"
            )
        # The write happens even if its caller is cancelled: others may share its batch.
        return asyncio.shield(write.done)

    async def _drain(self) -> None:
        while self._queue:
            batch, self._queue = self._queue, []
            async with self._lock:
                await self._commit(batch)

    async def _commit(self, batch: list[_Write]) -> None:
        try:
            results = await self._in_thread(self._run, batch)
        except Exception as exc:
            for write in batch:
                if not write.done.done():
                    write.done.set_exception(exc)
            return
        self.batches += 1
        for write, result in zip(batch, results, strict=True):
            if not write.done.done():
                write.done.set_result(result)

    def _in_thread(self, function: Any, *arguments: Any) -> Awaitable[Any]:
        return asyncio.get_running_loop().run_in_executor(self._thread, function, *arguments)

    # -- in the writer's thread ------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        connection.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_ms)}")
        # See the store: the log is in the OS's page cache before COMMIT returns.
        connection.execute("PRAGMA synchronous = NORMAL")
        connection.execute("PRAGMA foreign_keys = ON")
        return connection

    def _disconnect(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _run(self, batch: list[_Write]) -> list[int]:
        connection = self._connection
        if connection is None:
            raise sqlite3.OperationalError("the store is closed")
        connection.execute("BEGIN IMMEDIATE")
        try:
            results = self._apply(connection, batch)
            connection.execute("COMMIT")
        except BaseException:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise
        return results

    def _apply(self, connection: sqlite3.Connection, batch: list[_Write]) -> list[int]:
        next_id = 0
        if any(write.assigns_id for write in batch):
            next_id = int(connection.execute(self._next_id_query).fetchone()[0])
        results: list[int] = []
        for (sql, assigns_id), group in groupby(batch, key=lambda w: (w.sql, w.assigns_id)):
            writes = list(group)
            if assigns_id:
                ids = list(range(next_id, next_id + len(writes)))
                next_id += len(writes)
                rows = [(new_id, *w.parameters[1:]) for new_id, w in zip(ids, writes, strict=True)]
                connection.executemany(sql, rows)
                results += ids
            else:
                results += _changed(connection, sql, writes)
        return results


def _changed(connection: sqlite3.Connection, sql: str, writes: list[_Write]) -> list[int]:
    """Rows changed per write; one statement run when every write changed exactly one row."""
    if len(writes) == 1:
        return [connection.execute(sql, writes[0].parameters).rowcount]
    if connection.executemany(sql, [write.parameters for write in writes]).rowcount == len(writes):
        return [1] * len(writes)
    return [connection.execute(sql, write.parameters).rowcount for write in writes]
