"""`python -m bot` in its own process against the fake Discord and fake relay, its log read
line by line while it runs; extra settings are passed as environment variables."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

from tests.kit.fake_discord import FAKE_BOT_TOKEN, FakeDiscord
from tests.kit.fake_relay import FakeRelay

REPO = Path(__file__).resolve().parent.parent.parent


class BotProcess:
    """One bot process; `start()` (or `async with`) runs it, `stop()` signals it."""

    def __init__(
        self, api_base: str, gateway_url: str, relay: FakeRelay, database: Path, **env: str
    ) -> None:
        self._args = [sys.executable, "-m", "tests.kit.launch_bot", api_base, gateway_url]
        self._env = {
            "PATH": os.environ.get("PATH", ""),
            "PYTHONPATH": str(REPO),
            "DISCORD_TOKEN": FAKE_BOT_TOKEN,
            "SUNO_API_BASE_URL": relay.base_url,
            "SUNO_API_KEY": relay.api_key or "sk-test-relay-key",
            "DATABASE_URL": f"sqlite:///{database}",
            "POLL_INTERVAL_SECONDS": "0.1",
            "LOG_LEVEL": "INFO",
            **env,
        }
        self.database = database
        self.lines: list[str] = []
        self.exited_at: float | None = None  # monotonic
        self.stop_seconds: float | None = None  # from the signal to the exit
        self._process: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()

    @classmethod
    def against(cls, fake: FakeDiscord, relay: FakeRelay, database: Path, **env: str) -> BotProcess:
        """A bot process talking to `fake`."""
        return cls(fake.api_base, fake.gateway_url, relay, database, **env)

    async def start(self) -> None:
        self._process = await asyncio.create_subprocess_exec(
            *self._args,
            cwd=REPO,
            env=self._env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        self._reader = asyncio.create_task(self._read(self._process))

    async def __aenter__(self) -> BotProcess:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.kill()

    async def kill(self) -> None:
        """Ends the process if it still runs (SIGKILL: nothing of it is tested any more)."""
        if self.running:
            with contextlib.suppress(ProcessLookupError, TimeoutError):
                await self.stop(signal.SIGKILL, timeout=5)

    async def _read(self, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None
        async for raw in process.stdout:
            self.lines.append(raw.decode(errors="replace").rstrip("\n"))
            self._changed.set()
        self._changed.set()

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.returncode is None

    def lines_with(self, text: str) -> list[str]:
        return [line for line in self.lines if text in line]

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 30) -> None:  # noqa: ASYNC109
        """Until `predicate()` holds; fails early, with the log, if the process ended."""
        async with asyncio.timeout(timeout):
            while not predicate():
                if not self.running or (self._reader is not None and self._reader.done()):
                    raise AssertionError(f"the bot exited early:\n{self.output}")
                self._changed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), 0.2)

    async def wait_lines(self, text: str, count: int, timeout: float = 30) -> list[str]:  # noqa: ASYNC109
        """Until `count` lines hold `text`; those lines."""
        await self.wait_for(lambda: len(self.lines_with(text)) >= count, timeout)
        return self.lines_with(text)

    async def wait_for_line(self, text: str, timeout: float = 30) -> str:  # noqa: ASYNC109
        """The first line holding `text`, once it is logged."""
        [first, *_] = await self.wait_lines(text, 1, timeout)
        return first

    async def exit_code(self, timeout: float = 30) -> int:  # noqa: ASYNC109
        """Waits for the process to end by itself; its exit code."""
        assert self._process is not None and self._reader is not None
        code = await asyncio.wait_for(self._process.wait(), timeout=timeout)
        self.exited_at = time.monotonic()
        await self._reader
        return code

    async def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 30) -> int:  # noqa: ASYNC109
        """Sends `sig` (SIGTERM, as `docker stop` does) and returns the exit code."""
        assert self._process is not None
        started = time.monotonic()
        if self._process.returncode is None:
            self._process.send_signal(sig)
        code = await self.exit_code(timeout)
        self.stop_seconds = time.monotonic() - started
        return code
