"""The benchmark's results: one row per measurement, the table and the target lines."""

from __future__ import annotations

from dataclasses import dataclass, field

LABELS = {
    "check": "check-eligibility",
    "deduct": "deduct",
    "mix": "mix 90% check / 10% deduct",
    "summary": "GET contact summary",
    "limit_a": "limit (a): deduct txn, pgbench",
    "limit_b": "limit (b): FastAPI constant JSON",
    "limit_c": "limit (c): deduct txn, sqlite3 loop",
}


@dataclass
class Result:
    db: str
    ledger: str
    workload: str
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    failed: int = 0  # non-2xx answers and socket errors (connect, read, write, timeout)
    not_ok: int = 0  # HTTP 200 with ok:false (a business refusal)
    codes: dict[str, int] = field(default_factory=dict)
    skipped: str = ""
    app_cpu_ms: float = 0.0  # CPU time of the server processes per request
    db_cpu_ms: float = 0.0  # CPU time of the PostgreSQL backends serving it, per request
    other_cores: float = 0.0  # CPU the rest of the machine used meanwhile (noise), in cores
    rss_mb: float = 0.0  # resident memory of the largest server worker after the run


def find(results: list[Result], db: str, ledger: str, workload: str) -> Result | None:
    for r in results:
        if (r.db, r.ledger, r.workload) == (db, ledger, workload) and not r.skipped:
            return r
    return None


def cpu_cost(r: Result) -> float:
    """CPU per request, server and database: the cost that other load on the machine leaves
    alone (throughput moves with whatever else runs)."""
    return max(r.app_cpu_ms + r.db_cpu_ms, 1e-9)


def table(results: list[Result]) -> str:
    b = find(results, "-", "-", "limit_b")
    lines = [
        "| database | ledger | workload | req/s | p50 ms | p99 ms | failed | ok:false "
        "| ÷ limit | large ÷ small | CPU ms/req app | CPU ms/req db | other load "
        "| worker RSS MiB |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        if r.skipped:
            lines.append(
                f"| {r.db} | {r.ledger} | {LABELS[r.workload]} | ({r.skipped}) |||||||||||"
            )
            continue
        ratio = ""
        a = find(results, "postgresql", r.ledger, "limit_a")
        if r.workload == "deduct" and r.db == "postgresql" and a:
            ratio = f"{r.rps / a.rps:.2f} x (a)"
        c = find(results, "sqlite", r.ledger, "limit_c")
        if r.workload == "deduct" and r.db == "sqlite" and c:
            ratio = f"{r.rps / c.rps:.2f} x (c)"
        if r.workload in ("check", "summary") and b:
            ratio = f"{r.rps / b.rps:.2f} x (b)"
        growth = ""
        small = find(results, r.db, "small", r.workload)
        if r.ledger == "large" and small and r.rps and not r.workload.startswith("limit"):
            growth = f"CPU {cpu_cost(r) / cpu_cost(small):.2f}, req/s {small.rps / r.rps:.2f}"
        elif r.ledger == "large" and small and r.rps:
            growth = f"req/s {small.rps / r.rps:.2f}"
        rss = f"{r.rss_mb:.0f}" if r.rss_mb else ""
        lines.append(
            f"| {r.db} | {r.ledger} | {LABELS[r.workload]} | {r.rps:,.0f} | {r.p50_ms:.1f} "
            f"| {r.p99_ms:.1f} | {r.failed} | {r.not_ok} | {ratio} | {growth} "
            f"| {r.app_cpu_ms:.2f} | {r.db_cpu_ms:.2f} | {r.other_cores:.2f} | {rss} |"
        )
    return "\n".join(lines)


def targets(results: list[Result]) -> list[str]:
    out = []

    def mark(ok: bool) -> str:
        return "MET " if ok else "MISSED"

    b = find(results, "-", "-", "limit_b")
    for ledger in ("small", "large"):
        a = find(results, "postgresql", ledger, "limit_a")
        d = find(results, "postgresql", ledger, "deduct")
        if a and d:
            ok = d.rps >= 0.7 * a.rps and d.p99_ms <= 50 and d.failed == 0
            out.append(
                f"{mark(ok)} PostgreSQL deduct ({ledger}) >= 0.7 x (a), p99 <= 50 ms, 0 failed: "
                f"{d.rps / a.rps:.2f} x, p99 {d.p99_ms:.1f} ms, {d.failed} failed"
            )
        c = find(results, "sqlite", ledger, "limit_c")
        s = find(results, "sqlite", ledger, "deduct")
        if c and s:
            ok = s.rps >= 0.7 * c.rps and s.failed == 0
            out.append(
                f"{mark(ok)} SQLite deduct ({ledger}) >= 0.7 x (c), 0 failed: "
                f"{s.rps / c.rps:.2f} x ({s.rps:,.0f} vs {c.rps:,.0f}), {s.failed} failed"
            )
        for db in ("sqlite", "postgresql"):
            for workload, share in (("check", 0.3), ("summary", 0.1)):
                r = find(results, db, ledger, workload)
                if b and r:
                    out.append(
                        f"{mark(r.rps >= share * b.rps)} {db} {workload} ({ledger}) >= "
                        f"{share} x (b): {r.rps / b.rps:.2f} x"
                    )
    for r in results:
        small = find(results, r.db, "small", r.workload)
        if r.ledger == "large" and small and r.rps and not r.workload.startswith("limit"):
            cost = cpu_cost(r) / cpu_cost(small)
            out.append(
                f"{mark(cost <= 1.2)} {r.db} {r.workload}: large ledger <= 1.2 x small (CPU per "
                f"request, app + database): {cost:.2f} x (throughput ratio "
                f"{small.rps / r.rps:.2f})"
            )
    return out
