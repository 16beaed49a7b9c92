"""Discord down or failing, at start and later, with a real `python -m bot` process: one log line
per failed try and no traceback, retries until Discord is back, and SIGTERM ends the process
within 5 s (exit 0, store closed) whatever it is waiting for."""

from __future__ import annotations

import logging
import re
import socket
import sqlite3
from contextlib import closing
from pathlib import Path

from tests.kit.bot_process import BotProcess
from tests.kit.fake_discord import FAKE_BOT_TOKEN, FakeDiscord
from tests.kit.fake_relay import FakeRelay

# The product contract is 5 s (Docker kills after 10 s); a loaded test machine gets some slack.
STOP_WITHIN_SECONDS = 5.0
STOP_BOUND_SECONDS = 8.0
LOGIN_FAILED = "Discord login failed: "
GATEWAY_FAILED = "Discord gateway connection failed: "
NEXT_TRY = re.compile(r"; next try in (\d+(?:\.\d+)?)s$")

log = logging.getLogger(__name__)


def assert_stopped_cleanly(bot: BotProcess, code: int) -> None:
    elapsed = bot.stop_seconds
    assert elapsed is not None
    log.info("exited %s after SIGTERM in %.2fs", code, elapsed)
    assert code == 0, bot.output
    assert elapsed < STOP_BOUND_SECONDS, f"took {elapsed:.1f}s to stop\n{bot.output}"
    if elapsed >= STOP_WITHIN_SECONDS:
        log.warning("stopped in %.1fs: over the 5 s contract (a loaded machine?)", elapsed)
    assert "Traceback" not in bot.output, bot.output
    assert FAKE_BOT_TOKEN not in bot.output
    assert bot.lines_with("stopped"), bot.output
    # The store was closed: SQLite folded its write-ahead log back and removed it.
    assert not Path(f"{bot.database}-wal").exists()
    with closing(sqlite3.connect(bot.database)) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)]


def next_try_seconds(line: str) -> float:
    match = NEXT_TRY.search(line)
    assert match, line
    return float(match.group(1))


