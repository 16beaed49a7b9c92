"""Fails CI when the PostgreSQL tests did not all run: none ran, or any was skipped for want
of a PostgreSQL server (whatever its name)."""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ElementTree


def main(report: str) -> int:
    cases = list(ElementTree.parse(report).getroot().iter("testcase"))  # noqa: S314
    ran = [
        case
        for case in cases
        if "postgres" in f"{case.get('classname')}::{case.get('name')}"
        and case.find("skipped") is None
    ]
    skipped = [
        str(case.get("name"))
        for case in cases
        if (skip := case.find("skipped")) is not None and "PostgreSQL" in skip.get("message", "")
    ]
    if not ran or skipped:
        print(
            f"FAIL  PostgreSQL tests: {len(ran)} ran, {len(skipped)} skipped"
            f" ({', '.join(skipped[:5])})",
            file=sys.stderr,
        )
        return 1
    print(f"ok    PostgreSQL tests: {len(ran)} ran, none skipped")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
