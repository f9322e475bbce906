"""5. Fuzzing: schemathesis against the served OpenAPI description, then hand-written hostile inputs.

Two schemathesis passes, each with every check (`--checks all`) and a valid all-scopes token:
the description exactly as served, and a copy narrowed to the seeded location, config and contacts
so that generated requests get past LOCATION_MISMATCH into the ledger. Requests are counted by the
server's own metrics (every worker), and every 5xx there is a failure.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from reliability.harness import LOCATION, Environment, Server
from reliability.hostile import run_cases
from reliability.load import GRANT, Driver, Figures, grant_body
from reliability.runner import standard

EXAMPLES_PER_OPERATION = 60
SCHEMATHESIS_TIMEOUT_SECONDS = 600
SEED = 20260416
CONTACTS = ["fz-c0", "fz-c1", "fz-c2"]
_METRIC = re.compile(r"^kotally_http_requests_total\{([^}]*)\} ([0-9.e+]+)$", re.MULTILINE)


def _served_counts(server: Server) -> tuple[int, int]:
    """(requests, 5xx answers) the server counted, over every worker."""
    text = httpx.get(f"{server.base_url}/metrics", timeout=10).text
    total = errors = 0
    for labels, value in _METRIC.findall(text):
        count = int(float(value))
        total += count
        if 'status="5' in labels:
            errors += count
    return total, errors


def _narrow(schema: dict[str, Any]) -> dict[str, Any]:
    """Pin location, config, calendar and contact ids to the seeded world."""
    pins = {
        "location_id": [LOCATION],
        "product_config_id": ["pc_20", "pc_missing"],
        "calendar_id": ["cal_1", "cal_missing"],
        "external_contact_id": [*CONTACTS, "fz-unknown"],
        "ghl_contact_id": [*CONTACTS, "fz-unknown"],
    }

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            props = node.get("properties")
            if isinstance(props, dict):
                for name, values in pins.items():
                    if name in props and "anyOf" not in props[name]:
                        props[name] = {"type": "string", "enum": values}
                    elif name in props:
                        props[name] = {
                            "anyOf": [{"type": "string", "enum": values}, {"type": "null"}]
                        }
            if node.get("in") in ("query", "path") and node.get("name") in ("location_id", "id"):
                values = [LOCATION] if node["name"] == "location_id" else [*CONTACTS, "fz-unknown"]
                node["schema"] = {"type": "string", "enum": values}
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    return schema


def _schemathesis(
    location: str, server: Server, token: str, report: Path, figures: Figures, *, narrowed: bool
) -> None:
    st = str(Path(sys.executable).with_name("st"))
    args = [
        st,
        "run",
        location,
        "--url",
        server.base_url,
        "-H",
        f"Authorization: Bearer {token}",
        "--checks",
        "all",
        # JSON Schema's "integer" admits 1.0, which api-v2 rejects on purpose (422).
        "--exclude-checks",
        "positive_data_acceptance",
        # The narrowed copy is stricter than the API (enums for ids): only valid data there.
        *(["--mode", "positive"] if narrowed else []),
        "--max-examples",
        str(EXAMPLES_PER_OPERATION),
        "--seed",
        str(SEED),
        "--workers",
        "1",  # 2 threads trip a CPython 3.11 ast race in hypothesis
        "--request-timeout",
        "30",
        "--no-color",
        "--report",
        "json",
        "--report-json-path",
        str(report),
    ]
    done = subprocess.run(
        args,
        capture_output=True,
        text=True,
        timeout=SCHEMATHESIS_TIMEOUT_SECONDS,
        check=False,
        cwd=report.parent,  # its .schemathesis/ example database goes with the temp dir
    )
    if not report.exists():
        figures.fail(f"schemathesis did not run: {done.stdout[-500:]} {done.stderr[-500:]}")
        return
    data = json.loads(report.read_text())
    generated = data["test_cases"]["generated"]
    figures.notes.append(
        f"schemathesis {location.rsplit('/', 1)[-1]}: {data['operations']['tested']} operations, "
        f"{generated} test cases"
    )
    for failure in data["failures"]:
        figures.violate(
            f"schemathesis {failure['code']} {failure['title']}: {failure['operations']}"
        )
    for error in data["errors"]:
        figures.fail(f"schemathesis error: {str(error)[:300]}")
    if data["operations"]["tested"] < data["operations"]["total"]:
        figures.fail("schemathesis did not test every operation")
    if done.returncode != 0 and not data["failures"] and not data["errors"]:
        figures.fail(f"schemathesis exit {done.returncode}: {done.stdout[-800:]}")


async def attack(server: Server, environment: Environment, figures: Figures) -> None:
    token = environment.clients["load"].token
    async with Driver(server.base_url, token, figures, 4) as driver:
        await asyncio.gather(*(driver.post(GRANT, grant_body(c)) for c in CONTACTS))
        await driver.post(
            "/api/v2/entitlements/deduct",
            {
                "location_id": LOCATION,
                "request_id": "fz-d",
                "external_contact_id": CONTACTS[0],
                "product_config_id": "pc_20",
                "external_ref": "fz-booking",
            },
        )
    before, _ = await asyncio.to_thread(_served_counts, server)
    served = httpx.get(f"{server.base_url}/openapi.json", timeout=10).json()
    narrowed = environment.workdir / "openapi-narrowed.json"
    narrowed.write_text(json.dumps(_narrow(served)))
    shadow = Figures("fuzz", environment.kind)
    for where, name in [(f"{server.base_url}/openapi.json", "served"), (str(narrowed), "narrowed")]:
        await asyncio.to_thread(
            _schemathesis,
            where,
            server,
            token,
            environment.workdir / f"st-{name}.json",
            shadow,
            narrowed=name == "narrowed",
        )
    after, errors = await asyncio.to_thread(_served_counts, server)
    figures.requests += after - before
    figures.merge(
        Figures("", "", 0, shadow.expected_errors, shadow.failures, shadow.violations, shadow.notes)
    )
    if errors:
        figures.fail(f"{errors} answers with HTTP 5xx during fuzzing")
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as client:
        started = time.monotonic()
        await run_cases(client, token, LOCATION, CONTACTS[0], figures)
        figures.notes.append(f"hostile inputs: {time.monotonic() - started:.1f}s")


async def run(kind: str) -> Figures:
    return await standard("fuzz", kind, attack)
