"""Runs the bot with the resources it owns, and the operator's configuration self-test."""

from __future__ import annotations

import asyncio
import logging
import signal
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import discord

from bot.app import SunoBot
from bot.config import Settings
from bot.suno.client import RelayClient
from bot.suno.errors import RelayKeyRejected, RelayProtocolError, RelayUnavailable, TaskNotFound
from bot.tracking.ownership import describe_holder, while_owner
from bot.tracking.store import SqliteWatchStore, StoreError

log = logging.getLogger(__name__)


def run_bot(settings: Settings) -> int:
    return asyncio.run(serve(settings))


def relay_client(session: aiohttp.ClientSession, settings: Settings) -> RelayClient:
    return RelayClient(
        session,
        settings.suno_api_base_url,
        settings.suno_api_key,
        timeout=settings.suno_api_timeout_seconds,
    )


@asynccontextmanager
async def assembled_bot(settings: Settings) -> AsyncIterator[SunoBot]:
    """The bot with the store and relay session it runs on; both are closed after it."""
    store = await SqliteWatchStore.open(settings.database_path)
    try:
        async with aiohttp.ClientSession() as session:
            bot = SunoBot(settings=settings, relay=relay_client(session, settings), store=store)
            try:
                yield bot
            finally:
                await bot.close()
    finally:
        await store.close()


async def serve(settings: Settings) -> int:
    """Runs until Discord closes the connection or SIGTERM/SIGINT asks the bot to stop."""
    try:
        async with assembled_bot(settings) as bot, _closed_on_stop_signals(bot):
            try:
                # Only the store's owner logs in and edits; another process on it waits here.
                await while_owner(
                    bot.store,
                    lambda: bot.start(settings.discord_token.get_secret_value()),
                    stopped=bot.is_closed,
                    stop=bot.close,
                )
            except discord.LoginFailure:
                log.error("Discord did not accept DISCORD_TOKEN; check the bot token")
                return 1
            except discord.PrivilegedIntentsRequired:
                log.error("the bot asked for an intent that is not enabled in the portal")
                return 1
    except StoreError as exc:
        log.error("%s", exc)
        return 1
    log.info("stopped")
    return 0


@asynccontextmanager
async def _closed_on_stop_signals(bot: SunoBot) -> AsyncIterator[None]:
    """While open, SIGTERM (docker stop) or SIGINT closes the bot, which ends `bot.start()`."""
    loop = asyncio.get_running_loop()
    closing: list[asyncio.Task[None]] = []

    def on_signal() -> None:
        if not closing:
            log.info("stop signal received; shutting down")
            closing.append(asyncio.create_task(bot.close(), name="close-on-signal"))

    signals = (signal.SIGTERM, signal.SIGINT)
    for sig in signals:
        loop.add_signal_handler(sig, on_signal)
    try:
        yield
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)
        if closing:
            await closing[0]


def run_check(settings: Settings) -> int:
    return asyncio.run(check(settings))


async def check(settings: Settings) -> int:
    """Prints one line per check and returns 0 only when every check passed."""
    results: list[bool] = []

    def report(ok: bool, what: str) -> None:
        results.append(ok)
        print(f"{'ok  ' if ok else 'FAIL'}  {what}", flush=True)

    report(True, f"settings loaded (relay {settings.suno_api_base_url})")
    try:
        store = await SqliteWatchStore.open(settings.database_path)
    except StoreError as exc:
        report(False, f"database: {exc}")
    else:
        holder = await describe_holder(store)
        await store.close()
        report(True, f"database opens ({settings.database_path}); {holder}")
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
