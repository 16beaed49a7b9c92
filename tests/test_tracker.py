"""The tracker driven by a real relay client against a fake relay on 127.0.0.1, with a real
SQLite store and an editor that records every edit."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import logging
import math
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from pydantic import SecretStr

from bot.app import StatusPresenter
from bot.i18n import default_catalog
from bot.keys import KeyedRelay, MemberKeys
from bot.render import Notice, RenderedMessage, render_error
from bot.suno.client import RelayClient
from bot.suno.models import Task, task_from, task_from_data
from bot.tracking.editor import EditResult
from bot.tracking.policy import BATCH_REPROBE_SECONDS, PollPolicy
from bot.tracking.poller import TaskSource
from bot.tracking.store import NewWatch, SqliteWatchStore, StoreError, Watch, WatchOutcome
from bot.tracking.tracker import Presenter, Tracker
from bot.tracking.updater import FinalEditObserver
from tests.kit.cards import card_text, components_of, link_buttons
from tests.kit.fake_relay import NOT_FOUND_BODY, FakeRelay, RecordedRelayRequest, RelayReply
from tests.kit.payloads import (
    ClipFamily,
    Payload,
    clip,
    clip_ids_for,
    envelope,
    failure_timeline,
    music_timeline,
    task_payload,
)
from tests.kit.recording_editor import RecordedEdit, RecordingEditor

KEY = "sk-tracker-test-5Fq8Lw2Zr7Nc"
INTERVAL = 0.05
WATCH_TIMEOUT = 1800.0
APPLICATION_ID = 1_180_000_000_000_000_001
GUILD_ID = 1_180_000_000_000_000_002
CHANNEL_ID = 1_180_000_000_000_000_003
FIRST_MESSAGE_ID = 1_180_000_000_000_100_000
LOCALE = "en-US"
# Timer granularity allowance when a request time is compared with the delay that scheduled it.
EPS = 0.01
WAIT = 10.0


# --- helpers --------------------------------------------------------------------------------------


async def until(predicate: Callable[[], bool], what: str, *, within: float = WAIT) -> None:
    """Wait until `predicate()` holds, checking every 10 ms; fail after `within` seconds."""
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


async def settle(intervals: int = 5) -> None:
    """Let a few poll intervals pass, for checks that something does not happen."""
    await asyncio.sleep(INTERVAL * intervals)


PRESENTER = StatusPresenter(WATCH_TIMEOUT)


def render(task: Task, *, locale: str = LOCALE, notice: Notice | None = None) -> RenderedMessage:
    """The message a watch of `task` shows, as the bot's presenter renders it."""
    return PRESENTER.task(task, locale=locale, notice=notice)


def shown_text(message: RenderedMessage) -> str:
    """The text a rendered card shows."""
    return card_text(components_of(message))


def notice_text(notice: Notice) -> str:
    catalog = default_catalog()
    if notice is Notice.AUTO_REFRESH_STOPPED:
        minutes = round(WATCH_TIMEOUT / 60)
        return catalog.text(LOCALE, "notice.auto_refresh_stopped", minutes=minutes)
    return catalog.text(LOCALE, f"notice.{notice.value}")


def streaming_clips(task_id: str, family: ClipFamily = "nested") -> list[Payload]:
    ids = clip_ids_for(task_id)
    return [
        clip(family, clip_id, "streaming", task_id=task_id, index=index + 1)
        for index, clip_id in enumerate(ids)
    ]


def progress_timeline(task_id: str, percents: Sequence[int]) -> list[Payload]:
    """IN_PROGRESS answers that each look different (the progress bar moves)."""
    clips = streaming_clips(task_id)
    return [task_payload(task_id, "IN_PROGRESS", f"{percent}%", clips) for percent in percents]


def success(task_id: str) -> Payload:
    return music_timeline(task_id)[-1]


def in_order(shown: Sequence[str], expected: Sequence[str]) -> bool:
    """Whether `shown` is `expected` with some states left out, none repeated or reordered."""
    remaining = iter(expected)
    return all(any(item == candidate for candidate in remaining) for item in shown)


def gaps(requests: Sequence[RecordedRelayRequest]) -> list[float]:
    return [later.at - earlier.at for earlier, later in itertools.pairwise(requests)]


@dataclass(frozen=True, slots=True)
class Row:
    outcome: WatchOutcome
    token: str | None
    fingerprint: str | None


@dataclass
class Rig:
    """A fake relay, a store file and a recording editor; makes trackers and watches on them."""

    relay: FakeRelay
    store: SqliteWatchStore
    db_path: Path
    session: aiohttp.ClientSession
    editor: RecordingEditor = field(default_factory=RecordingEditor)
    trackers: list[Tracker] = field(default_factory=list)
    channel_ok: Callable[[Watch], bool] = field(default=lambda watch: True)
    serial: int = 0

    def client(self, *, timeout: float = 2.0) -> RelayClient:
        return RelayClient(self.session, self.relay.base_url, SecretStr(KEY), timeout=timeout)

    def source(self, *, timeout: float = 2.0) -> TaskSource:
        """The relay as the bot's tracker polls it (every watch here uses the operator's key)."""
        return KeyedRelay(self.client(timeout=timeout), MemberKeys(self.store, None))

    def tracker(
        self,
        *,
        source: TaskSource | None = None,
        poll_interval: float = INTERVAL,
        batch_reprobe: float = BATCH_REPROBE_SECONDS,
        batch_size: int = 100,
        token_margin: float = 0.0,
        start: bool = True,
        presenter: Presenter = PRESENTER,
        observer: FinalEditObserver | None = None,
    ) -> Tracker:
        tracker = Tracker(
            source=source or self.source(),
            store=self.store,
            editor=self.editor,
            presenter=presenter,
            policy=PollPolicy(poll_interval, batch_reprobe=batch_reprobe),
            batch_size=batch_size,
            token_margin=token_margin,
            can_edit_channel=lambda watch: self.channel_ok(watch),
            observer=observer,
        )
        self.trackers.append(tracker)
        if start:
            tracker.start()
        return tracker

    async def stored_watch(
        self,
        task_id: str,
        *,
        token_in: float = 900.0,
        deadline_in: float = WATCH_TIMEOUT,
        with_message: bool = True,
        fingerprint: str | None = None,
        locale: str = LOCALE,
    ) -> Watch:
        """A watch recorded as the command records it: token, message id, what it shows."""
        self.serial += 1
        now = datetime.now(UTC)
        watch = await self.store.add(
            NewWatch(
                task_id=task_id,
                application_id=APPLICATION_ID,
                guild_id=GUILD_ID,
                channel_id=CHANNEL_ID,
                requester_id=1_000 + self.serial,
                locale=locale,
                ephemeral=False,
                interaction_id=2_000 + self.serial,
                interaction_token=f"interaction-token-{self.serial}",
                token_expires_at=now + timedelta(seconds=token_in),
                deadline_at=now + timedelta(seconds=deadline_in),
            )
        )
        message_id = FIRST_MESSAGE_ID + self.serial if with_message else None
        if message_id is not None:
            await self.store.set_message_id(watch.id, message_id)
        if fingerprint is not None:
            await self.store.set_fingerprint(watch.id, fingerprint)
        return dataclasses.replace(watch, message_id=message_id, last_fingerprint=fingerprint)

    async def first_answer(self, task_id: str) -> Task:
        """What the command fetched before handing the watch over (one relay read)."""
        return await self.client().fetch(task_id)

    async def watch(
        self,
        tracker: Tracker,
        task_id: str,
        *,
        task: Task | None = None,
        locale: str = LOCALE,
        **options: Any,
    ) -> Watch:
        """A stored watch handed to the tracker; with `task`, its message already shows it."""
        fingerprint = None
        if task is not None:
            fingerprint = render(task, locale=locale).fingerprint
        watch = await self.stored_watch(task_id, fingerprint=fingerprint, locale=locale, **options)
        tracker.add(watch, task=task)
        return watch

    def edits(self, watch: Watch) -> list[RecordedEdit]:
        """Every edit made to this watch's message, through either route."""
        return [
            edit
            for edit in self.editor.edits
            if (edit.path == "original" and edit.token == watch.interaction_token)
            or (edit.path == "channel" and edit.message_id == watch.message_id)
        ]

    def shown(self, watch: Watch) -> list[str]:
        """Fingerprints of the edits that landed on this watch's message, in order."""
        return [edit.fingerprint for edit in self.edits(watch) if edit.landed]

    def row(self, watch_id: int) -> Row:
        connection = sqlite3.connect(self.db_path)
        try:
            found = connection.execute(
                "SELECT outcome, interaction_token, last_fingerprint FROM watches WHERE id = ?",
                (watch_id,),
            ).fetchone()
        finally:
            connection.close()
        assert found is not None, f"no watch {watch_id} in the store"
        return Row(WatchOutcome(found[0]), found[1], found[2])

    def ended(self, *watches: Watch) -> Callable[[], bool]:
        return lambda: all(self.row(w.id).outcome is not WatchOutcome.ACTIVE for w in watches)

    def requests(self, method: str | None = None) -> list[RecordedRelayRequest]:
        return [r for r in self.relay.requests if method is None or r.method == method]

    def requests_for(self, task_id: str) -> list[RecordedRelayRequest]:
        return [r for r in self.relay.requests if task_id in r.task_ids]


