"""Intake: how fast the worker maps what the tracking API stored (the inbox).

The inbox is filled with the ingest benchmark's tracks, as single calls and as
batches of 20, then `intake.map_waiting` runs until it is empty: messages mapped and
enqueued per second, on SQLite and on PostgreSQL. Ingest can outrun this for a
while (the inbox absorbs bursts); Drip's budget is far below either.

    python -m bench intake [--messages 20000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Sequence
from typing import Any

from app.config import Config
from app.pipeline import intake
from app.store import create_engine, inbox, upgrade
from bench.common import ACCOUNT_ID, DRIP_TOKEN, postgres_database, save, table
from bench.ingest import ENDPOINTS, body


def measure(url: str, messages: int) -> dict[str, dict[str, Any]]:
    engine = create_engine(url)
    upgrade(engine)
    config = Config(drip_account_id=ACCOUNT_ID, drip_api_token=DRIP_TOKEN, database_url=url)
    results = {}
    for endpoint in ENDPOINTS:
        for n in range(messages // endpoint.messages):
            text = body(endpoint, f"{endpoint.name}-{n}", n).decode()
            inbox.put(engine, endpoint.path.removeprefix("/v1/"), text, time.time())
        start, intakes = time.perf_counter(), 0
        while intake.map_waiting(engine, config):
            intakes += 1
        elapsed = time.perf_counter() - start
        results[endpoint.name] = {"messages_per_s": messages / elapsed, "intakes": intakes}
        print(f"  {engine.dialect.name:10} {endpoint.name:8} {messages / elapsed:8.0f} messages/s")
    engine.dispose()
    return results


def main(argv: Sequence[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench intake", description=__doc__)
    parser.add_argument("--messages", type=int, default=20_000)
    args = parser.parse_args(argv)
    figures: dict[str, Any] = {"parameters": vars(args)}
    with tempfile.TemporaryDirectory() as folder, postgres_database("drip_intake") as pg_url:
        figures["sqlite"] = measure(f"sqlite:///{folder}/intake.sqlite3", args.messages)
        if pg_url:
            figures["postgres"] = measure(pg_url, args.messages)
    rows = [
        [db, name, f"{r['messages_per_s']:.0f}", r["intakes"]]
        for db in ("sqlite", "postgres") if db in figures
        for name, r in figures[db].items()
    ]  # fmt: skip
    summary = "\n\n".join([
        f"## Intake ({args.messages} messages per run; one worker mapping the inbox)",
        table(["store", "requests", "messages/s mapped", "intake transactions"], rows),
    ])  # fmt: skip
    save("intake", figures, summary)
