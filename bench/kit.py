"""Adapters over the test kit's fakes: lean recording, request stamps, seeded interactions."""

from __future__ import annotations

import copy
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from tests.kit.fake_discord import (
    EPHEMERAL,
    CallbackRecord,
    FakeDiscord,
    FakeInteraction,
    FakeMessage,
    JSONObject,
    _interaction_token,
    _user,
)
from tests.kit.fake_relay import FakeRelay

# The flags a CHANNEL_MESSAGE_WITH_SOURCE callback may set (as in the fake's callback route).
_CALLBACK_FLAGS = EPHEMERAL


class StampedRelay(FakeRelay):
    """A FakeRelay that also keeps the arrival time and method of every request (cheaply)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.stamps: list[float] = []
        self.batch_sizes: list[tuple[float, int]] = []

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.stamps.append(time.monotonic())
        return await super()._handle(request)

    async def _answer_batch(self, task_ids: tuple[str, ...]) -> web.StreamResponse:
        self.batch_sizes.append((time.monotonic(), len(task_ids)))
        return await super()._answer_batch(task_ids)

    def requests_between(self, start: float, end: float) -> int:
        return sum(1 for at in self.stamps if start <= at < end)

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
        # Interaction id → (when its first callback request arrived, the status it got).
        self.callbacks: dict[int, tuple[float, int]] = {}
        self.keep_bodies = True

    def _kind(self, path: str) -> str:
        if path.startswith("/interactions/"):
            return "callback"
        if path.startswith("/webhooks/"):
            return "webhook"
        if path.startswith("/channels/"):
            return "channel"
        return "other"

    async def _handle_rest(self, request: web.Request) -> web.StreamResponse:
        response = await super()._handle_rest(request)
        record = self.requests[-1]
        kind = self._kind(record.path)
        self.counts[(record.method, kind, record.status)] += 1
        if kind == "callback":
            iid = int(record.path.split("/")[2])
            self.callbacks.setdefault(iid, (record.time, record.status))
        if not self.keep_bodies:
            self.requests.clear()
        return response

    def _edit_message(self, message: FakeMessage, body: JSONObject, *args: Any, **kw: Any) -> None:
        super()._edit_message(message, body, *args, **kw)
        self.edit_counts[message.id] += 1
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
        data = fake._command_data("suno", "status", {"task_id": task_id}, guild=True)
        iid = fake._ids.next()
        token = _interaction_token(iid)
        user = _user(user_id + index)
        payload = fake._interaction_payload(
            iid, token, 2, data, user=user, channel_id=fake.channel_id, guild=True, locale="en-US"
        )
        interaction = FakeInteraction(
            id=iid,
            token=token,
            type=2,
            channel_id=fake.channel_id,
            guild_id=fake.guild_id,
            user=user,
            payload=payload,
            message_id=None,
            changes=fake._changes,
        )
        fake.interactions[iid] = interaction
        fake._by_token[token] = interaction
        interaction.dispatched_at = time.monotonic()
        message = fake._create_message(
            copy.deepcopy(body),
            [],
            via="callback",
            channel_id=fake.channel_id,
            guild_id=fake.guild_id,
            mtype=20,
            flags_allowed=_CALLBACK_FLAGS,
            interaction=interaction,
            original=True,
            problem_prefix="data.",
        )
        interaction.callback = CallbackRecord(4, copy.deepcopy(body), 0.0)
        seeded.append(SeededWatch(payload, message.id))
    return seeded