def fingerprints(payloads: Sequence[Payload]) -> list[str]:
    return [rendered(payload).fingerprint for payload in payloads]


def rendered(payload: Payload, notice: Notice | None = None) -> RenderedMessage:
    return render(task_from_data(payload), locale=LOCALE, notice=notice)


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    db_path = tmp_path / "watches.sqlite3"
    store = await SqliteWatchStore.open(db_path)
    async with FakeRelay(api_key=KEY) as relay, aiohttp.ClientSession() as session:
        made = Rig(relay=relay, store=store, db_path=db_path, session=session)
        try:
            yield made
        finally:
            for tracker in made.trackers:
                await tracker.close()
    await store.close()


# --- shared polling and change-only edits ------------------------------------------------------


@pytest.mark.parametrize("watchers", [1, 5, 50])
async def test_watchers_of_one_task_share_a_single_relay_poll_per_interval(
    rig: Rig, watchers: int
) -> None:
    task_id = "task-shared"
    timeline = music_timeline(task_id)
    rig.relay.add_task(task_id, timeline)
    tracker = rig.tracker(start=False)
    task = await rig.first_answer(task_id)
    fingerprint = render(task, locale=LOCALE).fingerprint
    watches = [await rig.stored_watch(task_id, fingerprint=fingerprint) for _ in range(watchers)]
    for watch in watches:
        tracker.add(watch, task=task)
    tracker.start()

    await until(rig.ended(*watches), "every watch to finish")

    # Each read moves the relay's script one step and the last step ends the task: watchers
    # polling for themselves would have asked more often than the script has steps.
    polls = rig.requests_for(task_id)[1:]
    assert len(polls) == len(timeline) - 1
    expected = fingerprints(timeline[1:])
    for watch in watches:
        # A busy machine may let a state pass while fifty edits queue: the newest one wins.
        shown = rig.shown(watch)
        assert in_order(shown, expected)
        assert shown[-1] == expected[-1]
        assert rig.row(watch.id) == Row(WatchOutcome.FINISHED, None, expected[-1])


async def test_message_is_edited_only_when_what_it_shows_changes(rig: Rig) -> None:
    task_id = "task-repeats"
    steps = music_timeline(task_id)
    not_start, submitted, _, in_progress, done = steps
    timeline = [not_start, submitted, *[in_progress] * 10, done]
    rig.relay.add_task(task_id, timeline)
    tracker = rig.tracker()
    watch = await rig.watch(tracker, task_id)

    await until(rig.ended(watch), "the watch to finish")

    assert rig.relay.fetch_count(task_id) == len(timeline)
    assert rig.shown(watch) == fingerprints([not_start, submitted, in_progress, done])
    assert len(rig.edits(watch)) == 4


@pytest.mark.parametrize("family", ["nested", "flat", "hybrid"])
async def test_music_timeline_ends_on_success_then_finishes_the_watch_and_stops_polling(
    rig: Rig, family: ClipFamily
) -> None:
    task_id = f"task-{family}"
    timeline = music_timeline(task_id, family)
    rig.relay.add_task(task_id, timeline)
    tracker = rig.tracker()
    watch = await rig.watch(tracker, task_id, task=await rig.first_answer(task_id))

    await until(rig.ended(watch), "the watch to finish")

    final = rendered(timeline[-1])
    assert link_buttons(components_of(final)), "the success rendering carries the song links"
    assert rig.shown(watch) == fingerprints(timeline[1:])
    assert rig.row(watch.id) == Row(WatchOutcome.FINISHED, None, final.fingerprint)
    assert tracker.stats().tasks == 0
    polled = rig.relay.request_count(task_id)
    await settle()
    assert rig.relay.request_count(task_id) == polled == len(timeline)
    assert len(rig.editor.edits) == len(timeline) - 1


async def test_failure_timeline_ends_on_the_failure_rendering_and_finishes_the_watch(
    rig: Rig,
) -> None:
    task_id = "task-fails"
    timeline = failure_timeline(task_id, "flat")
    rig.relay.add_task(task_id, timeline)
    tracker = rig.tracker()
    watch = await rig.watch(tracker, task_id, task=await rig.first_answer(task_id))

    await until(rig.ended(watch), "the watch to finish")

    failed = rendered(timeline[-1])
    assert "moderation" in shown_text(failed)
    assert rig.shown(watch) == fingerprints(timeline[1:])
    assert rig.row(watch.id) == Row(WatchOutcome.FINISHED, None, failed.fingerprint)
    await settle()
    assert rig.relay.request_count(task_id) == len(timeline)


