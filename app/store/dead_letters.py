"""Dead letters: rows that could not be delivered, listed with the message they came
from, replayed (sent again) or discarded (kept, never sent)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from app.store.outbox import DESTINATIONS, State
from app.store.tables import outbox, received


def _dead(ids: Sequence[int] | None, destination: str | None) -> sa.ColumnElement[bool]:
    """Dead rows, optionally only `ids` (None: all) of one `destination`."""
    condition = outbox.c.destination.in_(DESTINATIONS) & (outbox.c.state == State.DEAD)
    if ids is not None:
        condition = condition & outbox.c.id.in_(ids)
    if destination is not None:
        condition = condition & (outbox.c.destination == destination)
    return condition


def read(
    conn: sa.Connection, destination: str | None = None, limit: int | None = None
) -> list[sa.Row[Any]]:
    """Dead rows, oldest first, each with `message`: the payload originally received
    (from the other side: a row for Drip came from Segment, and the other way round)."""
    came_from = received.c.source == sa.case(
        (outbox.c.destination == "drip", "segment"), else_="drip"
    )  # an equality on the whole key of `received`: one index lookup per dead letter
    query = (
        sa.select(*outbox.c, received.c.payload.label("message"))
        .select_from(
            outbox.outerjoin(received, (received.c.message_id == outbox.c.message_id) & came_from)
        )
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
    """Put dead rows back to pending, due now, with a fresh attempt count; their ids.

    `received_at` restarts too, so a replayed row gets the full 72 hours of retries.
    `ids=None` replays every dead row (of `destination`). A conditional update on
    the dead state: a row someone changed meanwhile is left alone (and not returned).
    """
    return _update_dead(
        conn,
        ids,
        destination,
        state=State.PENDING,
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
    """Mark dead rows dropped (never delivered, kept with their error); their ids."""
    return _update_dead(conn, ids, destination, state=State.DROPPED, finished_at=now)


def _update_dead(
    conn: sa.Connection, ids: Sequence[int] | None, destination: str | None, **values: Any
) -> list[int]:
    stmt = outbox.update().where(_dead(ids, destination)).values(**values)
    return sorted(conn.execute(stmt.returning(outbox.c.id)).scalars())
