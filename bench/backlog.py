"""Backlog scale: the claims and the worker's memory with 10k and 1M pending rows.

Each store (SQLite, PostgreSQL) gets two outboxes, 10k and 1M pending "drip" rows over
100k people; claims (one-by-one calls' `claims.claim` of 1000 and 10, and a batch call's
`claims.run_candidates` + `lease` of 1000) are timed alternately on the two, each in
its own transaction, and the claimed rows are made due again after each one, so every
claim does the same work.
Then a real `drip-bridge worker` delivers to the fake Drip for a while: its peak RSS.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from app.simulators.server import wait_until
from app.store import claims, create_engine, upgrade
from app.store.tables import outbox as outbox_table
from bench.common import (
    BIN,
    Processes,
    bridge_env,
    median,
    postgres_database,
    save,
    table,
    vm_hwm_mb,
)

CHUNK = 10_000
PERSONS = 100_000
OUTBOX_ROWS = sa.table(  # untyped: bodies go in as ready JSON text, fast
    "outbox",
    *(sa.column(c) for c in ("destination", "kind", "person", "body", "message_id",
                             "received_at", "available_at")),
)  # fmt: skip


def record(i: int, email: str) -> str:
    """A Drip event as the mapping makes it, about 300 bytes of JSON."""
    return json.dumps({
        "email": email,
        "action": "Viewed Product",
        "properties": {
            "product_id": f"sku-{i}", "name": "The Pragmatic Programmer, 20th anniversary",
            "category": "Books", "price": 4999, "currency": "USD",
            "url": f"https://shop.example.com/p/{i}",
        },
        "occurred_at": "2024-05-01T12:00:00Z",
    })  # fmt: skip


def chunks(n: int, seed: int = 7) -> Iterator[list[dict[str, Any]]]:
    rng, start = random.Random(seed), time.time() - n / 1000
    for first in range(0, n, CHUNK):
        batch = []
        for i in range(first, min(n, first + CHUNK)):
            email = f"p{rng.randrange(PERSONS)}@example.com"
            at = start + i / 1000
            batch.append({"destination": "drip", "kind": "event", "person": email,
                          "body": record(i, email), "message_id": f"bench-{i}",
                          "received_at": at, "available_at": at})  # fmt: skip
        yield batch


def fill(url: str, n: int, ddl: Sequence[str] = ()) -> float:
    """Create the schema (plus `ddl`, a candidate index) and `n` pending rows; seconds taken."""
    engine = create_engine(url)
    upgrade(engine)
    with engine.begin() as conn:
        for statement in ddl:
            conn.execute(sa.text(statement))
    started = time.perf_counter()
    for batch in chunks(n):
        with engine.begin() as conn:
            conn.execute(OUTBOX_ROWS.insert(), batch)
    if engine.dialect.name == "postgresql":  # as autovacuum would; on SQLite nothing runs ANALYZE
        with engine.execution_options(isolation_level="AUTOCOMMIT").connect() as conn:
            conn.execute(sa.text("VACUUM ANALYZE outbox"))
    engine.dispose()
    return time.perf_counter() - started


def timed_claim(engine: sa.Engine, limit: int, runs: bool = False) -> tuple[float, int]:
    """Seconds for one claim transaction; then its rows are made due again (not timed).

    `runs`: a batch call's claim (people's consecutive rows, under the claim lock), as
    the worker makes it, instead of one-by-one calls' (each person's oldest row)."""
    started = time.perf_counter()
    with engine.begin() as conn:
        if runs:
            claims.lock_claims(conn, "drip")
            now = time.time()
            found = claims.run_candidates(conn, "drip", "event", now, people=limit, rows=limit)
            rows = claims.lease(conn, [c.id for c in found], now, claims.LEASE_SECONDS)
        else:
            rows = claims.claim(conn, "drip", limit, time.time())
    took = time.perf_counter() - started
    with engine.begin() as conn:
        conn.execute(
            outbox_table.update()
            .where(outbox_table.c.id.in_([r.id for r in rows]))
            .values(available_at=0, attempts=0)
        )
    return took, len(rows)


def claim_times(
    engines: dict[str, sa.Engine], limit: int, samples: int, budget: float, runs: bool = False
) -> dict[str, dict[str, Any]]:
    """Claims alternately on each backlog: median ms, and the rows each claim got."""
    times: dict[str, list[float]] = {size: [] for size in engines}
    got: dict[str, set[int]] = {size: set() for size in engines}
    deadline = time.monotonic() + budget
    for i in range(samples):
        if i >= 3 and time.monotonic() > deadline:
            break
        for size, engine in engines.items():
            took, n = timed_claim(engine, limit, runs)
            times[size].append(took * 1000)
            got[size].add(n)
    return {
        size: {
            "median_ms": median(ts),
            "max_ms": max(ts),
            "samples": len(ts),
            "rows": sorted(got[size]),
        }
        for size, ts in times.items()
    }


class _Capture:
    """Stands in for a connection: keeps the statement `claims.claim` would execute."""

    def __init__(self, dialect: sa.Dialect) -> None:
        self.dialect = dialect
        self.statement: Any = None

    def execute(self, statement: Any) -> list[Any]:
        self.statement = statement
        return []


def claim_statement(engine: sa.Engine) -> tuple[str, Any]:
    """The SQL and DBAPI parameters of a claim of 1000, as `claims.claim` builds it."""
    capture = _Capture(engine.dialect)
    claims.claim(capture, "drip", 1000, time.time())  # type: ignore[arg-type]
    compiled = capture.statement.compile(dialect=engine.dialect)
    params = compiled.construct_params()
    if compiled.positiontup is not None:  # SQLite: qmark
        return str(compiled), tuple(params[k] for k in compiled.positiontup)
    return str(compiled), params


def plan(engine: sa.Engine) -> str:
    """EXPLAIN QUERY PLAN (SQLite) or EXPLAIN ANALYZE, rolled back (PostgreSQL) of a claim."""
    sql, params = claim_statement(engine)
    with engine.connect() as conn, conn.begin() as tx:
        if engine.dialect.name == "sqlite":
            rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, params).all()
            text = "\n".join(f"{r[0]:>3} {r[1]:>3} {r[3]}" for r in rows)
        else:
            rows = conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + sql, params).all()
            text = "\n".join(r[0] for r in rows)
        tx.rollback()
    return text


def start_fake_drip(procs: Processes) -> str:
    argv = [sys.executable, "-m", "app.simulators.drip", "--port", "0", "--token", "x",
            "--rate-limit", "100000000/3600"]  # fmt: skip
    procs.start(argv, bridge_env("sqlite://"), "fake-drip")
    log = procs.logs / "fake-drip.log"
    wait_until("the fake Drip", lambda: "listening on" in log.read_text())
    return log.read_text().split("listening on", 1)[1].split()[0]


def delivered(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        query = sa.text("SELECT count(*) FROM outbox WHERE state = 'done'")
        return int(conn.execute(query).scalar_one())


def worker_rss(url: str, procs: Processes, drip_url: str, name: str, seconds: float) -> dict:
    """A real `drip-bridge worker` on the backlog for `seconds`: peak RSS, rows delivered."""
    engine = create_engine(url)
    before = delivered(engine)
    proc = procs.start([str(BIN / "drip-bridge"), "worker"], bridge_env(url, drip_url), name)
    time.sleep(seconds)
    if proc.poll() is not None:
        raise RuntimeError(f"worker {name} exited: {procs.tail(name)}")
    peak = vm_hwm_mb(proc.pid)
    proc.terminate()
    proc.wait(timeout=30)
    done = delivered(engine) - before
    engine.dispose()
    return {"vmhwm_mb": peak, "delivered": done, "rows_per_s": done / seconds}


def label(n: int) -> str:
    return f"{n // 1_000_000}M" if n % 1_000_000 == 0 else f"{n // 1000}k"


@contextlib.contextmanager
def stores(kind: str, sizes: Sequence[int], work: Path) -> Iterator[dict[int, str] | None]:
    """One URL per backlog size on `kind` (None when PostgreSQL is unreachable)."""
    if kind == "sqlite":
        yield {n: f"sqlite:///{work}/backlog-{n}.sqlite3" for n in sizes}
        return
    with contextlib.ExitStack() as stack:
        urls = {n: stack.enter_context(postgres_database(f"drip_bench_{n}")) for n in sizes}
        yield urls if all(urls.values()) else None  # type: ignore[misc]


def measure(kind: str, urls: dict[int, str], args: argparse.Namespace, drip_url: str,
            procs: Processes) -> dict[str, Any]:  # fmt: skip
    """Fill, time claims alternately, explain the biggest, run a worker on each size."""
    fills = {label(n): fill(url, n, args.index) for n, url in urls.items()}
    print(f"backlog {kind}: filled " + ", ".join(f"{k} in {v:.1f} s" for k, v in fills.items()))
    engines = {label(n): create_engine(url) for n, url in urls.items()}
    claims = {
        str(limit): claim_times(engines, limit, args.samples, args.budget) for limit in (1000, 10)
    }
    claims["batch"] = claim_times(engines, 1000, args.samples, args.budget, runs=True)
    print(f"backlog {kind}: claims {json.dumps(claims)}")
    plans = {size: plan(engine) for size, engine in engines.items()}
    for engine in engines.values():
        engine.dispose()
    workers = {
        label(n): worker_rss(url, procs, drip_url, f"worker-{kind}-{n}", args.worker_seconds)
        for n, url in urls.items()
    }
    print(f"backlog {kind}: workers {json.dumps(workers)}")
    return {"fill_s": fills, "claim": claims, "plan": plans, "worker": workers}


def ratios(figures: dict[str, Any], small: str, big: str) -> None:
    """Claim time big/small per limit, in place."""
    for series in figures["claim"].values():
        series["ratio"] = series[big]["median_ms"] / series[small]["median_ms"]


def render(results: dict[str, Any], small: str, big: str) -> str:
    rows = []
    for kind, f in results["stores"].items():
        c, w = f["claim"], f["worker"]
        rows.append([
            kind, f"{f['fill_s'][big]:.0f}",
            f"{c['1000'][small]['median_ms']:.1f}", f"{c['1000'][big]['median_ms']:.1f}",
            f"{c['1000']['ratio']:.2f}",
            f"{c['10'][small]['median_ms']:.1f}", f"{c['10'][big]['median_ms']:.1f}",
            f"{c['10']['ratio']:.2f}",
            f"{c['batch'][small]['median_ms']:.1f}", f"{c['batch'][big]['median_ms']:.1f}",
            f"{c['batch']['ratio']:.2f}",
            f"{w[small]['vmhwm_mb']:.0f} / {w[big]['vmhwm_mb']:.0f}",
            f"{w[small]['rows_per_s']:.0f} / {w[big]['rows_per_s']:.0f}",
        ])  # fmt: skip
    header = ["store", f"fill {big} s", f"claim1000 {small} ms", f"claim1000 {big} ms", "ratio",
              f"claim10 {small} ms", f"claim10 {big} ms", "ratio",
              f"batch claim {small} ms", f"batch claim {big} ms", "ratio",
              f"worker VmHWM MB {small}/{big}", f"worker rows/s {small}/{big}"]  # fmt: skip
    plans = [
        f"### Claim plan, {kind}, {big}\n\n```\n{f['plan'][big]}\n```"
        for kind, f in results["stores"].items()
    ]
    seconds = results["parameters"]["worker_seconds"]
    intro = (
        "## Backlog (median claim over alternating samples; targets: ratio <= 2, "
        f"worker VmHWM < 200 MB after {seconds:g} s)"
    )
    return "\n\n".join([intro, table(header, rows), *plans])


def parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench backlog", description=__doc__)
    parser.add_argument("--small", type=int, default=10_000, help="rows in the small backlog")
    parser.add_argument("--big", type=int, default=1_000_000, help="rows in the big backlog")
    parser.add_argument("--samples", type=int, default=20, help="claims per size and limit")
    parser.add_argument("--budget", type=float, default=60.0, help="seconds per claim series")
    parser.add_argument("--worker-seconds", type=float, default=20.0)
    parser.add_argument("--stores", default="sqlite,postgres")
    parser.add_argument("--name", default="backlog", help="results file: bench/results/NAME.*")
    parser.add_argument(
        "--index", action="append", default=[], metavar="SQL",
        help="DDL run after the schema is made, to try a candidate index (repeatable)",
    )  # fmt: skip
    return parser.parse_args(argv)


def main(argv: Sequence[str] = ()) -> None:
    args = parse(argv)
    small, big = label(args.small), label(args.big)
    results: dict[str, Any] = {"parameters": vars(args), "stores": {}}
    with tempfile.TemporaryDirectory(prefix="bench-backlog-") as tmp:
        procs = Processes(Path(tmp))
        try:
            drip_url = start_fake_drip(procs)
            for kind in args.stores.split(","):
                with stores(kind, (args.small, args.big), Path(tmp)) as urls:
                    if urls:
                        results["stores"][kind] = measure(kind, urls, args, drip_url, procs)
                        ratios(results["stores"][kind], small, big)
        finally:
            procs.stop_all()
    save(args.name, results, render(results, small, big))