async def test_no_poll_while_the_last_edit_of_a_finished_task_is_still_in_flight(
    rig: Rig,
) -> None:
    task_id = "task-slow-last-edit"
    rig.relay.add_task(task_id, [progress_timeline(task_id, [10])[0], success(task_id)])
    rig.editor.gate = asyncio.Event()
    tracker = rig.tracker()
    watch = await rig.watch(tracker, task_id, task=await rig.first_answer(task_id))

    await until(lambda: rig.editor.calls_started == 1, "the final edit to start")
    await settle()
    assert rig.relay.request_count(task_id) == 2

    rig.editor.gate.set()
    await until(rig.ended(watch), "the watch to finish")
    assert rig.row(watch.id).outcome is WatchOutcome.FINISHED
    assert rig.relay.request_count(task_id) == 2


async def test_slow_editor_sends_only_the_newest_state_and_never_an_older_one(rig: Rig) -> None:
    task_id = "task-latest-wins"
    timeline = [*progress_timeline(task_id, range(10, 80, 10)), success(task_id)]
    rig.relay.add_task(task_id, timeline)
    rig.editor.gate = asyncio.Event()
    tracker = rig.tracker()
    watch = await rig.watch(tracker, task_id, task=await rig.first_answer(task_id))

    await until(lambda: rig.editor.calls_started == 1, "the first edit to start")
    await until(
        lambda: rig.relay.step_index(task_id) >= len(timeline), "the relay to reach success"
    )
    rig.editor.gate.set()
    await until(rig.ended(watch), "the watch to finish")

    expected = fingerprints(timeline)
    assert rig.shown(watch) == [expected[1], expected[-1]]


# --- batch polling --------------------------------------------------------------------------------


def polling_rounds(requests: Sequence[RecordedRelayRequest]) -> list[list[tuple[str, ...]]]:
    """Requests split into rounds: a round ends where a task is asked for a second time."""
    rounds: list[list[tuple[str, ...]]] = []
    seen: set[str] = set()
    for request in requests:
        if not rounds or seen & set(request.task_ids):
            rounds.append([])
            seen = set()
        rounds[-1].append(request.task_ids)
        seen.update(request.task_ids)
    return rounds


async def test_seven_tasks_watched_from_different_moments_share_three_posts_per_interval(
    rig: Rig,
) -> None:
    task_ids = [f"task-batch-{n}" for n in range(7)]
    for task_id in task_ids:
        rig.relay.add_task(task_id, progress_timeline(task_id, [20]))
    tracker = rig.tracker(batch_size=3)
    watches = [await rig.stored_watch(task_id) for task_id in task_ids]
    for watch in watches:
        # Commands arrive at any moment: each task starts on a schedule of its own.
        tracker.add(watch, task=None)
        await asyncio.sleep(INTERVAL / len(task_ids))

    every_task_added = len(rig.relay.requests)
    batches = math.ceil(len(task_ids) / 3)

    def posts() -> list[RecordedRelayRequest]:
        return rig.relay.requests[every_task_added:]

    await until(lambda: len(posts()) >= 6 * batches, "six rounds of batches")
    await tracker.close()

    assert [request.method for request in posts()] == ["POST"] * len(posts())
    # The schedules merge within two rounds; the last round may have been cut by close().
    steady = polling_rounds(posts())[2:-1]
    assert len(steady) >= 2
    for number, batch_round in enumerate(steady):
        polled = sorted(task_id for batch in batch_round for task_id in batch)
        assert (len(batch_round), polled) == (batches, sorted(task_ids)), f"round {number}"
    assert tracker.stats().batch_mode is True
    for watch in watches:
        assert len(rig.shown(watch)) == 1


async def test_single_watched_task_is_polled_with_a_plain_get(rig: Rig) -> None:
    task_id = "task-alone"
    rig.relay.add_task(task_id, music_timeline(task_id))
    tracker = rig.tracker(batch_size=3)
    watch = await rig.watch(tracker, task_id)

    await until(rig.ended(watch), "the watch to finish")

    assert rig.requests("POST") == []
    assert [r.task_ids for r in rig.requests("GET")] == [(task_id,)] * 5
    assert tracker.stats().batch_mode is None


async def test_relay_without_batch_is_polled_task_by_task_after_one_failed_post(
    rig: Rig,
) -> None:
    rig.relay.batch_supported = False
    task_ids = [f"task-nobatch-{n}" for n in range(3)]
    timelines = {task_id: music_timeline(task_id) for task_id in task_ids}
    for task_id, timeline in timelines.items():
        rig.relay.add_task(task_id, timeline)
    tracker = rig.tracker(start=False)
    watches = [await rig.stored_watch(task_id) for task_id in task_ids]
    for watch in watches:
        tracker.add(watch, task=None)
    tracker.start()

    await until(rig.ended(*watches), "every watch to finish")

    posts = rig.requests("POST")
    assert len(posts) == 1
    assert rig.relay.requests[0] is posts[0]
    assert tracker.stats().batch_mode is False
    for watch in watches:
        assert rig.shown(watch) == fingerprints(timelines[watch.task_id])
        assert rig.row(watch.id).outcome is WatchOutcome.FINISHED


async def test_relay_without_batch_is_asked_again_later_and_batches_once_it_has_one(
    rig: Rig,
) -> None:
    rig.relay.batch_supported = False
    task_ids = [f"task-reprobe-{n}" for n in range(3)]
    for task_id in task_ids:
        rig.relay.add_task(task_id, progress_timeline(task_id, range(1, 99)))
    tracker = rig.tracker(start=False, batch_reprobe=INTERVAL * 6)
    for task_id in task_ids:
        await rig.watch(tracker, task_id)
    tracker.start()

    await until(lambda: tracker.stats().batch_mode is False, "the relay to refuse a batch")
    rig.relay.batch_supported = True
    await until(lambda: tracker.stats().batch_mode is True, "the batch endpoint to be asked again")
    batched_from = len(rig.relay.requests)
    await settle(10)
    await tracker.close()

    posts = rig.requests("POST")
    assert len(posts) >= 3  # the refused one, the probe that found it, and batches since
    later = rig.relay.requests[batched_from:]
    assert later and all(request.method == "POST" for request in later)
    assert all(set(request.task_ids) == set(task_ids) for request in later)


async def test_task_left_out_of_a_batch_is_rechecked_with_one_get_before_it_is_shown(
    rig: Rig,
) -> None:
    rig.relay.batch_cap = 2
    task_ids = [f"task-capped-{n}" for n in range(3)]
    timelines = {task_id: music_timeline(task_id) for task_id in task_ids}
    for task_id, timeline in timelines.items():
        rig.relay.add_task(task_id, timeline)
    tracker = rig.tracker(batch_size=3, start=False)
    watches = [await rig.stored_watch(task_id) for task_id in task_ids]
    for watch in watches:
        tracker.add(watch, task=None)
    tracker.start()

    await until(rig.ended(*watches), "every watch to finish")

    requests = rig.relay.requests
    assert requests[0].method == "POST"
    for index, request in enumerate(requests):
        if request.method != "POST" or len(request.task_ids) < 3:
            continue
        left_out = request.task_ids[2]
        # The relay answered for the first two only; the third is asked for on its own.
        follow_up = next(r for r in requests[index + 1 :] if left_out in r.task_ids)
        assert (follow_up.method, follow_up.task_ids) == ("GET", (left_out,))
    for watch in watches:
        assert rig.shown(watch) == fingerprints(timelines[watch.task_id])
        assert rig.row(watch.id).outcome is WatchOutcome.FINISHED
    assert tracker.stats().batch_mode is True


