"""Retention at a million-row backlog: how long pruning holds the write lock.

Each store (SQLite, PostgreSQL) gets 1M pending "drip" outbox rows with their received
rows (recent: Drip down, or its token refused), then `--old` old delivered rows and
their received rows (prunable) and `--waiting` old received rows whose outbox row is
still pending (kept). The schema starts at 0011, without the index of 0012:

* old: the previous `retention.prune` (kept here, `old_prune`), whose received slice
  probes the whole outbox per old row inside the write transaction. At 1M rows a
  whole slice of 1,000 would take many minutes, so it runs one slice of `--old-limit`
  rows; the slice of 1,000 is extrapolated from it (labelled so).
* 0012: the migration's index build, timed.
* index only: `old_prune` again, now with the index.
* new: `retention.prune`.

Each is run `--runs` times (the old rows inserted again before each): the longest
write transaction (from the lock taken to the commit) and the whole call's time.
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from app.store import create_engine, retention, upgrade
from app.store.engine import writing
from app.store.outbox import State
from app.store.tables import outbox, received
from bench.common import median, postgres_database, save, table

DAY = 86400.0
KEEP = 7 * DAY  # DATA_RETENTION of the run
BODY = (
    '\'{"email":"p\' || (i % 100000) || \'@example.com","action":"Viewed Product",'
    '"properties":{"product_id":"sku-\' || i || \'","name":"The Pragmatic Programmer",'
    '"category":"Books","price": 4999,"currency":"USD",'
    '"url":"https://shop.example.com/p/\' || i || \'"},"occurred_at":"2024-05-01T12:00:00Z"}\''
)
OUTBOX = (
    "INSERT INTO outbox (destination, kind, person, email, body, message_id, state, "
    "received_at, available_at) SELECT 'drip', 'event', 'p' || (i % 100000) || '@example.com', "
    "'p' || (i % 100000) || '@example.com', {body}, 'bench-' || i, 'pending', "
    ":start + i / 1000.0, :start + i / 1000.0 FROM {series}"
)
RECEIVED = (
    "INSERT INTO received (source, message_id, payload, received_at) "
    "SELECT 'segment', 'bench-' || i, {body}, :start + i / 1000.0 FROM {series}"
)


def fill(engine: sa.Engine, n: int, now: float) -> float:
    """The schema at 0011 and `n` pending rows, received an hour ago; seconds taken."""
    upgrade(engine, "0011")
    started = time.perf_counter()
    if engine.dialect.name == "sqlite":
        series, body = "n", BODY
        prefix = "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < :n) "
    else:
        series, prefix, body = "generate_series(0, :n - 1) AS i", "", f"({BODY})::json"
    with writing(engine) as conn:
        for statement in (OUTBOX, RECEIVED):
            sql = prefix + statement.format(body=body, series=series)
            conn.execute(sa.text(sql), {"n": n, "start": now - 3600 - n / 1000})
    if engine.dialect.name == "postgresql":  # as autovacuum would
        with engine.execution_options(isolation_level="AUTOCOMMIT").connect() as conn:
            conn.execute(sa.text("VACUUM ANALYZE outbox"))
            conn.execute(sa.text("VACUUM ANALYZE received"))
    return time.perf_counter() - started


def add_old(engine: sa.Engine, tag: str, n: int, state: State, now: float) -> None:
    """`n` messages received 8 days ago, each with its outbox row in `state`."""
    at = now - KEEP - DAY
    finished = at if state == State.DONE else None
    with writing(engine) as conn:
        conn.execute(
            received.insert(),
            [{"source": "segment", "message_id": f"{tag}-{i}", "payload": {"n": i},
              "received_at": at + i / 1000} for i in range(n)],
        )  # fmt: skip
        conn.execute(
            outbox.insert(),
            [{"destination": "drip", "kind": "event", "person": f"{tag}-{i}",
              "body": {"n": i}, "message_id": f"{tag}-{i}", "state": state,
              "received_at": at, "available_at": at, "finished_at": finished}
             for i in range(n)],
        )  # fmt: skip


def count(engine: sa.Engine, where: str) -> int:
    with engine.connect() as conn:
        query = sa.text(f"SELECT count(*) FROM received WHERE {where}")
        return int(conn.execute(query).scalar_one())


class Held:
    """`writing`, timed from the lock taken to the commit."""

    def __init__(self) -> None:
        self.seconds: list[float] = []

    @contextlib.contextmanager
    def writing(self, engine: sa.Engine) -> Iterator[sa.Connection]:
        with writing(engine) as conn:
            started = time.perf_counter()
            yield conn
        self.seconds.append(time.perf_counter() - started)


def old_prune(
    engine: sa.Engine, now: float, keep: float, held: Held, limit: int = 1000, rounds: int = 5
) -> int:
    """retention.prune before issue 19: the select runs inside the delete's transaction."""
    deleted = 0
    for tbl, old in retention._prunable(now - keep).items():
        key = sa.tuple_(*tbl.primary_key.columns)
        some = sa.select(*tbl.primary_key.columns).where(old).limit(limit)
        for _ in range(rounds):
            with held.writing(engine) as conn:
                gone = conn.execute(tbl.delete().where(key.in_(some))).rowcount
            deleted += gone
            if gone < limit:
                break
    return deleted


def timed(run: Callable[[Held], int]) -> dict[str, float]:
    held = Held()
    started = time.perf_counter()
    deleted = run(held)
    return {"total_s": time.perf_counter() - started, "max_write_s": max(held.seconds),
            "writes": len(held.seconds), "deleted": deleted}  # fmt: skip


