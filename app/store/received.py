"""What arrived: the ids of every message accepted (de-duplication, and the original
payload shown beside a dead letter), and the messages skipped with their reason.

Each function takes an open connection inside the caller's transaction.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from app.store.engine import mentions
from app.store.tables import received, skipped


@dataclass(frozen=True)
class Skip:
    """A message accepted or refused without a delivery, and why."""

    source: str
    message_id: str | None
    reason: str
    detail: str | None
    payload: Any


@functools.cache
def _accept(dialect: str) -> Any:
    """INSERT ... ON CONFLICT DO NOTHING RETURNING, built once per dialect."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return (
        insert(received)
        .on_conflict_do_nothing(index_elements=["source", "message_id"])
        .returning(received.c.message_id)
    )


def accept(
    conn: sa.Connection,
    source: str,
    messages: Sequence[tuple[str, Any]],
    now: float,
    received_at: Mapping[str, float] | None = None,
) -> set[str]:
    """Record messages as received (at `now` unless `received_at` says), by id;
    returns the ids not seen before.

    RETURNING rather than rowcount: psycopg 3 reports -1 for ON CONFLICT inserts.
    """
    if not messages:
        return set()
    times = received_at or {}
    rows = [
        {"message_id": mid, "source": source, "payload": body, "received_at": times.get(mid, now)}
        for mid, body in messages
    ]
    return {row.message_id for row in conn.execute(_accept(conn.dialect.name), rows)}


def record_skips(conn: sa.Connection, skips: Sequence[Skip], now: float) -> None:
    if skips:
        conn.execute(skipped.insert(), [vars(s) | {"at": now} for s in skips])


def recent_skips(conn: sa.Connection, limit: int) -> list[sa.Row[Any]]:
    """The latest skips, newest first."""
    query = sa.select(skipped).order_by(skipped.c.id.desc()).limit(limit)
    return list(conn.execute(query))


# Every source. Queries by time name them all, so that the index (source, received_at)
# serves a time range instead of a walk of every row.
SOURCES = ("segment", "drip")


def counts_since(conn: sa.Connection, since: float) -> dict[str, int]:
    """Messages received per source since `since`."""
    query = (
        sa.select(received.c.source, sa.func.count())
        .where(received.c.source.in_(SOURCES), received.c.received_at > since)
        .group_by(received.c.source)
    )
    return {source: count for source, count in conn.execute(query)}


def latest(conn: sa.Connection, source: str) -> float | None:
    """When the newest message kept from `source` arrived (None: none is kept)."""
    query = sa.select(sa.func.max(received.c.received_at)).where(received.c.source == source)
    newest: float | None = conn.execute(query).scalar()
    return newest


def forget(conn: sa.Connection, values: Sequence[str], deletion_id: str) -> int:
    """Blank every stored payload (received and skipped) that holds one of `values`
    (a person's userId and emails), keeping ids and times; how many were blanked."""
    purged = {"purged_by_deletion": deletion_id}
    kept = conn.execute(
        received.update().where(mentions(received.c.payload, values)).values(payload=purged)
    ).rowcount
    said = sa.or_(mentions(skipped.c.payload, values), mentions(skipped.c.detail, values))
    skips = conn.execute(skipped.update().where(said).values(payload=None, detail=None)).rowcount
    return int(kept) + int(skips)
