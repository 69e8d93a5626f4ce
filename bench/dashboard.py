"""Dashboard scale: `/admin` and `/metrics` with 10k and 1M rows, with and without the
time indexes of migration 0006.

Each store gets `received` and delivered `outbox` rows spread over the retention
(30 days, 1% of them in the last hour), a tenth as many skips, and a few dead
letters and pending rows; each page is then fetched alternately with the indexes
and with them dropped (as before 0006), and the median of the fetches is reported.

    python -m bench dashboard [--rows 10000 1000000] [--fetches 5] [--no-postgres]
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
import time
from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from flask.testing import FlaskClient

from app.config import Config
from app.delivery.budget import dispose_budgets
from app.factory import create_app
from app.store import create_engine, upgrade
from app.store.tables import metadata, outbox, received, skipped
from bench.common import ACCOUNT_ID, DRIP_TOKEN, median, postgres_database, save, table

CHUNK = 20_000
DAY = 86400.0
PASSWORD = "bench-admin"
# The indexes migration 0006 added, by name.
TIME_INDEXES = ("received_received_at", "outbox_finished", "skipped_at",
                "identities_updated_at", "campaign_members_at")  # fmt: skip
INDEXES = [ix for t in metadata.sorted_tables for ix in t.indexes if ix.name in TIME_INDEXES]


def fill(engine: sa.Engine, n: int) -> None:
    """`n` received and delivered rows over 30 days (1% in the last hour), n/10 skips."""
    now = time.time()

    def at(i: int) -> float:
        return now - (i % 100) * 0.3 * DAY if i % 100 else now - 60

    with engine.begin() as conn:
        for first in range(0, n, CHUNK):
            span = range(first, min(n, first + CHUNK))
            conn.execute(received.insert(), [
                {"source": "segment", "message_id": f"m{i}", "payload": {"type": "track"},
                 "received_at": at(i)} for i in span])  # fmt: skip
            conn.execute(outbox.insert(), [
                {"destination": "drip", "kind": "event", "person": f"p{i % 5000}",
                 "email": f"p{i % 5000}@example.com", "body": {"email": "x@example.com"},
                 "message_id": f"m{i}", "state": "done" if i % 1000 else "dead",
                 "received_at": at(i), "available_at": at(i), "finished_at": at(i)}
                for i in span])  # fmt: skip
            conn.execute(skipped.insert(), [
                {"source": "segment", "message_id": f"s{i}", "reason": "missing_email",
                 "detail": None, "payload": {"type": "track"}, "at": at(i)}
                for i in span if i % 10 == 0])  # fmt: skip


def set_indexes(engine: sa.Engine, present: bool) -> None:
    with engine.begin() as conn:
        for index in INDEXES:
            if present:
                index.create(conn, checkfirst=True)
            else:
                index.drop(conn, checkfirst=True)
        if engine.dialect.name == "postgresql":
            conn.execute(sa.text("ANALYZE"))


def fetch_ms(client: FlaskClient, path: str) -> float:
    start = time.perf_counter()
    response = client.get(path, auth=("admin", PASSWORD))
    elapsed = (time.perf_counter() - start) * 1000
    assert response.status_code == 200, response.status_code
    return elapsed


def measure(url: str, rows: int, fetches: int) -> dict[str, dict[str, float]]:
    engine = create_engine(url)
    upgrade(engine)
    fill(engine, rows)
    config = Config(drip_account_id=ACCOUNT_ID, drip_api_token=DRIP_TOKEN, database_url=url,
                    admin_password=PASSWORD)  # fmt: skip
    app = create_app(config)
    client = app.test_client()
    times: dict[str, list[float]] = {}
    for _ in range(fetches):
        for present in (True, False):
            set_indexes(engine, present)
            for path in ("/admin", "/metrics"):
                label = f"{path} {'with' if present else 'without'} indexes"
                times.setdefault(label, []).append(fetch_ms(client, path))
    set_indexes(engine, True)
    dispose_budgets(app)
    app.extensions["engine"].dispose()
    engine.dispose()
    return {label: {"median_ms": median(values)} for label, values in times.items()}


@contextlib.contextmanager
def stores(no_postgres: bool) -> Iterator[dict[str, str]]:
    with tempfile.TemporaryDirectory() as folder, postgres_database("bench_dash") as pg:
        urls = {"sqlite": f"sqlite:///{folder}/dash.sqlite3"}
        if pg and not no_postgres:
            urls["postgres"] = pg
        yield urls


def main(argv: Sequence[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench dashboard", description=__doc__)
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 1_000_000])
    parser.add_argument("--fetches", type=int, default=5)
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args(argv)
    figures: dict[str, Any] = {}
    lines = []
    for rows in args.rows:
        with stores(args.no_postgres) as urls:
            for store, url in urls.items():
                result = measure(url, rows, args.fetches)
                figures[f"{store} {rows}"] = result
                for label, value in result.items():
                    lines.append((store, f"{rows:,}", label, f"{value['median_ms']:.1f}"))
                    print(f"  {store:8} {rows:>9,} {label:28} {value['median_ms']:8.1f} ms")
    summary = "## Dashboard and metrics at scale (median of the fetches)\n\n" + table(
        ("store", "rows", "page", "ms"), lines
    )
    save("dashboard", figures, summary)
