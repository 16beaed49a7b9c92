"""Runs the bot with the resources it owns, and the operator's configuration self-test."""

from __future__ import annotations

import asyncio
import logging
import random
import signal
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass

import aiohttp
import discord

from bot.app import SunoBot, make_bot
from bot.config import Settings
from bot.keys import KeyRing, MemberKeys
from bot.logs import describe_failure
from bot.metrics import EndpointError, Metrics, serving
from bot.suno.client import RelayClient
from bot.suno.errors import RelayKeyRejected, RelayProtocolError, RelayUnavailable, TaskNotFound
from bot.tracking.backends import OpenStore, describe_location, open_store
from bot.tracking.ownership import (
    LeaseKeeper,
    LeaseTiming,
    describe_holder,
    describe_members,
    membership_keeper,
    new_owner_id,
    while_owner,
)
from bot.tracking.postgres import PostgresWatchStore
from bot.tracking.store import StoreError

log = logging.getLogger(__name__)

# Closing the bot (tracker, gateway, HTTP session) may take this long before shutdown goes on
# without it: the whole stop stays within the 5 s that `docker stop` waits before SIGKILL.
CLOSE_SECONDS = 3.0
# The gateway's close code for a token it does not accept.
GATEWAY_AUTHENTICATION_FAILED = 4004


def run_bot(settings: Settings) -> int:
    return asyncio.run(serve(settings))


def relay_client(
    session: aiohttp.ClientSession, settings: Settings, metrics: Metrics | None = None
) -> RelayClient:
    return RelayClient(
        session,
        settings.suno_api_base_url,
        settings.suno_api_key,
        timeout=settings.suno_api_timeout_seconds,
        observer=metrics,
    )


# Connections open to the relay at once. Polls take at most 68 (64 single fetches, 4 batch
# reads); the rest serve commands, each waiting for its first answer: a burst of 500 commands
# in a second with a relay that answers in 200 ms keeps ~100 of them open, which aiohttp's
# default of 100 made wait in line.
RELAY_CONNECTIONS = 256


@dataclass(frozen=True, slots=True)
class Resources:
    """What the bot runs on besides Discord: the store, the relay client, and the metrics
    every Discord login reports into."""

    store: OpenStore
    relay: RelayClient
    metrics: Metrics
    keys: MemberKeys
    # This process's name in the store's leases.
    instance: str


@asynccontextmanager
async def bot_resources(settings: Settings) -> AsyncIterator[Resources]:
    """The store and the relay session; both are closed on the way out."""
    metrics = Metrics()
    store = await open_store(settings.database_url, observer=metrics)
    try:
        keys = await member_keys(settings, store)
        connector = aiohttp.TCPConnector(limit=RELAY_CONNECTIONS)
        async with aiohttp.ClientSession(connector=connector) as session:
            relay = relay_client(session, settings, metrics)
            yield Resources(store, relay, metrics, keys, new_owner_id())
    finally:
        await store.close()


async def member_keys(settings: Settings, store: OpenStore) -> MemberKeys:
    """The member and server keys, on when KEY_ENCRYPTION_SECRET is set; keys encrypted with
    an older secret are re-encrypted with the first one at start."""
    secrets = settings.key_encryption_secrets
    keys = MemberKeys(store, KeyRing(secrets) if secrets else None)
    if not keys.enabled:
        log.info("member and server relay keys are off (KEY_ENCRYPTION_SECRET is unset)")
        return keys
    rotated = await keys.reencrypt_all()
    if rotated:
        log.info("re-encrypted %d relay keys with the current KEY_ENCRYPTION_SECRET", rotated)
    return keys


@asynccontextmanager
async def discord_client(settings: Settings, resources: Resources) -> AsyncIterator[SunoBot]:
    """One SunoBot on the given resources, closed on the way out (within CLOSE_SECONDS)."""
    bot = make_bot(
        settings=settings,
        relay=resources.relay,
        store=resources.store,
        metrics=resources.metrics,
        keys=resources.keys,
        instance=resources.instance,
    )
    try:
        yield bot
    finally:
        try:
            async with asyncio.timeout(CLOSE_SECONDS):
                await bot.close()
        except TimeoutError:
            log.warning("closing the Discord connection took over %gs; going on", CLOSE_SECONDS)


@asynccontextmanager
async def assembled_bot(settings: Settings) -> AsyncIterator[SunoBot]:
    """The bot with the store and relay session it runs on; both are closed after it."""
    async with bot_resources(settings) as resources, discord_client(settings, resources) as bot:
        yield bot


