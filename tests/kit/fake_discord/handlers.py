"""The tasks in which a discord.py client runs its app commands, so a test can let them finish.

discord.py runs each app command in a task that nobody awaits. Closing the client while one
still runs makes it fail on a closed session, or leaves it pending when the loop closes. The
tasks are found through the command tree's public `interaction_check` hook: the tree awaits
it, with the interaction, in the task that then runs the command (and its error handler).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Collection
from typing import Any

import discord
from discord import app_commands


class CommandHandlers:
    """`with CommandHandlers(client) as handlers:` sees every app command the client runs
    from then on; `await handlers.drain(grace)` lets them finish, then cancels the rest.

    A client without a command tree (not a `commands.Bot`) runs no app commands to see.
    """

    def __init__(self, client: discord.Client) -> None:
        tree = getattr(client, "tree", None)
        self._tree = tree if isinstance(tree, app_commands.CommandTree) else None
        self._seen: set[int] = set()
        self._running: set[asyncio.Task[Any]] = set()
        self._changed = asyncio.Event()
        self._attached = False

    def attach(self) -> None:
        tree = self._tree
        if tree is None or self._attached:
            return
        check = tree.interaction_check

        async def observing_check(interaction: discord.Interaction[Any], /) -> bool:
            self._observe(interaction)
            return await check(interaction)

        # An instance attribute shadows the class's method (overridden or not) until detach.
        tree.interaction_check = observing_check  # type: ignore[method-assign]
        self._attached = True

    def detach(self) -> None:
        if self._tree is None or not self._attached:
            return
        del self._tree.interaction_check
        self._attached = False

    def __enter__(self) -> CommandHandlers:
        self.attach()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.detach()

    def _observe(self, interaction: discord.Interaction[Any]) -> None:
        task = asyncio.current_task()
        if task is None or interaction.id in self._seen:
            return
        self._seen.add(interaction.id)
        self._running.add(task)
        task.add_done_callback(self._finished)
        self._changed.set()

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._running.discard(task)
        self._changed.set()

    async def drain(self, grace: float, expected: Collection[int] = ()) -> None:
        """Wait up to `grace` seconds until the commands of the `expected` interaction ids
        have started and every command seen has finished; then cancel those still running
        and wait for them to end."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        while True:
            self._changed.clear()
            waiting = bool(self._running) or not self._seen.issuperset(expected)
            remaining = deadline - loop.time()
            if not waiting or remaining <= 0:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)
        left = list(self._running)
        for task in left:
            task.cancel()
        await asyncio.gather(*left, return_exceptions=True)
