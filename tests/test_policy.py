"""The polling policy alone: pure numbers, no loop, no relay."""

from __future__ import annotations

import pytest

from bot.tracking.policy import (
    FAILURES_BEFORE_NOTICE,
    MAX_BACKOFF_SECONDS,
    MAX_CAPPED_EDIT_RETRIES,
    MAX_EDIT_RETRIES,
    NOT_FOUND_BEFORE_GIVING_UP,
    OLD_MESSAGE_SECONDS,
    PollPolicy,
)

POLICY = PollPolicy(interval=5.0)


def test_the_next_poll_is_one_interval_after_the_poll_started() -> None:
    assert POLICY.next_poll(started=100.0) == 105.0


@pytest.mark.parametrize(("failures", "delay"), [(1, 10.0), (2, 20.0), (3, 40.0), (6, 300.0)])
def test_failed_polls_back_off_doubling_from_the_interval(failures: int, delay: float) -> None:
    assert POLICY.retry_delay(failures) == delay


def test_backoff_never_exceeds_the_cap_however_many_failures() -> None:
    assert POLICY.retry_delay(10_000) == MAX_BACKOFF_SECONDS
    assert POLICY.backoff(10_000) == MAX_BACKOFF_SECONDS


def test_a_relay_retry_after_longer_than_the_backoff_is_honoured() -> None:
    assert POLICY.retry_delay(1, retry_after=42.0) == 42.0


def test_a_retry_after_shorter_than_the_backoff_does_not_shorten_it() -> None:
    assert POLICY.retry_delay(3, retry_after=1.0) == 40.0


def test_a_huge_retry_after_is_capped() -> None:
    assert POLICY.retry_delay(1, retry_after=86_400.0) == MAX_BACKOFF_SECONDS


def test_edit_retries_use_the_same_backoff_as_polls() -> None:
    assert [POLICY.backoff(n) for n in (1, 2, 3)] == [POLICY.retry_delay(n) for n in (1, 2, 3)]


def test_tasks_due_within_half_an_interval_ride_along() -> None:
    assert POLICY.ride_along_until(now=100.0) == 102.5


def test_retrying_is_shown_only_once_failures_persist() -> None:
    shown = [POLICY.shows_retrying(n) for n in range(FAILURES_BEFORE_NOTICE + 1)]
    assert shown == [False] * FAILURES_BEFORE_NOTICE + [True]


def test_a_task_is_given_up_after_repeated_not_found_answers() -> None:
    assert not POLICY.gives_up_on_not_found(NOT_FOUND_BEFORE_GIVING_UP - 1)
    assert POLICY.gives_up_on_not_found(NOT_FOUND_BEFORE_GIVING_UP)


def test_an_edit_is_retried_a_bounded_number_of_times() -> None:
    assert POLICY.retries_edit(MAX_EDIT_RETRIES - 1)
    assert not POLICY.retries_edit(MAX_EDIT_RETRIES)


def test_a_short_interval_scales_every_delay() -> None:
    fast = PollPolicy(interval=0.1)
    assert fast.retry_delay(1) == pytest.approx(0.2)
    assert fast.next_poll(started=1.0) == pytest.approx(1.1)


def test_an_edit_refused_by_the_cap_on_old_messages_is_retried_long_and_evenly() -> None:
    assert POLICY.retries_edit(MAX_EDIT_RETRIES, capped=True)
    assert not POLICY.retries_edit(MAX_CAPPED_EDIT_RETRIES, capped=True)
    paced = [POLICY.edit_retry_delay(n, capped=True) for n in range(1, 30)]
    assert max(paced) == POLICY.edit_spacing(OLD_MESSAGE_SECONDS) == 30.0


def test_messages_under_an_hour_old_are_never_held_back() -> None:
    assert POLICY.edit_spacing(OLD_MESSAGE_SECONDS - 1) == 0.0
    assert POLICY.edit_spacing(OLD_MESSAGE_SECONDS) == 30.0
