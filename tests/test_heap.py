"""Once ready, the bot leaves its startup objects out of the collector's passes and lets the
collector run less often."""

from __future__ import annotations

import gc

from bot import app


def test_settling_freezes_what_is_alive_and_raises_the_thresholds() -> None:
    thresholds = gc.get_threshold()
    gc.unfreeze()
    alive = [object()]  # a list: tracked by the collector
    try:
        app._settle_heap()
        assert gc.get_freeze_count() > 0
        # Frozen objects are out of every pass: gc.get_objects() no longer lists them.
        assert all(item is not alive for item in gc.get_objects())
        assert gc.get_threshold() == app.GC_THRESHOLDS
        young, _, full = app.GC_THRESHOLDS
        assert young >= 10 * 700  # a young pass far less often than the default
        assert full > 10
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)
