"""Scenario 5: the hot path's throughput, measured in a fresh process pinned to one core."""

from __future__ import annotations

import os
from typing import Any

from bench.driver import RESULTS_DIR, BotProcess
from bench.report import Row

SCENARIO = "5 hot path"
TARGET_PER_SECOND = 5_000.0

LABELS = {
    "typical": ("typical 2-clip SUCCESS body", True),
    "typical_cold": ("typical body, 2 000 distinct tasks (caches cold)", True),
    "hostile": ("hostile 2-clip body (~25 KB)", True),
    "extreme": ("stress body: 12 clips, 10 000-char fields (~345 KB)", False),
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
    for name, (label, targeted) in LABELS.items():
        figures = results[name]
        rows.append(
            Row(
                SCENARIO,
                label,
                "tasks/s",
                figures["ours"],
                figures["baseline"],
                target=TARGET_PER_SECOND if targeted else None,
                better="higher",
            )
        )
    details = [{"scenario": SCENARIO, "seconds_per_case": seconds, "results": results}]
    return rows, details