async def test_id_unknown_to_the_relay_in_a_batch_ends_as_not_found_while_others_go_on(
    rig: Rig,
) -> None:
    known = ["task-known-0", "task-known-1"]
    for task_id in known:
        rig.relay.add_task(task_id, music_timeline(task_id))
    tracker = rig.tracker(start=False)
    watches = [await rig.stored_watch(task_id) for task_id in [*known, "task-unknown"]]
    for watch in watches:
        tracker.add(watch, task=None)
    tracker.start()

    await until(rig.ended(*watches), "every watch to end")

    *found, lost = watches
    for watch in found:
        assert rig.shown(watch)[-1] == rendered(success(watch.task_id)).fingerprint
    not_found = render_error("error.task_not_found", locale=LOCALE).fingerprint
    assert rig.shown(lost) == [not_found]
    assert rig.row(lost.id).outcome is WatchOutcome.FINISHED
    singles = [r for r in rig.requests_for("task-unknown") if r.method == "GET"]
    assert len(singles) == 3


# --- relay failures -------------------------------------------------------------------------------

TRANSIENT_FAILURES = {
    "500 json": RelayReply(500, {"error": {"message": "upstream error"}}),
    "503 retry-after": RelayReply(503, {"message": "overloaded"}, headers={"Retry-After": "0"}),
    "502 html": RelayReply(
        502, "<html><body><h1>502 Bad Gateway</h1></body></html>", content_type="text/html"
    ),
    "200 html": RelayReply(
        200, "<!doctype html><title>maintenance</title>", content_type="text/html"
    ),
    "timeout": RelayReply(200, envelope(None), delay=5.0),
}


@pytest.mark.parametrize("failure", list(TRANSIENT_FAILURES), ids=list(TRANSIENT_FAILURES))
async def test_transient_relay_failures_back_off_show_retrying_and_recover(
    rig: Rig, failure: str
) -> None:
    task_id = "task-flaky"
    timeline = [*progress_timeline(task_id, [10, 40]), success(task_id)]
    rig.relay.add_task(task_id, timeline)
    tracker = rig.tracker(source=rig.source(timeout=0.2) if failure == "timeout" else None)
    watch = await rig.watch(tracker, task_id, task=await rig.first_answer(task_id))
    rig.relay.fail_next(2, TRANSIENT_FAILURES[failure])

    await until(rig.ended(watch), "the watch to finish")

    failed, recovered = rig.relay.requests[1:3], rig.relay.requests[3]
    # Exponential backoff: each wait at least doubles, starting at twice the interval.
    for number, gap in enumerate(gaps([*failed, recovered]), start=1):
        assert gap >= INTERVAL * 2**number - EPS
    retrying = rendered(timeline[0], Notice.RELAY_RETRYING)
    assert notice_text(Notice.RELAY_RETRYING) in shown_text(retrying)
    assert rig.shown(watch) == [retrying.fingerprint, *fingerprints(timeline[1:])]
    notice_edit = rig.edits(watch)[0]
    assert len([r for r in rig.relay.requests[1:] if r.at < notice_edit.mono]) >= 2
    assert rig.row(watch.id).outcome is WatchOutcome.FINISHED


async def test_one_failed_poll_shows_no_notice(rig: Rig) -> None:
    task_id = "task-one-failure"
    timeline = [*progress_timeline(task_id, [10, 40]), success(task_id)]
    rig.relay.add_task(task_id, timeline)
    tracker = rig.tracker()
    watch = await rig.watch(tracker, task_id, task=await rig.first_answer(task_id))
    rig.relay.fail_next(1, TRANSIENT_FAILURES["500 json"])

    await until(rig.ended(watch), "the watch to finish")

    assert rig.shown(watch) == fingerprints(timeline[1:])


async def test_retry_after_is_honoured_before_the_next_poll(rig: Rig) -> None:
    task_id = "task-retry-after"
    timeline = [*progress_timeline(task_id, [10, 40]), success(task_id)]
    rig.relay.add_task(task_id, timeline)
    tracker = rig.tracker()
    watch = await rig.watch(tracker, task_id, task=await rig.first_answer(task_id))
    retry_after = 0.5
    rig.relay.fail_next(
        1, RelayReply(503, {"message": "slow down"}, headers={"Retry-After": str(retry_after)})
    )

    await until(rig.ended(watch), "the watch to finish")

    refused, next_poll = rig.relay.requests[1:3]
    assert refused.status == 503
    # Ten intervals fit in the wait the relay asked for; not one poll was made during it.
    assert next_poll.at - refused.at >= retry_after - EPS
    assert rig.shown(watch) == fingerprints(timeline[1:])


async def test_failed_batch_backs_off_every_task_in_it_and_all_recover(rig: Rig) -> None:
    task_ids = ["task-batch-flaky-0", "task-batch-flaky-1"]
    timelines = {t: [*progress_timeline(t, [10, 40]), success(t)] for t in task_ids}
    for task_id, timeline in timelines.items():
        rig.relay.add_task(task_id, timeline)
    tracker = rig.tracker(start=False)
    watches = []
    for task_id in task_ids:
        watches.append(await rig.watch(tracker, task_id, task=await rig.first_answer(task_id)))
    rig.relay.fail_next(2, TRANSIENT_FAILURES["500 json"])
    tracker.start()

    await until(rig.ended(*watches), "every watch to finish")

    posts = rig.requests("POST")
    assert [post.status for post in posts[:2]] == [500, 500]
    assert posts[1].at - posts[0].at >= 2 * INTERVAL - EPS
    for watch in watches:
        timeline = timelines[watch.task_id]
        retrying = rendered(timeline[0], Notice.RELAY_RETRYING).fingerprint
        assert rig.shown(watch) == [retrying, *fingerprints(timeline[1:])]


async def test_task_the_relay_forgets_mid_watch_ends_with_the_not_found_message(
    rig: Rig,
) -> None:
    task_id = "task-forgotten"
    timeline = progress_timeline(task_id, [10, 40])
    rig.relay.add_task(task_id, timeline)
    tracker = rig.tracker()
    watch = await rig.watch(tracker, task_id, task=await rig.first_answer(task_id))
    await until(lambda: len(rig.shown(watch)) == 1, "the first edit")
    rig.relay.remove_task(task_id)
    asked = rig.relay.request_count(task_id)

    await until(rig.ended(watch), "the watch to end")

    not_found = render_error("error.task_not_found", locale=LOCALE)
    assert "No task with that id" in shown_text(not_found)
    assert rig.shown(watch)[-1] == not_found.fingerprint
    assert rig.row(watch.id) == Row(WatchOutcome.FINISHED, None, not_found.fingerprint)
    assert tracker.stats().tasks == 0
    await settle()
    assert rig.relay.request_count(task_id) == asked + 3


