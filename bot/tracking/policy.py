"""The polling policy: when a task is asked again and how long to wait after a failure.

Pure numbers, no I/O and no event loop: every tuning constant of the tracking layer is here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

# The longest wait between two tries of anything (a poll, an edit), whatever the backoff says.
MAX_BACKOFF_SECONDS = 300.0
# A single failed poll is common and recovers on its own; say "retrying" only when it persists.
FAILURES_BEFORE_NOTICE = 2
# A task the relay stops knowing about mid-watch is given a few chances before the watch ends.
NOT_FOUND_BEFORE_GIVING_UP = 3
# A message Discord keeps refusing for transient reasons is given up after this many retries.
MAX_EDIT_RETRIES = 8
# Discord caps edits of messages older than an hour (429, code 30046). Edits of such a message
# are at least this many poll intervals apart (30 s at the default 5 s), and one the cap refused
# is tried again at that pace this many times (an hour at the default) before it is given up.
OLD_MESSAGE_SECONDS = 3600.0
OLD_MESSAGE_EDIT_INTERVALS = 6
MAX_CAPPED_EDIT_RETRIES = 120
# After the relay turned out to have no batch fetch, it is asked again this often, so an
# upgraded relay is used without a restart.
BATCH_REPROBE_SECONDS = 600.0

# Single fetches in flight at once.
MAX_CONCURRENT_FETCHES = 64
# Edits in flight at once. A change seen by thousands of watches would otherwise open a
# connection to Discord per message at the same moment (10 000 watches: +150 MB and seconds
# of event-loop stalls); queued edits still send only the newest state of their message.
MAX_CONCURRENT_EDITS = 64
# Batches read at once, and tasks handled between two turns of the event loop: a hundred
# batches answered together were parsed and rendered back to back, stalling the loop (and
# every interaction that arrived meanwhile) for ~1.6 s with 10 000 watches.
MAX_CONCURRENT_BATCHES = 4
TASKS_PER_TURN = 10

# Expired interaction tokens are credentials no longer needed: drop them from the store soon.
HOUSEKEEPING_SECONDS = 300.0
KEEP_ENDED_WATCHES = timedelta(days=7)
# How long the loop sleeps when nothing at all is scheduled.
IDLE_SECONDS = 3600.0


@dataclass(frozen=True, slots=True)
class PollPolicy:
    """When to ask the relay again, given the configured interval and what happened."""

    interval: float
    batch_reprobe: float = BATCH_REPROBE_SECONDS

    def backoff(self, attempts: int) -> float:
        """The wait before try number `attempts` + 1 of something that failed `attempts` times."""
        # The exponent is bounded so a task failing for days cannot overflow the float.
        return min(self.interval * 2.0 ** min(attempts, 64), MAX_BACKOFF_SECONDS)

    def next_poll(self, started: float) -> float:
        """After an answer: one interval after the poll started, so tasks polled together
        stay together however long each answer took."""
        return started + self.interval

    def retry_delay(self, failures: int, retry_after: float | None = None) -> float:
        """After `failures` failed polls in a row; a relay's Retry-After is honoured (capped)."""
        delay = self.backoff(failures)
        if retry_after is not None:
            delay = max(delay, min(retry_after, MAX_BACKOFF_SECONDS))
        return delay

    def ride_along_until(self, now: float) -> float:
        """Healthy tasks due before this moment join a batch that polls now.

        Watches start at any moment, so the tasks' schedules drift apart; riding along keeps
        a batch polling them all at once.
        """
        return now + self.interval / 2

    def shows_retrying(self, failures: int) -> bool:
        return failures >= FAILURES_BEFORE_NOTICE

    def gives_up_on_not_found(self, not_found: int) -> bool:
        return not_found >= NOT_FOUND_BEFORE_GIVING_UP

    def retries_edit(self, retries: int, *, capped: bool = False) -> bool:
        """Whether an edit that failed `retries` times is tried again; an edit refused by the
        cap on old messages gets many more tries, so the final state still gets through."""
        return retries < (MAX_CAPPED_EDIT_RETRIES if capped else MAX_EDIT_RETRIES)

    def edit_retry_delay(self, retries: int, *, capped: bool = False) -> float:
        """The wait before retry number `retries` of an edit; the cap on old messages lifts with
        time, so those retries keep an even pace instead of backing off for minutes."""
        delay = self.backoff(retries)
        return min(delay, self._old_message_spacing) if capped else delay

    def edit_spacing(self, message_age: float) -> float:
        """The least time between two edits of a message `message_age` seconds old."""
        return self._old_message_spacing if message_age >= OLD_MESSAGE_SECONDS else 0.0

    @property
    def _old_message_spacing(self) -> float:
        return self.interval * OLD_MESSAGE_EDIT_INTERVALS