def closed_port() -> int:
    """A port on 127.0.0.1 nobody listens on: connecting to it is refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_a_real_start_logs_no_voice_warning(
    fake: FakeDiscord, relay: FakeRelay, database: Path
) -> None:
    async with BotProcess.against(fake, relay, database) as bot:
        await fake.wait_ready(timeout=30)
        await bot.wait_lines("connected as", 1)
        code = await bot.stop()
    assert_stopped_cleanly(bot, code)
    assert not bot.lines_with("voice"), bot.output
    assert not bot.lines_with("WARNING"), bot.output


async def test_discord_failing_at_login_is_retried_with_one_line_per_try_then_the_bot_serves(
    fake: FakeDiscord, relay: FakeRelay, database: Path
) -> None:
    fake.fail_next(
        "GET",
        "/users/@me",
        status=503,
        body={"message": "upstream connect error", "code": 0},
        times=3,
    )
    async with BotProcess.against(fake, relay, database) as bot:
        await fake.wait_ready(timeout=40)
        interaction = await fake.interact(options={"task_id": "after-the-outage"})
        await interaction.wait_callback()
        code = await bot.stop()
    assert_stopped_cleanly(bot, code)
    failures = bot.lines_with(LOGIN_FAILED)
    assert len(failures) == 3, bot.output
    # One line per failed try and nothing else about it: no per-try "logging in" notice.
    assert len(bot.lines_with("logging in")) == 1, bot.output
    assert [line for line in bot.lines if " WARNING " in line or " ERROR " in line] == failures
    assert all(
        "GET /api/v10/users/@me answered 503 Service Unavailable; next try in " in line
        for line in failures
    ), failures
    delays = [next_try_seconds(line) for line in failures]
    assert delays == sorted(delays), "the waits between tries grow"
    assert len([r for r in fake.requests if r.path == "/users/@me"]) == 4


async def test_a_gateway_unavailable_at_start_is_retried_until_it_answers(
    fake: FakeDiscord, relay: FakeRelay, database: Path
) -> None:
    fake.refuse_gateway(times=2)
    async with BotProcess.against(fake, relay, database) as bot:
        await fake.wait_ready(timeout=40)
        await bot.wait_lines("connected as", 1)
        code = await bot.stop()
    assert_stopped_cleanly(bot, code)
    failures = bot.lines_with(GATEWAY_FAILED)
    assert len(failures) == 2, bot.output
    assert all("HTTP 503 (Invalid response status); next try in " in f for f in failures)
    assert fake.gateway_refusals == 2


async def test_a_gateway_outage_logs_one_line_per_reconnect_attempt_and_the_bot_resumes(
    fake: FakeDiscord, relay: FakeRelay, database: Path
) -> None:
    async with BotProcess.against(fake, relay, database) as bot:
        await fake.wait_ready(timeout=30)
        ready_before = fake.ready_count
        fake.refuse_gateway(times=3)
        await fake.drop_gateway()
        await fake.wait_for(lambda: fake.ready_count > ready_before, timeout=40)
        await fake.wait_ready()
        interaction = await fake.interact(options={"task_id": "after-the-outage"})
        await interaction.wait_callback()
        code = await bot.stop()
    assert_stopped_cleanly(bot, code)
    failures = bot.lines_with(GATEWAY_FAILED)
    assert len(failures) == 3, bot.output
    assert all("HTTP 503 (Invalid response status); next try in " in f for f in failures)
    assert bot.lines_with("successfully RESUMED"), bot.output


async def test_sigterm_while_waiting_to_retry_login_exits_0_within_5_seconds(
    relay: FakeRelay, database: Path
) -> None:
    unreachable = f"http://127.0.0.1:{closed_port()}/api/v10"
    gateway = f"ws://127.0.0.1:{closed_port()}/gateway"
    async with BotProcess(unreachable, gateway, relay, database) as bot:
        [failure, *_] = await bot.wait_lines(LOGIN_FAILED, 2)
        code = await bot.stop()
    assert_stopped_cleanly(bot, code)
    assert "cannot connect to 127.0.0.1:" in failure, failure
    assert "; next try in " in failure


async def test_sigterm_while_connecting_to_an_unavailable_gateway_exits_0_within_5_seconds(
    fake: FakeDiscord, relay: FakeRelay, database: Path
) -> None:
    fake.refuse_gateway(times=1000)
    async with BotProcess.against(fake, relay, database) as bot:
        await bot.wait_lines(GATEWAY_FAILED, 1)
        code = await bot.stop()
    assert_stopped_cleanly(bot, code)


async def test_sigterm_while_reconnecting_after_an_outage_exits_0_within_5_seconds(
    fake: FakeDiscord, relay: FakeRelay, database: Path
) -> None:
    async with BotProcess.against(fake, relay, database) as bot:
        await fake.wait_ready(timeout=30)
        fake.refuse_gateway(times=1000)
        await fake.drop_gateway()
        # Stop while discord.py waits a long while before its next try (its waits grow).
        await bot.wait_for(
            lambda: any(next_try_seconds(f) >= 5 for f in bot.lines_with(GATEWAY_FAILED)), 90
        )
        code = await bot.stop()
    assert_stopped_cleanly(bot, code)


async def test_a_rejected_token_still_exits_at_once_with_its_line(
    fake: FakeDiscord, relay: FakeRelay, database: Path
) -> None:
    fake.fail_next(
        "GET", "/users/@me", status=401, body={"message": "401: Unauthorized", "code": 0}
    )
    async with BotProcess.against(fake, relay, database) as bot:
        code = await bot.exit_code()
    assert code == 1, bot.output
    assert bot.lines_with("Discord did not accept DISCORD_TOKEN; check the bot token")
    assert not bot.lines_with(LOGIN_FAILED)
    assert "Traceback" not in bot.output, bot.output
