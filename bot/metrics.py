"""Health and Prometheus metrics: what the bot counts, the event-loop lag probe, and the
optional HTTP endpoint (`/healthz`, `/metrics`) on METRICS_ADDRESS.

The layers do not import this module: the relay client, the store, the tracker and the
editor each take an optional observer, and `Metrics` is that observer. Labels are a few
fixed words (an endpoint, a route, an outcome), never a task id, a user, a server or a key.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from types import SimpleNamespace

import aiohttp
import discord
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector
from prometheus_client.aiohttp import make_aiohttp_handler
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from bot.config import split_address
from bot.tracking.editor import EditResult
from bot.tracking.tracker import TrackerStats

log = logging.getLogger(__name__)

# How often the event-loop lag probe wakes up.
LAG_PROBE_SECONDS = 0.5
ROUTES = ("token", "channel")
EDIT_OUTCOMES = ("ok", "retried", "gone", "rejected")
_EDIT_OUTCOME = {
    EditResult.OK: "ok",
    EditResult.RETRY: "retried",
    EditResult.CAPPED: "retried",
    EditResult.GONE: "gone",
    EditResult.TOKEN_DEAD: "gone",
    EditResult.REJECTED: "rejected",
}
# Relay outcomes that mean the relay answered as a relay does (a missing task is an answer).
_RELAY_ANSWERED = frozenset({"ok", "not_found", "unsupported"})
# Acknowledging an interaction is a POST to this route; the id is a snowflake, so it says
# when Discord created the interaction. The token in the path is never kept.
_CALLBACK_PATH = re.compile(r"/interactions/(\d+)/[^/]+/callback$")


class Metrics:
    """Every figure the bot reports, in a registry of its own, and what `/healthz` says.

    One instance lives as long as the process; each Discord login (a fresh SunoBot) reports
    into the same one.
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        registry = self.registry
        self._relay_requests = Counter(
            "suno_bot_relay_requests",
            "Relay requests by endpoint (fetch, batch) and outcome",
            ("endpoint", "outcome"),
            registry=registry,
        )
        self._relay_seconds = Histogram(
            "suno_bot_relay_request_seconds",
            "How long relay requests took, by endpoint",
            ("endpoint",),
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=registry,
        )
        self._batch_size = Histogram(
            "suno_bot_relay_batch_size",
            "Task ids asked for in one batch request",
            buckets=(1, 2, 5, 10, 25, 50, 100, 250, 500, 1000),
            registry=registry,
        )
        self._edits = Counter(
            "suno_bot_discord_edits",
            "Status message edits by route (token, channel) and outcome"
            " (ok, retried, gone, rejected)",
            ("route", "outcome"),
            registry=registry,
        )
        self._rate_limited = Counter(
            "suno_bot_discord_rate_limited",
            "Answers from Discord with HTTP 429 (rate limits, and the cap on edits of messages"
            " older than an hour)",
            registry=registry,
        )
        self._ack_seconds = Histogram(
            "suno_bot_interaction_ack_seconds",
            "Time from an interaction's creation to the bot's acknowledgement (Discord allows 3 s)",
            buckets=(0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 2.5, 3, 5),
            registry=registry,
        )
        self._final_edit_seconds = Histogram(
            "suno_bot_final_edit_seconds",
            "Time from the relay's answer that a task finished to the final edit of its message",
            buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60),
            registry=registry,
        )
        self._loop_lag = Histogram(
            "suno_bot_event_loop_lag_seconds",
            "How late the event loop woke a timer: high values mean the bot is overloaded",
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=registry,
        )
        self._resumed = Gauge(
            "suno_bot_watches_resumed",
            "Unfinished watches taken up from the store when the bot started",
            registry=registry,
        )
        self._store_errors = Counter(
            "suno_bot_store_errors", "Store statements that failed", registry=registry
        )
        self._gateway = Gauge(
            "suno_bot_gateway_connected",
            "1 while the Discord gateway session is connected, else 0",
            registry=registry,
        )
        ProcessCollector(registry=registry)
        registry.register(_TrackerCollector(self))
        # Series that exist from the start, so that rates and alerts see a 0 before the first 1.
        for endpoint in ("fetch", "batch"):
            self._relay_requests.labels(endpoint, "ok")
            self._relay_seconds.labels(endpoint)
        for route in ROUTES:
            for outcome in EDIT_OUTCOMES:
                self._edits.labels(route, outcome)
        self.tracker_stats: Callable[[], TrackerStats] | None = None
        self.gateway_connected = False
        self._relay_last: str | None = None
        self._relay_failing_since: float | None = None

    # -- observers of the layers ---------------------------------------------------------

    def relay_request(self, endpoint: str, outcome: str, seconds: float) -> None:
        self._relay_requests.labels(endpoint, outcome).inc()
        self._relay_seconds.labels(endpoint).observe(seconds)
        if outcome in _RELAY_ANSWERED:
            self._relay_failing_since = None
        elif self._relay_failing_since is None:
            self._relay_failing_since = time.monotonic()
        self._relay_last = outcome

    def relay_batch(self, size: int) -> None:
        self._batch_size.observe(size)

    def discord_edit(self, route: str, result: EditResult) -> None:
        self._edits.labels(route, _EDIT_OUTCOME[result]).inc()

    def final_edit(self, seconds: float) -> None:
        self._final_edit_seconds.observe(seconds)

    def store_error(self) -> None:
        self._store_errors.inc()

    def watches_resumed(self, count: int) -> None:
        self._resumed.set(count)

    def gateway(self, *, connected: bool) -> None:
        self.gateway_connected = connected
        self._gateway.set(1 if connected else 0)

    def loop_lag(self, seconds: float) -> None:
        self._loop_lag.observe(seconds)

    def interaction_acknowledged(self, interaction_id: int) -> None:
        created = discord.utils.snowflake_time(interaction_id)
        seconds = (discord.utils.utcnow() - created).total_seconds()
        self._ack_seconds.observe(max(seconds, 0.0))

    def discord_trace(self) -> aiohttp.TraceConfig:
        """For discord.py's HTTP session (`http_trace`): counts Discord's 429 answers and
        times each interaction's acknowledgement, whoever sent it."""
        trace = aiohttp.TraceConfig()
        trace.on_request_end.append(self._on_discord_answer)
        return trace

    async def _on_discord_answer(
        self,
        _session: aiohttp.ClientSession,
        _context: SimpleNamespace,
        params: aiohttp.TraceRequestEndParams,
    ) -> None:
        status = params.response.status
        if status == 429:
            self._rate_limited.inc()
            return
        found = _CALLBACK_PATH.search(params.url.path)
        if found is not None and status < 300:
            self.interaction_acknowledged(int(found[1]))

    # -- health --------------------------------------------------------------------------

    def health(self, *, store_open: bool) -> tuple[bool, str]:
        """Whether the bot is healthy, and one line saying why (and how the relay fares:
        a relay outage is reported, but the bot itself stays healthy through it)."""
        problems = []
        if not self.gateway_connected:
            problems.append("Discord gateway not connected")
        if not store_open:
            problems.append("store not open")
        relay = self._relay_state()
        if problems:
            return False, f"unhealthy: {', '.join(problems)}; {relay}"
        return True, f"ok: Discord gateway connected, store open; {relay}"

    def _relay_state(self) -> str:
        if self._relay_last is None:
            return "relay not asked yet"
        if self._relay_failing_since is None:
            return "relay answering"
        failing = time.monotonic() - self._relay_failing_since
        return f"relay failing for {failing:.0f} s (last: {self._relay_last})"


