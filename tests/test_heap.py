"""Once ready, the bot leaves its startup objects out of the collector's passes and lets the
collector run less often."""

from __future__ import annotations

import gc

from bot import app
from bot.app import StatusPresenter
from bot.suno.models import task_from
from bot.tracking.editor import release_layout
from tests.kit.payloads import music_timeline


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


def test_a_released_layout_leaves_the_collector_little_to_free() -> None:
    presenter = StatusPresenter(1800)
    task = task_from(music_timeline("heap")[3])
    gc.collect()
    gc.disable()
    try:
        presenter.task(task, locale="en-US").view()
        left_as_is = gc.collect()
        release_layout(presenter.task(task, locale="en-US").view())
        left_released = gc.collect()
    finally:
        gc.enable()
    # A layout is a web of parents and children that only the collector frees: one per edit,
    # at ten thousand watches, kept it busy and the heap large. Released, only each
    # cover's section is left to it.
    assert left_as_is > 30
    assert left_released * 2 < left_as_is