def spread(samples: list[dict[str, float]]) -> dict[str, Any]:
    out: dict[str, Any] = {"runs": samples}
    for k in ("total_s", "max_write_s"):
        values = [s[k] for s in samples]
        out[k] = {"min": min(values), "median": median(values), "max": max(values)}
    return out


def measure(kind: str, url: str, args: argparse.Namespace) -> dict[str, Any]:
    engine = create_engine(url)
    now = time.time()
    figures: dict[str, Any] = {"fill_s": fill(engine, args.rows, now)}
    add_old(engine, "waiting", args.waiting, State.PENDING, now)
    print(f"retention {kind}: filled in {figures['fill_s']:.0f} s")
    old = []
    add_old(engine, "old", args.old, State.DONE, now)  # each probe deletes a few
    for _ in range(args.runs):
        probe = timed(lambda h: old_prune(engine, now, KEEP, h, limit=args.old_limit, rounds=1))
        old.append(probe | {"slice_1000_s": probe["max_write_s"] * 1000 / args.old_limit})
        print(f"retention {kind}: old, {args.old_limit} rows {probe}")
    figures["old"] = spread(old)
    started = time.perf_counter()
    upgrade(engine)
    figures["index_build_s"] = time.perf_counter() - started
    for name, prune in (
        ("index_only", lambda h: old_prune(engine, now, KEEP, h)),
        ("new", lambda h: _new(engine, now, h)),
    ):
        samples = []
        for r in range(args.runs):
            while retention.prune(engine, now, KEEP):  # the same start for every sample
                pass
            add_old(engine, f"{name}{r}", args.old, State.DONE, now)
            samples.append(timed(prune))
            print(f"retention {kind}: {name} {samples[-1]}")
        figures[name] = spread(samples)
    figures["waiting_kept"] = count(engine, "message_id LIKE 'waiting-%'")
    figures["old_left"] = count(engine, f"received_at < {now - KEEP}") - figures["waiting_kept"]
    engine.dispose()
    return figures


def _new(engine: sa.Engine, now: float, held: Held) -> int:
    real = retention.writing
    retention.writing = held.writing  # type: ignore[assignment]
    try:
        return retention.prune(engine, now, KEEP)
    finally:
        retention.writing = real  # type: ignore[assignment]


@contextlib.contextmanager
def store(kind: str, work: Path) -> Iterator[str | None]:
    if kind == "sqlite":
        yield f"sqlite:///{work}/retention.sqlite3"
        return
    with postgres_database("bench_retention") as url:
        yield url


def ms(s: dict[str, float]) -> str:
    return f"{s['median'] * 1000:,.0f} ({s['min'] * 1000:,.0f}-{s['max'] * 1000:,.0f})"


def render(results: dict[str, Any]) -> str:
    p = results["parameters"]
    rows = []
    for kind, f in results["stores"].items():
        o = f["old"]
        slices = [s["slice_1000_s"] for s in o["runs"]]
        rows.append([kind, f"old: one slice of {p['old_limit']} rows (measured)",
                     ms(o["max_write_s"]), ms(o["total_s"]), ""])  # fmt: skip
        rows.append([kind, "old: a slice of 1,000 (extrapolated)",
                     f"~{median(slices):,.0f} s", "", ""])  # fmt: skip
        for name, label in (("index_only", "old + 0012's index"), ("new", "new")):
            s = f[name]
            rows.append([kind, label, ms(s["max_write_s"]), ms(s["total_s"]),
                         f"{s['runs'][0]['writes']} / {s['runs'][0]['deleted']}"])  # fmt: skip
    header = ["store", "prune", "longest write transaction ms", "whole call ms",
              "write transactions / rows deleted"]  # fmt: skip
    notes = [
        f"- {kind}: fill {f['fill_s']:.0f} s; 0012's index build {f['index_build_s']:.1f} s; "
        f"old waiting rows kept {f['waiting_kept']}/{p['waiting']}, old rows left {f['old_left']}"
        for kind, f in results["stores"].items()
    ]
    intro = (
        f"## Retention at {p['rows']:,} pending rows (+ their received rows), "
        f"{p['old']:,} old delivered messages, {p['waiting']:,} old ones still waiting\n\n"
        f"Median (min-max) of {p['runs']} runs each. The worker prunes every 300 s "
        "(before: every 10 s heartbeat)."
    )
    return "\n\n".join([intro, table(header, rows), "\n".join(notes)])


def parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench retention", description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000, help="pending outbox rows")
    parser.add_argument("--old", type=int, default=4000, help="old delivered messages a run")
    parser.add_argument("--waiting", type=int, default=1000, help="old messages still pending")
    parser.add_argument("--old-limit", type=int, default=10, help="rows in the old slice timed")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--stores", default="sqlite,postgres")
    parser.add_argument("--name", default="retention", help="results file: bench/results/NAME.*")
    return parser.parse_args(argv)


def main(argv: Sequence[str] = ()) -> None:
    args = parse(argv)
    results: dict[str, Any] = {"parameters": vars(args), "stores": {}}
    with tempfile.TemporaryDirectory(prefix="bench-retention-") as tmp:
        for kind in args.stores.split(","):
            with store(kind, Path(tmp)) as url:
                if url:
                    results["stores"][kind] = measure(kind, url, args)
    save(args.name, results, render(results))
