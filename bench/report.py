"""Benchmark rows, their medians across runs, and the table printed and written as JSON."""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Literal, TypeAlias

from bench.stats import median

Better: TypeAlias = Literal["lower", "higher"]


@dataclass(frozen=True)
class Row:
    """One figure of one scenario, for our bot and the baseline, with its target if any."""

    scenario: str
    metric: str
    unit: str
    ours: float
    baseline: float | None = None
    target: float | None = None
    better: Better = "lower"
    note: str = ""
    incomplete: bool = False  # measured under weaker conditions than stated: never meets

    @property
    def key(self) -> tuple[str, str]:
        return (self.scenario, self.metric)

    @property
    def gain(self) -> float | None:
        """How many times better ours is than the baseline (>1 means ours is better)."""
        if self.baseline is None or math.isnan(self.ours) or math.isnan(self.baseline):
            return None
        worse, better = (
            (self.baseline, self.ours) if self.better == "lower" else (self.ours, self.baseline)
        )
        if better == 0:
            return math.inf if worse > 0 else 1.0
        return worse / better

    @property
    def met(self) -> bool | None:
        if self.target is None:
            return None
        if self.incomplete or math.isnan(self.ours):
            return False
        return self.ours <= self.target if self.better == "lower" else self.ours >= self.target


def medians(runs: Sequence[Sequence[Row]]) -> list[Row]:
    """Per figure, the median of ours and of the baseline across runs (first run's order)."""
    by_key: dict[tuple[str, str], list[Row]] = {}
    for rows in runs:
        for row in rows:
            by_key.setdefault(row.key, []).append(row)
    result = []
    for same in by_key.values():
        baselines = [row.baseline for row in same if row.baseline is not None]
        incomplete = [row for row in same if row.incomplete]
        result.append(
            replace(
                same[0],
                ours=median([row.ours for row in same]),
                baseline=median(baselines) if baselines else None,
                incomplete=bool(incomplete),
                note=incomplete[0].note if incomplete else same[0].note,
            )
        )
    return result


def _number(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if math.isnan(value):
        return "n/a"
    if math.isinf(value):
        return "∞"
    if unit == "ratio" or abs(value) < 10:
        return f"{value:.2f}"
    if abs(value) < 1000:
        return f"{value:.1f}"
    return f"{value:,.0f}"


def _gain(row: Row) -> str:
    gain = row.gain
    if gain is None:
        return "—"
    if math.isinf(gain):
        return "∞"
    return f"{gain:.2f}x" if gain < 10 else f"{gain:,.0f}x"


def _target(row: Row) -> str:
    if row.target is None:
        return "—"
    sign = "≤" if row.better == "lower" else "≥"
    verdict = {True: "met", False: "MISSED", None: ""}[row.met]
    return f"{sign} {_number(row.target, row.unit)} {verdict}"


HEADERS = ("scenario", "metric", "unit", "ours", "baseline", "ours vs baseline", "target")


def table_cells(rows: Sequence[Row]) -> list[tuple[str, ...]]:
    return [
        (
            row.scenario,
            row.metric + (f" ({row.note})" if row.note else ""),
            row.unit,
            _number(row.ours, row.unit),
            _number(row.baseline, row.unit),
            _gain(row),
            _target(row),
        )
        for row in rows
    ]


def text_table(rows: Sequence[Row]) -> str:
    cells = [HEADERS, *table_cells(rows)]
    widths = [max(len(line[column]) for line in cells) for column in range(len(HEADERS))]
    lines = []
    for number, line in enumerate(cells):
        lines.append("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)))
        if number == 0:
            lines.append("  ".join("-" * width for width in widths))
    return "\n".join(lines)


def markdown_table(rows: Sequence[Row]) -> str:
    lines = ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    lines += ["| " + " | ".join(line) + " |" for line in table_cells(rows)]
    return "\n".join(lines)


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    model = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            model = next(
                (
                    line.split(":", 1)[1].strip()
                    for line in cpuinfo
                    if line.startswith("model name")
                ),
                "",
            )
    except OSError:
        pass
    memory_kib = 0
    try:
        with open("/proc/meminfo", encoding="utf-8") as meminfo:
            memory_kib = int(meminfo.readline().split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return {
        "cpu": model or platform.processor(),
        "cores": os.cpu_count(),
        "memory_gib": round(memory_kib / 1024 / 1024, 1),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "commit": _git_commit(),
    }


def _git_commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],  # noqa: S607
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).resolve().parent,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(item) for item in value]
    return value


def row_json(row: Row) -> dict[str, Any]:
    return {**asdict(row), "ours_vs_baseline": row.gain, "target_met": row.met}


def write_results(
    path: Path,
    *,
    config: dict[str, Any],
    runs: Sequence[Sequence[Row]],
    details: Sequence[dict[str, Any]],
    result: Sequence[Row],
) -> None:
    document = {
        "machine": machine(),
        "config": config,
        "median": [row_json(row) for row in result],
        "runs": [[row_json(row) for row in rows] for rows in runs],
        "details": list(details),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_json_safe(document), indent=2, ensure_ascii=False) + "\n")
