"""Starts the fakes here and the bot under test in a child process, and talks to that child."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import tempfile
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeAlias

from bench.kit import LeanFakeDiscord, SeededWatch, StampedRelay
from tests.kit.fake_discord import FAKE_BOT_TOKEN

BotKind: TypeAlias = Literal["ours", "baseline"]
BOTS: tuple[BotKind, ...] = ("ours", "baseline")
RESULTS_DIR = Path(__file__).resolve().parent / "results"
RELAY_KEY = "sk-bench-relay-key-0123456789"
_REPO_ROOT = Path(__file__).resolve().parent.parent
_WATCH_CHUNK = 500
PROFILE_VARIABLE = "BENCH_PROFILE_TO"
# Set by `--profile DIR`: every bot process then runs under pyinstrument and writes its
# profile there (pyinstrument is not a dependency: `uv run --with pyinstrument ...`).
PROFILE_DIR: Path | None = None


class BotProcessError(RuntimeError):
    """The bot process failed a request or died."""


class BotProcess:
    """A `python -m bench.botproc` child: one JSON request per line in, one reply per line out."""

    def __init__(self, process: asyncio.subprocess.Process, log_path: Path) -> None:
        self._process = process
        self.log_path = log_path
        self._lock = asyncio.Lock()

    @classmethod
    async def spawn(cls, log_path: Path) -> BotProcess:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        environ = dict(os.environ)
        if PROFILE_DIR is not None:
            environ[PROFILE_VARIABLE] = str(PROFILE_DIR / log_path.with_suffix(".txt").name)
        with log_path.open("wb") as log_file:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bench.botproc",
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=log_file,
                cwd=_REPO_ROOT,
                env=environ,
                limit=1 << 26,
            )
        return cls(process, log_path)

    @property
    def pid(self) -> int:
        return self._process.pid

    async def call(self, op: str, timeout: float = 600, **arguments: Any) -> Any:  # noqa: ASYNC109
        stdin, stdout = self._process.stdin, self._process.stdout
        assert stdin is not None and stdout is not None
        async with self._lock:
            stdin.write(json.dumps({"op": op, **arguments}).encode() + b"\n")
            await stdin.drain()
            line = await asyncio.wait_for(stdout.readline(), timeout)
        if not line:
            raise BotProcessError(f"the bot process died during {op!r}; see {self.log_path}")
        reply = json.loads(line)
        if not reply["ok"]:
            raise BotProcessError(f"{op!r} failed in the bot process: {reply['error']}")
        return reply["result"]

    def kill(self) -> None:
        """SIGKILL: the process ends at once, without releasing anything."""
        if self._process.returncode is None:
            self._process.kill()

    async def close(self) -> dict[str, Any]:
        result: dict[str, Any] = {}
        if self._process.returncode is None:
            with contextlib.suppress(BotProcessError, TimeoutError, ConnectionError):
                result = await self.call("stop", timeout=30)
        try:
            await asyncio.wait_for(self._process.wait(), 15)
        except TimeoutError:
            self._process.kill()
            await self._process.wait()
        return result


@dataclass
class Environment:
    """The fake Discord and fake relay (in this process) and the bot under test (in a child)."""

    kind: BotKind
    fake: LeanFakeDiscord
    relay: StampedRelay
    bot: BotProcess
    interval: float

    async def add_watches(self, task: dict[str, Any], watches: Sequence[SeededWatch]) -> None:
        """Hands seeded interactions to the bot, which registers them as its command would."""
        for start in range(0, len(watches), _WATCH_CHUNK):
            chunk = watches[start : start + _WATCH_CHUNK]
            await self.bot.call(
                "watch",
                task=task,
                watches=[{"interaction": w.interaction, "message_id": w.message_id} for w in chunk],
            )


def settings_for(relay: StampedRelay, database: Path, **overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "DISCORD_TOKEN": FAKE_BOT_TOKEN,
        "SUNO_API_BASE_URL": relay.base_url,
        "SUNO_API_KEY": RELAY_KEY,
        "DATABASE_URL": f"sqlite:///{database}",
    }
    values.update({key: value for key, value in overrides.items()})
    return values


@asynccontextmanager
async def environment(
    kind: BotKind,
    label: str,
    *,
    interval: float,
    relay_delay: float = 0.0,
    **settings: Any,
) -> AsyncIterator[Environment]:
    """The fakes started here, the bot started in a fresh process and connected to them."""
    with tempfile.TemporaryDirectory(prefix="suno-bench-") as scratch:
        fake = LeanFakeDiscord()
        relay = StampedRelay(api_key=RELAY_KEY, delay=relay_delay, record=False)
        async with fake, relay:
            bot = await BotProcess.spawn(RESULTS_DIR / "logs" / f"{label}-{kind}.log")
            try:
                values = settings_for(
                    relay,
                    Path(scratch) / "watches.sqlite3",
                    POLL_INTERVAL_SECONDS=interval,
                    **settings,
                )
                await bot.call(
                    "start",
                    kind=kind,
                    api_base=fake.api_base,
                    gateway=fake.gateway_url,
                    settings=values,
                )
                await fake.wait_ready()
                yield Environment(kind, fake, relay, bot, interval)
            finally:
                await bot.close()