async def test_task_missing_twice_then_back_is_watched_to_the_end(rig: Rig) -> None:
    task_id = "task-hiccup"
    missing = RelayReply(400, NOT_FOUND_BODY)
    first, later = progress_timeline(task_id, [10, 40])
    timeline: list[Payload | RelayReply] = [first, missing, missing, later, success(task_id)]
    rig.relay.add_task(task_id, timeline)
    tracker = rig.tracker()
    watch = await rig.watch(tracker, task_id, task=await rig.first_answer(task_id))

    await until(rig.ended(watch), "the watch to finish")

    assert rig.shown(watch)[-2:] == fingerprints([later, success(task_id)])
    assert rig.row(watch.id).outcome is WatchOutcome.FINISHED
    # "Not found" is not "unreachable": the message never claimed the relay was down.
    retrying = rendered(first, Notice.RELAY_RETRYING).fingerprint
    assert retrying not in rig.shown(watch)


# --- watch timeout --------------------------------------------------------------------------------


async def test_watch_past_its_deadline_says_auto_refresh_stopped_and_is_never_polled(
    rig: Rig,
) -> None:
    task_id = "task-overdue"
    rig.relay.add_task(task_id, progress_timeline(task_id, [10, 40]))
    tracker = rig.tracker()
    task = await rig.first_answer(task_id)
    watch = await rig.watch(tracker, task_id, task=task, deadline_in=-1.0)

    await until(rig.ended(watch), "the watch to end")

    stopped = render(task, locale=LOCALE, notice=Notice.AUTO_REFRESH_STOPPED)
    assert notice_text(Notice.AUTO_REFRESH_STOPPED) in shown_text(stopped)
    assert rig.shown(watch) == [stopped.fingerprint]
    assert rig.row(watch.id) == Row(WatchOutcome.TIMED_OUT, None, stopped.fingerprint)
    await settle()
    assert rig.relay.request_count(task_id) == 1


async def test_watch_reaching_its_deadline_mid_watch_stops_with_a_last_edit(rig: Rig) -> None:
    task_id = "task-deadline"
    timeline = progress_timeline(task_id, [10, 40])
    rig.relay.add_task(task_id, timeline)
    tracker = rig.tracker()
    watch = await rig.watch(tracker, task_id, task=await rig.first_answer(task_id), deadline_in=0.3)

    await until(rig.ended(watch), "the watch to time out")

    stopped = rendered(timeline[1], Notice.AUTO_REFRESH_STOPPED)
    assert rig.shown(watch) == [rendered(timeline[1]).fingerprint, stopped.fingerprint]
    assert rig.row(watch.id).outcome is WatchOutcome.TIMED_OUT
    assert tracker.stats().tasks == 0
    polled = rig.relay.request_count(task_id)
    await settle()
    assert rig.relay.request_count(task_id) == polled


# --- interaction token and channel route -------------------------------------------------------


async def test_edits_go_through_the_token_until_the_margin_then_through_the_channel(
    rig: Rig,
) -> None:
    task_id = "task-token-switch"
    rig.relay.add_task(task_id, progress_timeline(task_id, range(1, 99)))
    tracker = rig.tracker(token_margin=0.3)
    watch = await rig.watch(tracker, task_id, token_in=0.8)
    switch_at = watch.token_expires_at.timestamp() - 0.3

    await until(
        lambda: sum(edit.path == "channel" for edit in rig.edits(watch)) >= 3,
        "edits through the channel",
    )
    await tracker.close()

    edits = rig.edits(watch)
    paths = [edit.path for edit in edits]
    first_channel = paths.index("channel")
    assert first_channel > 0
    assert set(paths[first_channel:]) == {"channel"}
    for edit in edits[:first_channel]:
        assert edit.application_id == APPLICATION_ID
        assert edit.at < watch.token_expires_at.timestamp()
    for edit in edits[first_channel:]:
        assert (edit.channel_id, edit.message_id) == (CHANNEL_ID, watch.message_id)
        assert edit.at >= switch_at
    assert all(edit.landed for edit in edits)


async def test_dead_token_switches_to_the_channel_at_once_and_is_never_used_again(
    rig: Rig,
) -> None:
    task_id = "task-token-dead"
    rig.relay.add_task(task_id, progress_timeline(task_id, range(1, 99)))
    tracker = rig.tracker()
    watch = await rig.watch(tracker, task_id)
    assert watch.interaction_token is not None
    rig.editor.answer(EditResult.TOKEN_DEAD, token=watch.interaction_token)

    await until(lambda: len(rig.shown(watch)) >= 4, "several edits")
    await tracker.close()

    dead, *rest = rig.edits(watch)
    assert (dead.path, dead.result) == ("original", EditResult.TOKEN_DEAD)
    # The same content goes out again at once, through the channel.
    assert rest[0].path == "channel"
    assert rest[0].fingerprint == dead.fingerprint
    assert all(edit.path == "channel" and edit.landed for edit in rest)


@pytest.mark.parametrize("route", ["channel not editable", "no message id"])
async def test_without_a_channel_route_the_last_token_edit_says_live_updates_ended(
    rig: Rig, route: str
) -> None:
    task_id = "task-token-only"
    rig.relay.add_task(task_id, progress_timeline(task_id, range(1, 99)))
    if route == "channel not editable":
        rig.channel_ok = lambda watch: False
    tracker = rig.tracker(token_margin=1.0)
    watch = await rig.watch(tracker, task_id, token_in=1.4, with_message=route != "no message id")

    await until(rig.ended(watch), "the watch to end")

    edits = rig.edits(watch)
    assert len(edits) >= 2
    assert all(edit.path == "original" and edit.landed for edit in edits)
    last = edits[-1]
    assert notice_text(Notice.LIVE_UPDATES_ENDED) in shown_text(last.message)
    assert last.at < watch.token_expires_at.timestamp()
    assert rig.row(watch.id).outcome is WatchOutcome.LOST
    assert tracker.stats().tasks == 0
    polled, edited = rig.relay.request_count(task_id), len(rig.editor.edits)
    await settle()
    assert (rig.relay.request_count(task_id), len(rig.editor.edits)) == (polled, edited)


@pytest.mark.parametrize("stage", ["while running", "on the final edit"])
async def test_channel_refused_while_the_token_lives_the_token_makes_the_last_edit(
    rig: Rig, stage: str
) -> None:
    task_id = f"task-channel-refused-{stage.replace(' ', '-')}"
    timeline = (
        progress_timeline(task_id, range(1, 99))
        if stage == "while running"
        else [*progress_timeline(task_id, [10]), success(task_id)]
    )
    rig.relay.add_task(task_id, timeline)
    tracker = rig.tracker(start=False, token_margin=30.0)
    watch = await rig.watch(tracker, task_id, token_in=20.0)
    final = rendered(success(task_id)).fingerprint
    refused_only = None if stage == "while running" else final
    rig.editor.answer(EditResult.GONE, message_id=watch.message_id, fingerprint=refused_only)
    tracker.start()

    await until(rig.ended(watch), "the watch to end")

    edits = rig.edits(watch)
    refused = [edit for edit in edits if edit.result is EditResult.GONE]
    assert len(refused) == 1 and refused[0].path == "channel"
    last = edits[-1]
    assert (last.path, last.result) == ("original", EditResult.OK)
    assert last.at < watch.token_expires_at.timestamp()
    if stage == "while running":
        assert notice_text(Notice.LIVE_UPDATES_ENDED) in shown_text(last.message)
        assert rig.row(watch.id).outcome is WatchOutcome.LOST
    else:
        assert last.fingerprint == final
        assert rig.row(watch.id).outcome is WatchOutcome.FINISHED
    polled = rig.relay.request_count(task_id)
    await settle()
    assert rig.relay.request_count(task_id) == polled


