"""Adapters over the test kit's fakes: lean recording, request stamps, seeded interactions."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from aiohttp import web

from tests.kit.fake_discord import FakeDiscord, FakeMessage, JSONObject, RecordedRequest
from tests.kit.fake_relay import FakeRelay


class StampedRelay(FakeRelay):
    """A FakeRelay that also keeps the arrival time and method of every request (cheaply)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.stamps: list[float] = []
        self.batch_sizes: list[tuple[float, int]] = []
        # Task id → when the relay first answered for it after `watch_first_answers`.
        self.first_answers: dict[str, float] = {}
        self._awaited: set[str] = set()

    def watch_first_answers(self, task_ids: Iterable[str]) -> None:
        """From now on, note when each of these tasks is first answered for (again)."""
        for task_id in task_ids:
            self.first_answers.pop(task_id, None)
            self._awaited.add(task_id)

    def _answered(self, task_ids: Iterable[str]) -> None:
        if not self._awaited:
            return
        now = time.monotonic()
        for task_id in task_ids:
            if task_id in self._awaited:
                self._awaited.discard(task_id)
                self.first_answers[task_id] = now

    def request_received(self, request: web.Request) -> None:
        self.stamps.append(time.monotonic())
        if request.method == "GET" and self._awaited:
            self._answered((unquote(request.raw_path.split("?", 1)[0].rsplit("/", 1)[-1]),))

    def batch_requested(self, task_ids: tuple[str, ...]) -> None:
        self.batch_sizes.append((time.monotonic(), len(task_ids)))
        self._answered(task_ids)

    def rate(self, after: float, intervals: int, interval: float) -> tuple[float, int]:
        """Requests per interval over `intervals` intervals, counted from the first request
        at or after `after` to the first request `intervals` intervals later (or the last
        one seen), so a periodic stream is not counted once too often or too rarely at the
        edges. Also returns how many requests fell in that span."""
        stamps = sorted(at for at in self.stamps if at >= after)
        if len(stamps) < 2:
            return float(len(stamps)), len(stamps)
        start = stamps[0]
        wanted_end = start + intervals * interval
        end = next((at for at in stamps if at >= wanted_end), stamps[-1])
        count = sum(1 for at in stamps if start <= at < end)
        return count * interval / (end - start), count


class LeanFakeDiscord(FakeDiscord):
    """A FakeDiscord for long, busy runs: it forgets request records and edit bodies it no
    longer needs, keeping counters instead, so the fake neither grows nor slows down."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.counts: Counter[tuple[str, str, int]] = Counter()
        self.edit_counts: Counter[int] = Counter()
        # Message id → when its latest edit arrived.
        self.last_edit_at: dict[int, float] = {}
        # Interaction id → (when its first callback request arrived, the status it got).
        self.callbacks: dict[int, tuple[float, int]] = {}
        self.keep_bodies = True
        self.add_request_listener(self._count_request)
        self.add_edit_listener(self._count_edit)

    def _kind(self, path: str) -> str:
        if path.startswith("/interactions/"):
            return "callback"
        if path.startswith("/webhooks/"):
            return "webhook"
        if path.startswith("/channels/"):
            return "channel"
        return "other"

    def _count_request(self, record: RecordedRequest) -> None:
        kind = self._kind(record.path)
        self.counts[(record.method, kind, record.status)] += 1
        if kind == "callback":
            iid = int(record.path.split("/")[2])
            self.callbacks.setdefault(iid, (record.time, record.status))
        if not self.keep_bodies:
            self.requests.clear()

    def _count_edit(self, message: FakeMessage) -> None:
        self.edit_counts[message.id] += 1
        self.last_edit_at[message.id] = time.monotonic()
        if not self.keep_bodies:
            message.edits.clear()


@dataclass(frozen=True, slots=True)
class SeededWatch:
    """An interaction registered in the fake, already answered with its status message."""

    interaction: JSONObject  # the INTERACTION_CREATE payload the gateway would have carried
    message_id: int


def seed_status_messages(
    fake: FakeDiscord,
    task_ids: Sequence[str],
    body: JSONObject,
    *,
    user_id: int = 1_181_000_000_000_100_000,
) -> list[SeededWatch]:
    """For each task id: an interaction and its original message showing `body`.

    This is what the fake holds after a `/suno status` interaction was dispatched and
    answered with a type 4 callback, minus the gateway round trip; the bot under test
    gets the interaction payload directly and registers the watch itself.
    """
    seeded = []
    for index, task_id in enumerate(task_ids):
        interaction = fake.answered_interaction(
            body, options={"task_id": task_id}, user_id=user_id + index
        )
        message_id = interaction.original_message_id
        assert message_id is not None
        seeded.append(SeededWatch(interaction.payload, message_id))
    return seeded
