"""Heartbeats: each worker reports that it is alive and whether delivery is paused."""

from __future__ import annotations

import functools
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from app.store.tables import workers

FRESH = 60.0  # a worker must have reported within this many seconds to count as running


@functools.cache
def _heartbeat(dialect: str) -> Any:
    insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(workers)
    return insert.on_conflict_do_update(
        index_elements=["name"],
        set_={"seen_at": insert.excluded.seen_at, "paused": insert.excluded.paused},
    )


def heartbeat(conn: sa.Connection, name: str, now: float, paused: str | None) -> None:
    conn.execute(_heartbeat(conn.dialect.name), {"name": name, "seen_at": now, "paused": paused})


def running(conn: sa.Connection, now: float) -> list[sa.Row[Any]]:
    """Workers that reported within the last minute, by name."""
    query = sa.select(workers).where(workers.c.seen_at > now - FRESH).order_by(workers.c.name)
    return list(conn.execute(query))