async def serve(settings: Settings) -> int:
    """Runs until SIGTERM/SIGINT (exit 0) or until Discord refuses the bot's configuration
    (exit 1). Discord unreachable or failing is waited out, at start and later."""
    try:
        async with (
            bot_resources(settings) as resources,
            serving(settings.metrics_address, resources.metrics, lambda: resources.store.is_open),
        ):
            session = DiscordSession(settings, resources)
            with _stop_on_signals(session.request_stop):
                # On SQLite only the store's owner logs in and edits; another process on it
                # waits here. On PostgreSQL every process is a member of the cluster.
                await while_owner(
                    resources.store,
                    session.run,
                    stopped=lambda: session.stop_requested,
                    stop=session.stop,
                    keeper=_keeper(settings, resources),
                )
    except DISCORD_REFUSALS as exc:
        log.error("%s", refusal_line(exc))
        return 1
    except (StoreError, EndpointError) as exc:
        log.error("%s", exc)
        return 1
    log.info("stopped")
    return 0


def _keeper(settings: Settings, resources: Resources) -> LeaseKeeper | None:
    """The lease this process runs under: the store's own (SQLite, one process at a time), or
    its membership of the cluster (PostgreSQL, any number of processes)."""
    if not settings.clustered:
        return None
    ttl = settings.cluster_lease_seconds
    timing = LeaseTiming(ttl=ttl, renew_every=ttl / 3)
    return membership_keeper(resources.store, resources.instance, timing)


class LoginBackoff:
    """Waits between login tries: 1, 2, 4 … seconds up to a minute, each ±20 % so that
    bots restarted together do not knock on Discord's door in step."""

    def __init__(self, first: float = 1.0, limit: float = 60.0) -> None:
        self._next = first
        self._limit = limit

    def next(self) -> float:
        delay = self._next * random.uniform(0.8, 1.2)
        self._next = min(self._next * 2, self._limit)
        return delay


class DiscordSession:
    """The bot's time on Discord: log in, retrying with backoff while Discord is unreachable or
    failing; then stay connected, discord.py reconnecting (and resuming) after outages.

    Each login try gets a fresh SunoBot, closed after a failed try: a half-done login leaves
    an HTTP session and maybe loaded extensions behind, and closing the whole client is the
    public way to release them. `stop()` ends `run()` at once, whatever it waits for (a login
    retry, a reconnect backoff, the open gateway): the loop runs in a task that stop()
    cancels, and the bot is closed on the way out.
    """

    def __init__(self, settings: Settings, resources: Resources) -> None:
        self._settings = settings
        self._resources = resources
        self._task: asyncio.Task[None] | None = None
        self.stop_requested = False

    def request_stop(self) -> None:
        if self.stop_requested:
            return
        self.stop_requested = True
        if self._task is not None:
            self._task.cancel()

    async def stop(self) -> None:
        self.request_stop()

    async def run(self) -> None:
        """Returns once stopped; raises what Discord refused for good (see DISCORD_REFUSALS)."""
        if self.stop_requested:
            return
        self._task = asyncio.create_task(self._log_in_and_stay(), name="discord-session")
        try:
            await self._task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if not self.stop_requested or (current is not None and current.cancelling()):
                raise

    async def _log_in_and_stay(self) -> None:
        log.info("logging in to Discord")
        backoff = LoginBackoff()
        while True:
            delay = await self._attempt(backoff)
            if delay is None:
                return
            await asyncio.sleep(delay)

    async def _attempt(self, backoff: LoginBackoff) -> float | None:
        """One login and, if it worked, the whole connected life of that bot: None when it
        ended, or the seconds to wait before the next try."""
        async with discord_client(self._settings, self._resources) as bot:
            try:
                await bot.login(self._settings.discord_token.get_secret_value())
            except LOGIN_ERRORS as exc:
                if not _retryable(exc):
                    raise
                delay = backoff.next()
                log.warning(
                    "Discord login failed: %s; next try in %.1fs", describe_failure(exc), delay
                )
                return delay
            await _stay_connected(bot)
            return None


# What discord.py's connect() itself retries after (its reconnect loop catches these).
NETWORK_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    aiohttp.ClientError,
    asyncio.TimeoutError,
    discord.GatewayNotFound,
    discord.ConnectionClosed,
)
# What a login try may fail with; only some of it is worth another try (see _retryable).
LOGIN_ERRORS: tuple[type[BaseException], ...] = (discord.HTTPException, *NETWORK_ERRORS)
# What ends the bot with exit code 1: retrying cannot help, the configuration must change.
DISCORD_REFUSALS: tuple[type[BaseException], ...] = (
    discord.LoginFailure,
    discord.PrivilegedIntentsRequired,
    discord.ConnectionClosed,
    discord.HTTPException,
)


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, discord.HTTPException):
        return exc.status >= 500 or exc.status == 429
    return isinstance(exc, NETWORK_ERRORS)


