"""Attack a running `kotally serve --workers 2` on fresh SQLite and PostgreSQL databases.

    .venv/bin/python -m reliability.run [--db sqlite|postgresql|both] [--only NAME[,NAME]]

Prints a figures table (scenario, db, requests sent, expected errors, failures, violations) and
exits non-zero unless every failure and violation count is 0. The `outage` scenario stops and
restarts the local PostgreSQL 15 cluster: never run it next to other users of that server.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import traceback
from collections.abc import Awaitable, Callable

from reliability.load import Figures
from reliability.runner import standard
from reliability.scenarios import (
    access,
    crashes,
    double_spend,
    fuzz,
    hardening,
    outage,
    retries,
    webhooks,
)

Scenario = Callable[[str], Awaitable[Figures]]
SCENARIOS: dict[str, Scenario] = {
    "double_spend": lambda kind: standard("double_spend", kind, double_spend.attack),
    "retries": lambda kind: standard("retries", kind, retries.attack),
    "crashes": crashes.run,
    "outage": outage.run,
    "fuzz": fuzz.run,
    "access": lambda kind: standard("access", kind, access.attack),
    "hardening": hardening.run,
    "webhooks": webhooks.run,
}
POSTGRESQL_ONLY = {"outage"}


def _table(rows: list[Figures]) -> str:
    head = ("scenario", "db", "requests", "expected errors", "failures", "violations", "seconds")
    lines = [head] + [
        (
            f.scenario,
            f.db,
            str(f.requests),
            str(f.expected_errors),
            str(f.failures),
            str(f.violations),
            f"{f.seconds:.0f}",
        )
        for f in rows
    ]
    total = Figures("total", "")
    for f in rows:
        total.merge(f)
    total.seconds = sum(f.seconds for f in rows)
    lines.append(
        (
            "total",
            "",
            str(total.requests),
            str(total.expected_errors),
            str(total.failures),
            str(total.violations),
            f"{total.seconds:.0f}",
        )
    )
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    out = [
        "| " + " | ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) + " |"
        for line in lines
    ]
    out.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(out)


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reliability.run", description=__doc__)
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--only", help=f"comma-separated, of: {', '.join(SCENARIOS)}")
    args = parser.parse_args(argv)
    kinds = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    names = args.only.split(",") if args.only else list(SCENARIOS)
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(unknown)}")
    rows: list[Figures] = []
    for name in names:
        for kind in kinds:
            if name in POSTGRESQL_ONLY and kind != "postgresql":
                continue
            print(f"== {name} on {kind}", file=sys.stderr, flush=True)
            started = time.monotonic()
            try:
                figures = await SCENARIOS[name](kind)
            except Exception:
                figures = Figures(name, kind)
                figures.fail("the scenario crashed: " + traceback.format_exc()[-800:])
                figures.seconds = time.monotonic() - started
            for note in figures.notes:
                print(f"   {note}", file=sys.stderr)
            rows.append(figures)
    print(_table(rows))
    return 0 if all(f.failures == 0 and f.violations == 0 for f in rows) else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
