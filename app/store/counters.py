"""Counters every process adds to in its own transactions, read by /metrics."""

from __future__ import annotations

import functools
import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from app.metrics import Counts
from app.store.tables import counters


@functools.cache
def _add(dialect: str) -> Any:
    insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(counters)
    return insert.on_conflict_do_update(
        index_elements=["name", "labels"],
        set_={"value": counters.c.value + insert.excluded.value},
    )


def add(conn: sa.Connection, counts: Counts) -> None:
    """Add `counts` to the stored totals, in `conn`'s transaction."""
    rows = [
        {"name": name, "labels": json.dumps(labels), "value": amount}
        for (name, labels), amount in sorted(counts.items())  # one lock order for all writers
        if amount
    ]
    if rows:
        conn.execute(_add(conn.dialect.name), rows)


def totals(conn: sa.Connection) -> dict[tuple[str, tuple[str, ...]], float]:
    return {
        (row.name, tuple(json.loads(row.labels))): row.value
        for row in conn.execute(sa.select(counters))
    }
