"""What the outbox did lately, for `/admin`: rows delivered and merged since a time,
and the errors being retried."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from app.store.outbox import DESTINATIONS, State
from app.store.tables import outbox


def delivered_since(conn: sa.Connection, since: float) -> dict[str, int]:
    """Rows delivered per destination since `since`."""
    query = (
        sa.select(outbox.c.destination, sa.func.count())
        .where(outbox.c.state == State.DONE, outbox.c.finished_at > since)
        .group_by(outbox.c.destination)
    )
    return {destination: count for destination, count in conn.execute(query)}


def merged_since(conn: sa.Connection, since: float) -> tuple[int, int]:
    """(messages delivered merged with others, records saved by merging) since `since`."""
    query = sa.select(
        sa.func.count(),
        sa.func.count(sa.distinct(outbox.c.merged_into)),
    ).where(
        outbox.c.state == State.DONE,
        outbox.c.finished_at > since,
        outbox.c.merged_into.is_not(None),
    )
    merged, records = conn.execute(query).one()
    return int(merged), int(merged) - int(records)


def retrying(conn: sa.Connection, limit: int) -> list[sa.Row[Any]]:
    """Pending rows whose last try failed, newest first."""
    query = (
        sa.select(outbox)
        .where(
            outbox.c.destination.in_(DESTINATIONS),
            outbox.c.state == State.PENDING,
            outbox.c.error.is_not(None),
        )
        .order_by(outbox.c.id.desc())
        .limit(limit)
    )
    return list(conn.execute(query))
