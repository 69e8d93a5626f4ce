"""Dead letters: outbox rows that could not be delivered, listed, replayed or dropped.

Each function takes an open connection inside the caller's transaction. Replay and
discard are conditional updates on `state = 'dead'`, so a row the worker or another
operator changed meanwhile is left alone and reported as not found.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from app.store.tables import outbox, received

DEAD = "dead"
# Discarded rows are kept for the audit trail, in a state the worker never claims.
# "discarded" does not fit the column (String(8)); "dropped" does.
DROPPED = "dropped"


def _dead(ids: Sequence[int] | None, destination: str | None) -> sa.ColumnElement[bool]:
    """Dead rows, optionally only `ids` (None: all) of one `destination`."""
    condition = outbox.c.state == DEAD
    if ids is not None:
        condition = condition & outbox.c.id.in_(ids)
    if destination is not None:
        condition = condition & (outbox.c.destination == destination)
    return condition


def dead_letters(
    conn: sa.Connection, destination: str | None = None, limit: int | None = None
) -> list[sa.Row[Any]]:
    """Dead rows, oldest first, each with `message`: the payload originally received."""
    query = (
        sa.select(*outbox.c, received.c.payload.label("message"))
        .select_from(outbox.outerjoin(received, received.c.message_id == outbox.c.message_id))
        .where(_dead(None, destination))
        .order_by(outbox.c.id)
        .limit(limit)
    )
    return list(conn.execute(query))


def count(conn: sa.Connection, destination: str | None = None) -> int:
    query = sa.select(sa.func.count()).select_from(outbox).where(_dead(None, destination))
    return int(conn.execute(query).scalar_one())


def replay(
    conn: sa.Connection, ids: Sequence[int] | None, destination: str | None, now: float
) -> list[int]:
    """Put dead rows back to pending, due now, with a fresh attempt count.

    `received_at` restarts too, so a replayed row gets the full 72 hours of retries.

    Returns the ids replayed; `ids=None` replays every dead row (of `destination`).
    """
    return _update(
        conn,
        ids,
        destination,
        state="pending",
        available_at=now,
        received_at=now,
        attempts=0,
        finished_at=None,
        error=None,
        error_code=None,
    )


def discard(
    conn: sa.Connection, ids: Sequence[int] | None, destination: str | None, now: float
) -> list[int]:
    """Mark dead rows dropped (never delivered, kept with their error); returns their ids."""
    return _update(conn, ids, destination, state=DROPPED, finished_at=now)


def _update(
    conn: sa.Connection, ids: Sequence[int] | None, destination: str | None, **values: Any
) -> list[int]:
    stmt = outbox.update().where(_dead(ids, destination)).values(**values)
    return sorted(conn.execute(stmt.returning(outbox.c.id)).scalars())
