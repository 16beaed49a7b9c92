"""`python -m bot` in its own process against the fake Discord and fake relay, its log read
line by line while it runs; extra settings are passed as environment variables."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path

from tests.kit.fake_discord import FAKE_BOT_TOKEN, FakeDiscord
from tests.kit.fake_relay import FakeRelay

REPO = Path(__file__).resolve().parent.parent.parent


class BotProcess:
    def __init__(self, fake: FakeDiscord, relay: FakeRelay, database: Path, **env: str) -> None:
        self._args = [sys.executable, "-m", "tests.kit.launch_bot", fake.api_base, fake.gateway_url]
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
        self.lines: list[str] = []
        self._process: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None

    async def __aenter__(self) -> BotProcess:
        self._process = await asyncio.create_subprocess_exec(
            *self._args,
            cwd=REPO,
            env=self._env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        self._reader = asyncio.create_task(self._read(self._process))
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self.running:
            with contextlib.suppress(ProcessLookupError, TimeoutError):
                await self.stop(signal.SIGKILL, timeout=5)

    async def _read(self, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None
        async for raw in process.stdout:
            self.lines.append(raw.decode(errors="replace").rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.returncode is None

    def lines_with(self, text: str) -> list[str]:
        return [line for line in self.lines if text in line]

    async def wait_for_line(self, text: str, timeout: float = 30) -> str:  # noqa: ASYNC109
        async with asyncio.timeout(timeout):
            while not self.lines_with(text):
                if not self.running:
                    raise AssertionError(f"exited without logging {text!r}:\n{self.output}")
                await asyncio.sleep(0.05)
        return self.lines_with(text)[0]

    async def exit_code(self, timeout: float = 30) -> int:  # noqa: ASYNC109
        """Waits for the process to end by itself; its exit code."""
        assert self._process is not None and self._reader is not None
        code = await asyncio.wait_for(self._process.wait(), timeout=timeout)
        await self._reader
        return code

    async def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 15) -> int:  # noqa: ASYNC109
        """Sends `sig` (SIGTERM, as `docker stop` does) and returns the exit code."""
        assert self._process is not None and self._reader is not None
        if self._process.returncode is None:
            self._process.send_signal(sig)
        code = await asyncio.wait_for(self._process.wait(), timeout=timeout)
        await self._reader
        return code
