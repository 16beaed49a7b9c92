"""Discord snowflake ids for tests: make them for a chosen time and read their time back."""

from __future__ import annotations

from datetime import UTC, datetime

DISCORD_EPOCH_MS = 1_420_070_400_000
_LOW_BITS = 22
_LOW_MASK = (1 << _LOW_BITS) - 1


def snowflake_at(when: datetime, low_bits: int = 0) -> int:
    """The snowflake Discord would give an object created at `when` (millisecond precision)."""
    ms = int(when.timestamp() * 1000)
    return ((ms - DISCORD_EPOCH_MS) << _LOW_BITS) | (low_bits & _LOW_MASK)


def snowflake_time(snowflake: int) -> datetime:
    """When the object with this snowflake was created, as discord.py computes it."""
    return datetime.fromtimestamp(((snowflake >> _LOW_BITS) + DISCORD_EPOCH_MS) / 1000, tz=UTC)


class SnowflakeSource:
    """Hands out distinct snowflakes; each carries the creation time asked for (default: now)."""

    def __init__(self) -> None:
        self._counter = 0

    def next(self, when: datetime | None = None) -> int:
        # Worker, process and increment bits together act as one counter, so ids made for
        # the same millisecond stay distinct for four million calls.
        self._counter = (self._counter + 1) & _LOW_MASK
        return snowflake_at(when or datetime.now(UTC), self._counter)
