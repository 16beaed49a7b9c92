"""Fails CI when the PostgreSQL tests did not all run: none ran, or some were skipped."""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ElementTree


def main(report: str) -> int:
    cases = [
        case
        for case in ElementTree.parse(report).getroot().iter("testcase")  # noqa: S314
        if "postgres" in f"{case.get('classname')}::{case.get('name')}"
    ]
    skipped = [case.get("name") for case in cases if case.find("skipped") is not None]
    if not cases or skipped:
        print(
            f"FAIL  PostgreSQL tests: {len(cases)} found, {len(skipped)} skipped"
            f" ({', '.join(str(name) for name in skipped[:5])})",
            file=sys.stderr,
        )
        return 1
    print(f"ok    PostgreSQL tests: {len(cases)} ran")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