async def test_channel_refused_after_the_token_expired_ends_the_watch_quietly(rig: Rig) -> None:
    task_id = "task-channel-refused-late"
    rig.relay.add_task(task_id, progress_timeline(task_id, range(1, 99)))
    tracker = rig.tracker(start=False)
    watch = await rig.watch(tracker, task_id, token_in=-1.0)
    rig.editor.answer(EditResult.GONE, message_id=watch.message_id)
    tracker.start()

    await until(rig.ended(watch), "the watch to end")

    assert [edit.path for edit in rig.edits(watch)] == ["channel"]
    assert rig.row(watch.id).outcome is WatchOutcome.LOST


# --- editor answers -------------------------------------------------------------------------------


async def test_gone_message_ends_its_watch_quietly_while_the_other_watcher_finishes(
    rig: Rig,
) -> None:
    task_id = "task-one-deleted"
    timeline = music_timeline(task_id)
    rig.relay.add_task(task_id, timeline)
    tracker = rig.tracker(start=False)
    task = await rig.first_answer(task_id)
    deleted = await rig.watch(tracker, task_id, task=task)
    kept = await rig.watch(tracker, task_id, task=task)
    assert deleted.interaction_token is not None
    rig.editor.answer(EditResult.GONE, token=deleted.interaction_token)
    tracker.start()

    await until(rig.ended(deleted, kept), "both watches to end")

    assert [edit.result for edit in rig.edits(deleted)] == [EditResult.GONE]
    assert rig.row(deleted.id).outcome is WatchOutcome.LOST
    assert rig.shown(kept) == fingerprints(timeline[1:])
    assert rig.row(kept.id).outcome is WatchOutcome.FINISHED


async def test_edit_answered_retry_is_sent_again_later_and_lands(rig: Rig) -> None:
    task_id = "task-edit-retry"
    timeline = progress_timeline(task_id, [10, 40])
    rig.relay.add_task(task_id, timeline)
    tracker = rig.tracker()
    watch = await rig.watch(tracker, task_id, task=await rig.first_answer(task_id))
    assert watch.interaction_token is not None
    rig.editor.answer(EditResult.RETRY, token=watch.interaction_token, times=2)

    await until(lambda: len(rig.shown(watch)) == 1, "the edit to land")

    latest = rendered(timeline[1]).fingerprint
    edits = rig.edits(watch)
    assert [edit.result for edit in edits] == [EditResult.RETRY, EditResult.RETRY, EditResult.OK]
    assert {edit.fingerprint for edit in edits} == {latest}
    await until(lambda: rig.row(watch.id).fingerprint == latest, "the store to record it")


