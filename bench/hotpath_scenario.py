"""Scenario 5: the hot path's throughput, measured in a fresh process pinned to one core."""

from __future__ import annotations

import os
from typing import Any

from bench.driver import RESULTS_DIR, BotProcess
from bench.report import Row

SCENARIO = "5 hot path"
TYPICAL_TARGET = 10_000.0
HOSTILE_TARGET = 5_000.0

# Name → (label, target). "Changed": an answer that differs from the task's last, so it is
# decoded, normalized and rendered; "unchanged": the task polled again and found as it was.
LABELS = {
    "typical": ("typical 2-clip SUCCESS body, changed since the last poll", TYPICAL_TARGET),
    "typical_cold": ("typical body, changed, 2 000 distinct tasks (caches cold)", TYPICAL_TARGET),
    "typical_unchanged": ("typical body, unchanged since the last poll", TYPICAL_TARGET),
    "hostile": ("hostile 2-clip body (~35 KB), changed since the last poll", HOSTILE_TARGET),
    "hostile_unchanged": ("hostile body, unchanged since the last poll", HOSTILE_TARGET),
    "extreme": ("stress body: 12 clips, 10 000-char fields (~345 KB), changed", None),
}


async def run(quick: bool) -> tuple[list[Row], list[dict[str, Any]]]:
    seconds = 0.3 if quick else 2.0
    cores = sorted(os.sched_getaffinity(0))
    process = await BotProcess.spawn(RESULTS_DIR / "logs" / "hotpath.log")
    try:
        results: dict[str, dict[str, float]] = await process.call(
            "hotpath", seconds=seconds, cpu=cores[-1]
        )
    finally:
        await process.close()
    rows = []
    for name, (label, target) in LABELS.items():
        figures = results[name]
        rows.append(
            Row(
                SCENARIO,
                label,
                "tasks/s",
                figures["ours"],
                figures["baseline"],
                target=target,
                better="higher",
            )
        )
    details = [{"scenario": SCENARIO, "seconds_per_case": seconds, "results": results}]
    return rows, details