async def _stay_connected(bot: SunoBot) -> None:
    """discord.py's connect loop: reconnects with backoff, each failure one log line (see
    bot.logs.DiscordLogFilter); returns when the bot is closed."""
    while True:
        try:
            await bot.connect(reconnect=True)
            return
        except AttributeError as exc:
            # discord.py 2.7 retries a failed *first* gateway connection, but after its wait
            # reads `self.ws.sequence` of a websocket that never existed (Rapptz/discord.py
            # #10520). The failure was logged with the wait and the wait is over: try again.
            if not isinstance(exc.__context__, NETWORK_ERRORS):
                raise


def refusal_line(exc: BaseException) -> str:
    """The one line an operator sees when Discord refuses the bot for good."""
    if isinstance(exc, discord.LoginFailure):
        return "Discord did not accept DISCORD_TOKEN; check the bot token"
    if isinstance(exc, discord.PrivilegedIntentsRequired):
        return "the bot asked for an intent that is not enabled in the portal"
    if isinstance(exc, discord.ConnectionClosed) and exc.code == GATEWAY_AUTHENTICATION_FAILED:
        return "Discord's gateway did not accept DISCORD_TOKEN; check the bot token"
    if isinstance(exc, discord.ConnectionClosed):
        return f"Discord ended the gateway connection for good: {describe_failure(exc)}"
    return f"Discord refused a start-up request: {describe_failure(exc)}"


@contextmanager
def _stop_on_signals(stop: Callable[[], None]) -> Iterator[None]:
    """While open, SIGTERM (docker stop) or SIGINT calls `stop()`, once."""
    loop = asyncio.get_running_loop()
    received = False

    def on_signal() -> None:
        nonlocal received
        if not received:
            received = True
            log.info("stop signal received; shutting down")
            stop()

    signals = (signal.SIGTERM, signal.SIGINT)
    for sig in signals:
        loop.add_signal_handler(sig, on_signal)
    try:
        yield
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)


async def _check_store(settings: Settings, report: Callable[[bool, str], None]) -> None:
    """The database opens; with member keys on, every stored key decrypts."""
    try:
        store = await open_store(settings.database_url)
    except StoreError as exc:
        report(False, f"database: {exc}")
        return
    try:
        holder = await (
            describe_members(store)
            if isinstance(store, PostgresWatchStore)
            else describe_holder(store)
        )
        report(True, f"database opens ({describe_location(settings.database_url)}); {holder}")
        secrets = settings.key_encryption_secrets
        if secrets:
            stored, unreadable = await MemberKeys(store, KeyRing(secrets)).count_readable()
            report(
                not unreadable,
                f"member keys on: {stored} stored, all readable"
                if not unreadable
                else f"member keys: {unreadable} of {stored} cannot be decrypted with "
                "KEY_ENCRYPTION_SECRET (list the old secret after the new one)",
            )
    finally:
        await store.close()


def run_check(settings: Settings) -> int:
    return asyncio.run(check(settings))


async def check(settings: Settings) -> int:
    """Prints one line per check and returns 0 only when every check passed."""
    results: list[bool] = []

    def report(ok: bool, what: str) -> None:
        results.append(ok)
        print(f"{'ok  ' if ok else 'FAIL'}  {what}", flush=True)

    report(True, f"settings loaded (relay {settings.suno_api_base_url})")
    await _check_store(settings, report)
    probe_id = f"check-{uuid.uuid4().hex}"
    async with aiohttp.ClientSession() as session:
        try:
            await relay_client(session, settings).fetch(probe_id)
        except TaskNotFound:
            report(True, "relay reachable")
            report(True, "relay key accepted")
        except RelayKeyRejected as exc:
            report(True, "relay reachable")
            report(False, f"relay key rejected ({exc.status}): check SUNO_API_KEY")
        except RelayUnavailable as exc:
            report(False, f"relay unreachable: {exc}")
            report(False, "relay key not checked: the relay did not answer")
        except RelayProtocolError as exc:
            report(True, "relay reachable")
            report(False, f"relay answered unlike a Suno relay ({exc}): check SUNO_API_BASE_URL")
        else:
            report(True, "relay reachable")
            report(True, "relay key accepted")
    return 0 if all(results) else 1
