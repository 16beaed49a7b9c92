"""Runs one bot under test (ours or the baseline) in its own process, driven over stdin."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import importlib
import json
import logging
import os
import resource
import sys
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from datetime import timedelta
from pathlib import Path
from typing import Any, BinaryIO

import aiohttp
import discord
import yarl
from discord.gateway import DiscordWebSocket
from discord.http import Route

from bench.baseline import NaiveBot
from bench.driver import PROFILE_VARIABLE
from bench.hotpath import measure_hot_path
from bench.stats import summarize
from bot.app import SunoBot
from bot.config import Settings
from bot.render import render_task
from bot.runner import assembled_bot
from bot.suno.client import RelayClient
from bot.suno.models import Task, envelope_from, task_from_data
from bot.tracking.ownership import LeaseKeeper, LeaseTiming, membership_keeper
from bot.tracking.postgres import PostgresWatchStore
from bot.tracking.store import NewWatch
from tests.kit.fake_discord import CommandHandlers

log = logging.getLogger("bench.botproc")

READY_TIMEOUT = 30.0
PROBE_PERIOD = 0.010


class LoopProbe:
    """Sleeps 10 ms over and over and records by how much each sleep overran; also times the
    garbage collector's passes (a full pass over a big heap is one long stall)."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self.gc_pauses: list[tuple[int, float]] = []  # (generation, seconds)
        self._gc_started = 0.0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.samples = []
        self.gc_pauses = []
        gc.callbacks.append(self._on_gc)
        self._task = asyncio.create_task(self._run(), name="loop-lag-probe")

    async def stop(self) -> list[float]:
        if self._on_gc in gc.callbacks:
            gc.callbacks.remove(self._on_gc)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        return self.samples

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._gc_started = time.perf_counter()
        else:
            self.gc_pauses.append((info["generation"], time.perf_counter() - self._gc_started))

    async def _run(self) -> None:
        clock = time.perf_counter
        while True:
            before = clock()
            await asyncio.sleep(PROBE_PERIOD)
            self.samples.append(max(0.0, clock() - before - PROBE_PERIOD))