class _TrackerCollector(Collector):
    """The tracker's figures, read when Prometheus scrapes."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterable[GaugeMetricFamily]:
        read = self._metrics.tracker_stats
        stats = read() if read is not None else None
        watches = GaugeMetricFamily(
            "suno_bot_watches_active",
            "Messages kept current, by how they are edited (token: the interaction; channel:"
            " the bot's own edit)",
            labels=("route",),
        )
        for route in ROUTES:
            watches.add_metric((route,), stats.routes.get(route, 0) if stats else 0)
        yield watches
        yield GaugeMetricFamily(
            "suno_bot_tasks_polled",
            "Task ids the bot is polling the relay for",
            value=stats.tasks if stats else 0,
        )


class LoopLagProbe:
    """An owned background task that sleeps and reports how late it woke: the event loop's
    lag, which grows when something blocks the loop or the bot has more work than CPU."""

    def __init__(self, observe: Callable[[float], None], every: float = LAG_PROBE_SECONDS) -> None:
        self._observe = observe
        self._every = every
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="event-loop-lag")
            self._task.add_done_callback(_log_failure)

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            await asyncio.sleep(self._every)
            self._observe(max(loop.time() - started - self._every, 0.0))


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("the event-loop lag probe stopped", exc_info=task.exception())


class EndpointError(Exception):
    """METRICS_ADDRESS cannot be served: the port is taken, or the host is not this machine's."""


def health_app(metrics: Metrics, store_open: Callable[[], bool]) -> web.Application:
    """`GET /healthz` (200, or 503 with the reason, one line) and `GET /metrics`."""

    async def healthz(_request: web.Request) -> web.Response:
        healthy, line = metrics.health(store_open=store_open())
        return web.Response(status=200 if healthy else 503, text=f"{line}\n")

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", make_aiohttp_handler(metrics.registry))
    return app


@asynccontextmanager
async def serving(
    address: str | None, metrics: Metrics, store_open: Callable[[], bool]
) -> AsyncIterator[str | None]:
    """While open, serves `/healthz` and `/metrics` on `address` and measures the event
    loop's lag; yields the base URL served (the real port when `address` asks for port 0).
    With no address it serves nothing and yields None."""
    if address is None:
        yield None
        return
    host, port = split_address(address)
    runner = web.AppRunner(health_app(metrics, store_open), access_log=None, handle_signals=False)
    await runner.setup()
    try:
        try:
            await web.TCPSite(runner, host, port).start()
        except OSError as exc:
            # aiohttp words a taken port with the address again; the errno says it plainly.
            reason = os.strerror(exc.errno) if exc.errno and exc.errno > 0 else exc.strerror
            raise EndpointError(
                f"cannot serve /healthz and /metrics on METRICS_ADDRESS={address}: {reason or exc}"
            ) from None
        bound_host, bound_port = runner.addresses[0][:2]
        url = f"http://{f'[{bound_host}]' if ':' in bound_host else bound_host}:{bound_port}"
        log.info("serving /healthz and /metrics on %s", url)
        probe = LoopLagProbe(metrics.loop_lag)
        probe.start()
        try:
            yield url
        finally:
            await probe.close()
    finally:
        await runner.cleanup()
