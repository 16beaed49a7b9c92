"""Group commits: concurrent writes to one SQLite connection share a transaction."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Sequence
from dataclasses import dataclass, field
from itertools import groupby
from typing import Any

import aiosqlite

# A write is one statement with its parameters. Consecutive writes of the same statement run
# as one `executemany`, so a batch costs a few round trips to the connection's thread
# whatever its size.


@dataclass(eq=False, slots=True)
class _Write:
    sql: str
    parameters: Sequence[Any]
    # True: the statement inserts a watch, and its first parameter is filled with the id the
    # batch assigns (the future then resolves to that id instead of the row count).
    assigns_id: bool
    done: asyncio.Future[int] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class GroupCommitter:
    """Runs writes in batches: every write queued while a batch commits goes into the next one,
    in one transaction (BEGIN IMMEDIATE … COMMIT). A write's caller resumes once its batch is
    committed, so each write is as durable as if it had been a transaction of its own.

    Anything else that uses the connection (reads, single statements with RETURNING) runs under
    `exclusive()`, between batches, never inside one.
    """

    def __init__(self, connection: aiosqlite.Connection, *, next_id_query: str) -> None:
        self._db = connection
        # The id the next inserted row gets, read inside the batch's transaction.
        self._next_id_query = next_id_query
        self._queue: list[_Write] = []
        self._lock = asyncio.Lock()
        self._writer: asyncio.Task[None] | None = None
        self.batches = 0  # committed batches (for tests and benchmarks)

    @contextlib.asynccontextmanager
    async def exclusive(self) -> AsyncIterator[None]:
        """The connection alone, outside any batch."""
        async with self._lock:
            yield

    async def write(self, sql: str, parameters: Sequence[Any]) -> int:
        """Runs `sql` in the next batch; returns the rows it changed once the batch commits."""
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
        # The write happens even if its caller is cancelled: another caller may share its batch.
        return asyncio.shield(write.done)

    async def _drain(self) -> None:
        while self._queue:
            batch, self._queue = self._queue, []
            async with self._lock:
                await self._commit(batch)

    async def _commit(self, batch: list[_Write]) -> None:
        try:
            results = await self._run(batch)
        except BaseException as exc:
            await self._roll_back()
            error = exc if isinstance(exc, Exception) else sqlite3.OperationalError("cancelled")
            for write in batch:
                if not write.done.done():
                    write.done.set_exception(error)
            if not isinstance(exc, Exception):
                raise
            return
        self.batches += 1
        for write, result in zip(batch, results, strict=True):
            if not write.done.done():
                write.done.set_result(result)

    async def _run(self, batch: list[_Write]) -> list[int]:
        await self._db.execute("BEGIN IMMEDIATE")
        next_id = await self._next_id() if any(write.assigns_id for write in batch) else 0
        results: list[int] = []
        for (sql, assigns_id), group in groupby(batch, key=lambda w: (w.sql, w.assigns_id)):
            writes = list(group)
            if assigns_id:
                ids = list(range(next_id, next_id + len(writes)))
                next_id += len(writes)
                rows = [
                    (new_id, *write.parameters[1:])
                    for new_id, write in zip(ids, writes, strict=True)
                ]
                await self._db.executemany(sql, rows)
                results += ids
            else:
                results += await self._changed(sql, writes)
        await self._db.execute("COMMIT")
        return results

    async def _changed(self, sql: str, writes: list[_Write]) -> list[int]:
        """Rows changed per write; one round trip when every write changed exactly one row."""
        if len(writes) == 1:
            async with self._db.execute(sql, writes[0].parameters) as cursor:
                return [cursor.rowcount]
        async with self._db.executemany(sql, [write.parameters for write in writes]) as cursor:
            if cursor.rowcount == len(writes):
                return [1] * len(writes)
        # Some changed no row: each write's own count is read by running it again, alone. The
        # statements written through the committer are idempotent (a second run leaves the
        # row as the first did), so the repeat changes nothing; a write whose first run
        # changed its row may then count 0, which callers read as "nothing (more) to change".
        counts = []
        for write in writes:
            async with self._db.execute(sql, write.parameters) as cursor:
                counts.append(cursor.rowcount)
        return counts

    async def _next_id(self) -> int:
        rows = list(await self._db.execute_fetchall(self._next_id_query))
        return int(rows[0][0])

    async def _roll_back(self) -> None:
        with contextlib.suppress(sqlite3.Error, ValueError):
            if self._db.in_transaction:
                await self._db.execute("ROLLBACK")
