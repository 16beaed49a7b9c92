"""`python -m bench`: runs every scenario, prints the table of medians and writes it as JSON."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bench import (
    ack,
    cluster,
    discord_load,
    driver,
    hotpath_scenario,
    member_keys,
    relay_load,
    scale,
)
from bench.driver import RESULTS_DIR
from bench.report import Row, markdown_table, medians, text_table, write_results

Scenario = Callable[[bool], Awaitable[tuple[list[Row], list[dict[str, Any]]]]]

SCENARIOS: dict[str, Scenario] = {
    "ack": ack.run,
    "relay": relay_load.run,
    "discord": discord_load.run,
    "scale": scale.run,
    "hotpath": hotpath_scenario.run,
    "cluster": cluster.run,
    # Minutes long: run only when asked for (`--only scale100k`).
    "scale100k": scale.run_huge,
    "keys": member_keys.run,
}
DEFAULT_SCENARIOS = ("ack", "relay", "discord", "scale", "hotpath")
# The table lists figures by scenario number, whatever order they were measured in.
_ORDER = ("1 ", "2 ", "3 ", "4 ", "5 ", "6 ", "7 ", "8 ")


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmarks of the bot against the test kit's fake Discord and fake relay, "
        "side by side with a naive baseline bot.",
    )
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run (~1 min)")
    parser.add_argument("--runs", type=int, default=1, help="repetitions; the table shows medians")
    parser.add_argument(
        "--only",
        action="append",
        choices=sorted(SCENARIOS),
        help="run only this scenario (may be repeated)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=RESULTS_DIR / "latest.json",
        help="where to write the JSON results (default: bench/results/latest.json)",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="run each bot process under pyinstrument and write its profile to DIR "
        "(needs: uv run --with pyinstrument python -m bench ...)",
    )
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    return args


def _sorted(rows: list[Row]) -> list[Row]:
    def rank(row: Row) -> int:
        return next(
            (number for number, prefix in enumerate(_ORDER) if row.scenario.startswith(prefix)),
            len(_ORDER),
        )

    return sorted(rows, key=rank)


async def _main(args: argparse.Namespace) -> int:
    driver.PROFILE_DIR = args.profile
    chosen = args.only or list(DEFAULT_SCENARIOS)
    # Other work on the machine skews every figure; the load average says whether there was any.
    load_before = os.getloadavg()
    runs: list[list[Row]] = []
    details: list[dict[str, Any]] = []
    started = time.monotonic()
    for run in range(1, args.runs + 1):
        rows: list[Row] = []
        for name in chosen:
            print(f"run {run}/{args.runs}: {name} ...", file=sys.stderr, flush=True)
            began = time.monotonic()
            scenario_rows, scenario_details = await SCENARIOS[name](args.quick)
            rows += scenario_rows
            details += [{"run": run, **detail} for detail in scenario_details]
            print(
                f"run {run}/{args.runs}: {name} done in {time.monotonic() - began:.0f} s",
                file=sys.stderr,
                flush=True,
            )
        runs.append(_sorted(rows))
    result = medians(runs)
    config = {
        "quick": args.quick,
        "runs": args.runs,
        "scenarios": chosen,
        "seconds": round(time.monotonic() - started, 1),
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
    }
    write_results(args.out, config=config, runs=runs, details=details, result=result)
    args.out.with_suffix(".md").write_text(markdown_table(result) + "\n")
    label = "median of" if args.runs > 1 else "single run,"
    print(f"\n{label} {args.runs} run(s){' (quick)' if args.quick else ''}:\n")
    print(text_table(result))
    print(f"\nwritten to {args.out} (and {args.out.with_suffix('.md').name})")
    missed = [row for row in result if row.met is False]
    if missed:
        print(f"{len(missed)} target(s) missed", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    return asyncio.run(_main(_parse(argv)))


if __name__ == "__main__":
    sys.exit(main())