def _rss_now_kib() -> int:
    with open("/proc/self/statm", encoding="ascii") as statm:
        resident_pages = int(statm.read().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE") // 1024


def _peak_rss_kib() -> int:
    """The peak RSS of this process's own memory (VmHWM). Not getrusage's ru_maxrss: Linux
    carries that over exec, so a child of a large benchmark process reported the parent's
    size at the moment it was spawned."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _task_id_of(interaction: dict[str, Any]) -> str:
    """The task_id option of a `/suno status` interaction payload."""
    [subcommand] = interaction["data"]["options"]
    for option in subcommand["options"]:
        if option["name"] == "task_id":
            return str(option["value"])
    raise ValueError("the interaction has no task_id option")


class Host:
    """Holds the bot and answers the driver's requests."""

    def __init__(self) -> None:
        self.kind = ""
        self.bot: SunoBot | NaiveBot | None = None
        self.stack = AsyncExitStack()
        self.runner: asyncio.Task[None] | None = None
        self.handlers: CommandHandlers | None = None
        self.probe = LoopProbe()
        self.probe_started = (0.0, 0.0)
        self.watches_added = 0
        self.membership: asyncio.Task[None] | None = None
        self.keeper: LeaseKeeper | None = None

    async def handle(self, request: dict[str, Any]) -> Any:
        handlers: dict[str, Callable[[dict[str, Any]], Awaitable[Any]]] = {
            "start": self.start,
            "watch": self.watch,
            "probe_start": self.probe_start,
            "probe_stop": self.probe_stop,
            "stats": self.stats,
            "leases": self.leases,
            "hotpath": self.hotpath,
            "stop": self.stop,
        }
        return await handlers[request["op"]](request)

    async def start(self, request: dict[str, Any]) -> Any:
        Route.BASE = request["api_base"]
        DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(request["gateway"])
        self.kind = request["kind"]
        values: dict[str, Any] = request["settings"]
        settings = Settings(_env_file=None, **values)
        if self.kind == "ours":
            bot: SunoBot | NaiveBot = await self.stack.enter_async_context(assembled_bot(settings))
            if settings.clustered and isinstance(bot, SunoBot):
                await self._join_cluster(bot, settings, handover=request.get("handover"))
        else:
            session = await self.stack.enter_async_context(aiohttp.ClientSession())
            relay = RelayClient(
                session,
                settings.suno_api_base_url,
                settings.suno_api_key,
                timeout=settings.suno_api_timeout_seconds,
            )
            bot = NaiveBot(relay=relay, poll_interval=settings.poll_interval_seconds)
            self.stack.push_async_callback(bot.close)
        # The fake has one guild and sends it at once; waiting 2 s for more only slows startup.
        bot._connection.guild_ready_timeout = 0.1
        self.bot = bot
        self.handlers = self.stack.enter_context(CommandHandlers(bot))
        token = settings.discord_token.get_secret_value()
        self.runner = asyncio.create_task(bot.start(token), name="bot")
        deadline = time.monotonic() + READY_TIMEOUT
        while not bot.is_ready():
            if self.runner.done():
                self.runner.result()
                raise RuntimeError("the bot stopped before it was ready")
            if time.monotonic() > deadline:
                raise RuntimeError("the bot did not become ready in time")
            await asyncio.sleep(0.02)
        return {"pid": os.getpid(), "instance": getattr(bot, "instance", None)}

    async def _join_cluster(self, bot: SunoBot, settings: Settings, handover: str | None) -> None:
        """As the runner does on PostgreSQL: a membership lease, held while the bot runs.
        `handover="scan"` turns the notification off, so leaders find new watches only by
        their scan each sync (to compare the two)."""
        if handover == "scan" and isinstance(bot.store, PostgresWatchStore):

            async def not_told(watch: object) -> None:
                return None

            bot.store.hand_over = not_told  # type: ignore[method-assign]
        ttl = settings.cluster_lease_seconds
        keeper: LeaseKeeper = membership_keeper(
            bot.store, bot.instance, LeaseTiming(ttl=ttl, renew_every=ttl / 3)
        )
        await keeper.wait_until_held(lambda: False)
        forever = asyncio.Event()

        async def hold() -> None:
            await forever.wait()

        async def stop() -> None:
            forever.set()

        self.keeper = keeper
        self.membership = asyncio.create_task(keeper.run(hold, stop))

    async def leases(self, request: dict[str, Any]) -> Any:
        """The task ids this process leads now (the bench's watches all use the bot's key)."""
        bot = self.bot
        assert isinstance(bot, SunoBot) and bot.coordinator is not None
        return sorted(task_id for _, task_id in bot.coordinator.held)

    async def watch(self, request: dict[str, Any]) -> Any:
        """Registers watches of interactions the fake already answered, as the command would."""
        bot = self.bot
        assert bot is not None
        template = task_from_data(envelope_from(request["task"]).data)
        registrations = []
        for item in request["watches"]:
            interaction: discord.Interaction[Any] = discord.Interaction(
                data=item["interaction"], state=bot._connection
            )
            task_id = _task_id_of(item["interaction"])
            if isinstance(bot, SunoBot):
                # Commands run concurrently, each in its own task, as discord.py runs them.
                registrations.append(
                    _register_ours(bot, interaction, task_id, template, int(item["message_id"]))
                )
            else:
                bot.watch(interaction, task_id)
        await asyncio.gather(*registrations)
        self.watches_added += len(request["watches"])
        return {"added": self.watches_added}

    async def probe_start(self, request: dict[str, Any]) -> Any:
        self.probe.start()
        self.probe_started = (time.perf_counter(), time.process_time())
        return None

    async def probe_stop(self, request: dict[str, Any]) -> Any:
        wall = time.perf_counter() - self.probe_started[0]
        cpu = time.process_time() - self.probe_started[1]
        samples = await self.probe.stop()
        lag = summarize([sample * 1000 for sample in samples])
        pauses = self.probe.gc_pauses
        return {
            "gc": {
                "passes": len(pauses),
                "full_passes": sum(1 for generation, _ in pauses if generation == 2),
                "longest_ms": max((seconds for _, seconds in pauses), default=0.0) * 1000,
                "total_ms": sum(seconds for _, seconds in pauses) * 1000,
                "tracked_objects": len(gc.get_objects()),
                "frozen_objects": gc.get_freeze_count(),
            },
            "wall_s": wall,
            "cpu_s": cpu,
            "lag_ms": lag,
            "peak_rss_kib": _peak_rss_kib(),
            "rss_kib": _rss_now_kib(),
            **(await self.stats(request)),
        }

    async def stats(self, request: dict[str, Any]) -> Any:
        bot = self.bot
        if isinstance(bot, SunoBot):
            stats = bot.tracker.stats()
            return {"tasks": stats.tasks, "watches": stats.watches, "batch_mode": stats.batch_mode}
        if isinstance(bot, NaiveBot):
            return {"tasks": None, "watches": len(bot.loops), "batch_mode": None}
        return {}

    async def hotpath(self, request: dict[str, Any]) -> Any:
        cpu = int(request.get("cpu", 0))
        with contextlib.suppress(OSError):
            os.sched_setaffinity(0, {cpu})
        return measure_hot_path(float(request["seconds"]))

    async def stop(self, request: dict[str, Any]) -> Any:
        peak = _peak_rss_kib()
        if self.handlers is not None:
            await self.handlers.drain(float(request.get("grace", 2.0)))
        if self.bot is not None:
            await self.bot.close()
        if self.membership is not None:
            self.membership.cancel()
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await self.membership
        if self.keeper is not None:
            await self.keeper.release()
        await self.stack.aclose()
        if self.bot is not None:
            await self.bot.close()
        if self.runner is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(self.runner, 10)
        return {"peak_rss_kib": peak}


async def _register_ours(
    bot: SunoBot,
    interaction: discord.Interaction[Any],
    task_id: str,
    template: Task,
    message_id: int,
) -> None:
    """What the command does after a quick relay answer, minus the callback the fake holds."""
    task = dataclasses.replace(template, task_id=task_id)
    locale = str(interaction.locale)
    watch = await bot.store.add(
        NewWatch(
            task_id=task_id,
            application_id=interaction.application_id,
            guild_id=interaction.guild_id,
            channel_id=interaction.channel_id,
            requester_id=interaction.user.id,
            locale=locale,
            ephemeral=False,
            interaction_id=interaction.id,
            interaction_token=interaction.token,
            token_expires_at=interaction.expires_at,
            deadline_at=discord.utils.utcnow()
            + timedelta(seconds=bot.settings.watch_timeout_seconds),
        )
    )
    fingerprint = render_task(task, locale=locale).fingerprint
    await bot.store.set_message_id(watch.id, message_id)
    await bot.store.set_fingerprint(watch.id, fingerprint)
    watch = dataclasses.replace(watch, message_id=message_id, last_fingerprint=fingerprint)
    bot.tracker.add(watch, task=task)


def _rpc_output() -> BinaryIO:
    """stdout for replies only: anything else printed to fd 1 goes to stderr instead."""
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    return replies


async def serve() -> None:
    out = _rpc_output()
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 28)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    host = Host()
    while line := await reader.readline():
        request = json.loads(line)
        try:
            reply: dict[str, Any] = {"ok": True, "result": await host.handle(request)}
        except Exception as exc:
            log.exception("request %s failed", request.get("op"))
            reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        out.write(json.dumps(reply).encode() + b"\n")
        out.flush()
        if request.get("op") == "stop":
            break


def main() -> None:
    logging.basicConfig(
        level=os.environ.get("BENCH_LOG_LEVEL", "WARNING"),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
    )
    profile_to = os.environ.get(PROFILE_VARIABLE)
    if not profile_to:
        asyncio.run(serve())
        return
    # Imported by name: pyinstrument is only present under `uv run --with pyinstrument`.
    profiler: Any = importlib.import_module("pyinstrument").Profiler(
        interval=0.001, async_mode="disabled"
    )
    profiler.start()
    try:
        asyncio.run(serve())
    finally:
        profiler.stop()
        Path(profile_to).parent.mkdir(parents=True, exist_ok=True)
        Path(profile_to).write_text(profiler.output_text(unicode=True, color=False))


if __name__ == "__main__":
    main()
