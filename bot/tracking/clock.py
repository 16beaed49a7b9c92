"""One source of time for the tracking layer: monotonic for schedules, wall for stored moments."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def monotonic(self) -> float:
        """Seconds on a clock that never jumps; every schedule is kept on it."""
        ...

    def wall(self) -> float:
        """Unix time, for moments that are stored or that Discord counts (token expiry)."""
        ...


class SystemClock:
    """The process's own clocks."""

    def monotonic(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.time()


def now(clock: Clock) -> datetime:
    """The clock's wall time as an aware datetime."""
    return datetime.fromtimestamp(clock.wall(), UTC)


def on_monotonic(clock: Clock, moment: datetime) -> float:
    """Where a stored wall-clock `moment` falls on the clock's monotonic timeline."""
    return clock.monotonic() + (moment.timestamp() - clock.wall())