class ShiftedClock:
    """The system clocks with the wall clock moved forward: stored moments look older."""

    def __init__(self, shift: float) -> None:
        self.shift = shift

    def monotonic(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.time() + self.shift


async def test_the_edit_cap_of_old_messages_never_swallows_the_final_edit(rig: Rig) -> None:
    task_id = "task-edit-capped"
    timeline = music_timeline(task_id)
    rig.relay.add_task(task_id, timeline)
    tracker = rig.tracker(start=False)
    watch = await rig.watch(tracker, task_id, task=await rig.first_answer(task_id))
    assert watch.interaction_token is not None
    final = rendered(timeline[-1]).fingerprint
    # More refusals than any other transient failure is retried.
    rig.editor.answer(EditResult.CAPPED, token=watch.interaction_token, fingerprint=final, times=12)
    tracker.start()

    await until(rig.ended(watch), "the watch to end", within=60.0)

    final_edits = [edit for edit in rig.edits(watch) if edit.fingerprint == final]
    assert [edit.result for edit in final_edits] == [EditResult.CAPPED] * 12 + [EditResult.OK]
    assert rig.row(watch.id).outcome is WatchOutcome.FINISHED


async def test_edits_of_messages_older_than_an_hour_are_spaced_out(rig: Rig) -> None:
    task_id = "task-old-message"
    timeline = progress_timeline(task_id, range(1, 99))
    rig.relay.add_task(task_id, timeline)
    hour = 3600.0
    tracker = Tracker(
        source=rig.source(),
        store=rig.store,
        editor=rig.editor,
        presenter=PRESENTER,
        policy=PollPolicy(INTERVAL),
        batch_size=100,
        token_margin=0.0,
        can_edit_channel=lambda watch: True,
        clock=ShiftedClock(hour + 60.0),
    )
    rig.trackers.append(tracker)
    token_in, deadline_in = hour + 900.0, hour + WATCH_TIMEOUT
    young = await rig.watch(rig.tracker(), task_id, token_in=token_in, deadline_in=deadline_in)
    old = await rig.watch(tracker, task_id, token_in=token_in, deadline_in=deadline_in)
    tracker.start()

    await until(lambda: len(rig.shown(old)) >= 3, "a few edits of the old message")
    await tracker.close()

    spacing = PollPolicy(INTERVAL).edit_spacing(hour + 60.0)
    assert spacing >= INTERVAL * 5
    old_gaps = [b.mono - a.mono for a, b in itertools.pairwise(rig.edits(old))]
    assert old_gaps and min(old_gaps) >= spacing - EPS
    # The message made now is edited as often as its task changes.
    young_gaps = [b.mono - a.mono for a, b in itertools.pairwise(rig.edits(young))]
    assert min(young_gaps) < spacing / 2


async def test_rejected_edit_is_not_sent_again_for_the_same_content(rig: Rig) -> None:
    task_id = "task-edit-rejected"
    first, refused = progress_timeline(task_id, [10, 40])
    timeline = [first, *[refused] * 8, success(task_id)]
    rig.relay.add_task(task_id, timeline)
    tracker = rig.tracker()
    watch = await rig.watch(tracker, task_id, task=await rig.first_answer(task_id))
    refused_fingerprint = rendered(refused).fingerprint
    rig.editor.answer(EditResult.REJECTED, fingerprint=refused_fingerprint)

    await until(rig.ended(watch), "the watch to finish")

    assert [(edit.fingerprint, edit.result) for edit in rig.edits(watch)] == [
        (refused_fingerprint, EditResult.REJECTED),
        (rendered(success(task_id)).fingerprint, EditResult.OK),
    ]
    assert rig.row(watch.id).outcome is WatchOutcome.FINISHED


# --- resume ---------------------------------------------------------------------------------------


async def test_resume_takes_up_stored_watches_polls_at_once_and_finishes_them(
    rig: Rig,
) -> None:
    for task_id in ("task-resume-a", "task-resume-b", "task-resume-c"):
        rig.relay.add_task(task_id, success(task_id))
    earlier = rendered(progress_timeline("task-resume-a", [30])[0]).fingerprint
    live = await rig.stored_watch("task-resume-a", fingerprint=earlier)
    expired = await rig.stored_watch("task-resume-b", token_in=-60.0)
    current = rendered(success("task-resume-c")).fingerprint
    unchanged = await rig.stored_watch("task-resume-c", fingerprint=current)

    # A long interval: only the poll made at resume can finish these within the wait.
    tracker = rig.tracker(poll_interval=60.0, start=False)
    assert await tracker.resume() == 3
    assert rig.row(expired.id).token is None
    assert rig.row(live.id).token == live.interaction_token
    tracker.start()

    await until(rig.ended(live, expired, unchanged), "every resumed watch to finish")

    for task_id in ("task-resume-a", "task-resume-b", "task-resume-c"):
        assert rig.relay.request_count(task_id) == 1
    assert [(e.path, e.fingerprint) for e in rig.edits(live)] == [
        ("original", rendered(success("task-resume-a")).fingerprint)
    ]
    assert [(e.path, e.message_id, e.fingerprint) for e in rig.edits(expired)] == [
        ("channel", expired.message_id, rendered(success("task-resume-b")).fingerprint)
    ]
    assert rig.edits(unchanged) == []
    for watch in (live, expired, unchanged):
        assert rig.row(watch.id).outcome is WatchOutcome.FINISHED


async def test_a_watch_resumed_after_its_deadline_is_polled_once_to_show_where_it_ended(
    rig: Rig,
) -> None:
    task_id = "task-overslept"
    rig.relay.add_task(task_id, progress_timeline(task_id, [70]))
    overdue = await rig.stored_watch(task_id, deadline_in=-30.0)
    tracker = rig.tracker(start=False)
    assert await tracker.resume() == 1
    tracker.start()

    await until(rig.ended(overdue), "the overdue watch to end")

    task = task_from(progress_timeline(task_id, [70])[0])
    stopped = render(task, locale=LOCALE, notice=Notice.AUTO_REFRESH_STOPPED)
    assert rig.shown(overdue) == [stopped.fingerprint]
    assert rig.row(overdue.id).outcome is WatchOutcome.TIMED_OUT
    assert rig.relay.request_count(task_id) == 1


# --- lifecycle and failures inside the tracker ----------------------------------------------------


TRACKING_CLASSES = ("Tracker.", "Poller.", "MessageUpdater.")


def tracker_tasks() -> list[asyncio.Task[Any]]:
    return [
        task
        for task in asyncio.all_tasks()
        if getattr(task.get_coro(), "__qualname__", "").startswith(TRACKING_CLASSES)
    ]


async def test_close_cancels_polls_and_edits_promptly_and_leaves_no_task_behind(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    hanging, editing = "task-hanging-poll", "task-hanging-edit"
    first = progress_timeline(hanging, [10])[0]
    rig.relay.add_task(hanging, [first, RelayReply(body=envelope(first), delay=30.0)])
    rig.relay.add_task(editing, progress_timeline(editing, [10, 40]))
    rig.editor.gate = asyncio.Event()
    tracker = rig.tracker(start=False)
    for task_id in (hanging, editing):
        await rig.watch(tracker, task_id, task=await rig.first_answer(task_id))
    rig.relay.batch_supported = False
    tracker.start()

    await until(lambda: rig.editor.calls_started >= 1, "an edit to hang")
    # The command's fetch, the refused batch, then the single poll that hangs.
    await until(lambda: rig.relay.request_count(hanging) >= 3, "a poll to hang")
    await asyncio.wait_for(tracker.close(), timeout=5.0)

    assert tracker_tasks() == []
    assert rig.editor.calls_cancelled >= 1
    asked, started = rig.relay.request_count(), rig.editor.calls_started
    await settle()
    assert (rig.relay.request_count(), rig.editor.calls_started) == (asked, started)
    problems = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert problems == []


async def test_render_failure_for_one_watch_does_not_stop_the_others(
    rig: Rig,
) -> None:
    task_ids = ["task-render-a", "task-render-b", "task-render-c"]
    for task_id in task_ids:
        rig.relay.add_task(task_id, music_timeline(task_id))

    class Faulty(StatusPresenter):
        def task(
            self, task: Task, *, locale: str, notice: Notice | None = None, private: bool = False
        ) -> RenderedMessage:
            if locale == "xx-broken":
                raise RuntimeError("render failed")
            return super().task(task, locale=locale, notice=notice, private=private)

    tracker = rig.tracker(start=False, presenter=Faulty(WATCH_TIMEOUT))
    broken = await rig.stored_watch(task_ids[0], locale="xx-broken")
    healthy = [await rig.stored_watch(task_id) for task_id in task_ids]
    tracker.add(broken, task=None)
    for watch in healthy:
        tracker.add(watch, task=None)
    tracker.start()

    await until(rig.ended(*healthy), "the healthy watches to finish")

    for watch in healthy:
        assert (
            rig.shown(watch)[-1]
            == render(task_from_data(success(watch.task_id)), locale=LOCALE).fingerprint
        )
    assert rig.edits(broken) == []
    await until(rig.ended(broken), "the broken watch to end too")


async def test_render_failure_at_a_deadline_does_not_stop_polling(
    rig: Rig,
) -> None:
    overdue, running = "task-render-overdue", "task-render-running"
    rig.relay.add_task(overdue, progress_timeline(overdue, [10]))
    rig.relay.add_task(running, music_timeline(running))

    class Faulty(StatusPresenter):
        def task(
            self, task: Task, *, locale: str, notice: Notice | None = None, private: bool = False
        ) -> RenderedMessage:
            if notice is Notice.AUTO_REFRESH_STOPPED:
                raise RuntimeError("render failed")
            return super().task(task, locale=locale, notice=notice, private=private)

    tracker = rig.tracker(start=False, presenter=Faulty(WATCH_TIMEOUT))
    late = await rig.watch(tracker, overdue, task=await rig.first_answer(overdue), deadline_in=-1.0)
    watch = await rig.watch(tracker, running)
    tracker.start()

    await until(rig.ended(watch, late), "both watches to end")

    assert rig.row(watch.id).outcome is WatchOutcome.FINISHED
    assert rig.row(late.id).outcome is WatchOutcome.TIMED_OUT
    assert rig.edits(late) == []


async def test_editor_exception_is_retried_and_the_watch_still_finishes(rig: Rig) -> None:
    task_id = "task-editor-raises"
    timeline = music_timeline(task_id)
    rig.relay.add_task(task_id, timeline)
    tracker = rig.tracker(start=False)
    task = await rig.first_answer(task_id)
    flaky = await rig.watch(tracker, task_id, task=task)
    steady = await rig.watch(tracker, task_id, task=task)
    assert flaky.interaction_token is not None
    final = rendered(timeline[-1]).fingerprint
    rig.editor.answer(
        RuntimeError("editor failed"), token=flaky.interaction_token, fingerprint=final, times=1
    )
    tracker.start()

    await until(rig.ended(flaky, steady), "both watches to finish")

    assert rig.shown(flaky)[-1] == final
    assert [e.fingerprint for e in rig.edits(flaky)].count(final) == 2
    assert rig.shown(steady) == fingerprints(timeline[1:])
    for watch in (flaky, steady):
        assert rig.row(watch.id).outcome is WatchOutcome.FINISHED
    assert tracker.stats().tasks == 0


class BrokenSource:
    """A task source whose first calls fail with an unexpected exception."""

    def __init__(self, inner: TaskSource, failures: int) -> None:
        self.inner = inner
        self.failures = failures
        self.calls: list[float] = []

    async def fetch(self, task_id: str, key_id: int | None = None) -> Task:
        self._maybe_fail()
        return await self.inner.fetch(task_id, key_id)

    async def fetch_many(self, task_ids: Sequence[str], key_id: int | None = None) -> list[Task]:
        self._maybe_fail()
        return await self.inner.fetch_many(task_ids, key_id)

    def forget(self, task_id: str) -> None:
        self.inner.forget(task_id)

    def _maybe_fail(self) -> None:
        self.calls.append(time.monotonic())
        if len(self.calls) <= self.failures:
            raise RuntimeError("unexpected failure in the source")


@pytest.mark.parametrize("tasks", [1, 3])
async def test_unexpected_source_exception_backs_off_and_polling_goes_on(
    rig: Rig, tasks: int
) -> None:
    task_ids = [f"task-source-{n}" for n in range(tasks)]
    for task_id in task_ids:
        rig.relay.add_task(task_id, music_timeline(task_id))
    source = BrokenSource(rig.source(), failures=2)
    tracker = rig.tracker(source=source, start=False)
    watches = [await rig.stored_watch(task_id) for task_id in task_ids]
    for watch in watches:
        tracker.add(watch, task=None)
    tracker.start()

    await until(rig.ended(*watches), "every watch to finish")

    first, second, third = source.calls[:3]
    assert second - first >= 2 * INTERVAL - EPS
    assert third - second >= 4 * INTERVAL - EPS
    for watch in watches:
        assert rig.shown(watch)[-1] == rendered(success(watch.task_id)).fingerprint


async def test_failing_channel_check_leaves_the_edit_to_discord_and_stops_nothing(
    rig: Rig,
) -> None:
    unsure, other = "task-check-unsure", "task-check-other"
    for task_id in (unsure, other):
        rig.relay.add_task(task_id, music_timeline(task_id))

    def can_edit_channel(watch: Watch) -> bool:
        if watch.task_id == unsure:
            raise RuntimeError("guild cache unavailable")
        return True

    rig.channel_ok = can_edit_channel
    tracker = rig.tracker(start=False)
    # Past its token's switch time, so the channel check is asked at every tick.
    switched = await rig.watch(tracker, unsure, token_in=-1.0)
    watch = await rig.watch(tracker, other)
    tracker.start()

    await until(rig.ended(switched, watch), "both watches to finish")

    for finished in (switched, watch):
        final = rendered(success(finished.task_id)).fingerprint
        assert rig.shown(finished)[-1] == final
        assert rig.row(finished.id).outcome is WatchOutcome.FINISHED
    assert {edit.path for edit in rig.edits(switched)} == {"channel"}


class ForgetfulStore(SqliteWatchStore):
    """A store whose disk refuses to record that a message shows `refused`."""

    refused: str | None = None
    refusals = 0

    async def set_fingerprint(self, watch_id: int, fingerprint: str) -> None:
        if fingerprint == self.refused:
            self.refusals += 1
            raise StoreError("database file: could not record what a message shows (disk I/O)")
        await super().set_fingerprint(watch_id, fingerprint)


async def test_store_failure_while_recording_an_edit_does_not_stop_the_watch(
    rig: Rig, tmp_path: Path
) -> None:
    store = await ForgetfulStore.open(tmp_path / "forgetful.sqlite3")
    assert isinstance(store, ForgetfulStore)
    try:
        rig.store, rig.db_path = store, tmp_path / "forgetful.sqlite3"
        task_id = "task-store-hiccup"
        timeline = music_timeline(task_id)
        rig.relay.add_task(task_id, timeline)
        tracker = rig.tracker()
        watch = await rig.watch(tracker, task_id, task=await rig.first_answer(task_id))
        shown = fingerprints(timeline[1:])
        store.refused = shown[-1]

        await until(rig.ended(watch), "the watch to finish")

        assert store.refusals == 1
        assert rig.shown(watch) == shown
        assert rig.row(watch.id) == Row(WatchOutcome.FINISHED, None, shown[-2])
    finally:
        for tracker in rig.trackers:
            await tracker.close()
        await store.close()


# --- what the metrics are told --------------------------------------------------------------------


@dataclass
class FinalEdits:
    """Records what the tracker reports of each finished task's final edit."""

    seconds: list[float] = field(default_factory=list)

    def final_edit(self, seconds: float) -> None:
        self.seconds.append(seconds)


async def test_the_time_from_the_finished_answer_to_the_final_edit_is_reported(rig: Rig) -> None:
    rig.relay.add_task("timed", [*progress_timeline("timed", [10, 20]), success("timed")])
    rig.editor.delay = 0.3  # every edit takes Discord 0.3 s
    final = FinalEdits()
    tracker = rig.tracker(observer=final)
    watch = await rig.watch(tracker, "timed")
    await until(rig.ended(watch), "the watch to end")
    assert rig.row(watch.id).outcome is WatchOutcome.FINISHED
    [seconds] = final.seconds
    # At least the final edit's own time; at most one earlier edit still in flight before it.
    assert 0.3 - EPS <= seconds < 2 * 0.3 + 0.5


async def test_a_finished_task_whose_message_is_gone_reports_no_final_edit(rig: Rig) -> None:
    rig.relay.add_task("vanished", [*progress_timeline("vanished", [10]), success("vanished")])
    final = FinalEdits()
    tracker = rig.tracker(observer=final)
    watch = await rig.watch(tracker, "vanished")
    rig.editor.answer(EditResult.GONE, token=watch.interaction_token)
    rig.channel_ok = lambda _: False
    await until(rig.ended(watch), "the watch to end")
    assert rig.row(watch.id).outcome is WatchOutcome.LOST
    assert final.seconds == []


async def test_a_finished_task_leaves_nothing_behind_in_the_relay_clients_memory(
    rig: Rig,
) -> None:
    task_id = "task-memo"
    rig.relay.add_task(task_id, music_timeline(task_id))
    client = rig.client()
    tracker = rig.tracker(source=KeyedRelay(client, MemberKeys(rig.store, None)))
    watch = await rig.watch(tracker, task_id)
    await until(rig.ended(watch), "the watch to finish")
    assert task_id not in client._memo._newest
