"""Deletion requests: the proof that a person was forgotten (ids and times only).

Whether Drip has deleted the subscribers yet is read from the request's `delete`
rows in the outbox. Each function takes an open connection inside the caller's
transaction.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from app.store.outbox import State
from app.store.tables import deletions, outbox


@dataclass(frozen=True)
class Deletion:
    """One deletion request and how far Drip's side of it has gone."""

    message_id: str
    user_id: str
    subscribers: int  # Drip subscribers to delete
    requested_at: float
    waiting: int  # deletions at Drip still to send (retried, or dead)
    failed: int  # dead-lettered

    @property
    def state(self) -> str:
        if self.failed:
            return "failed"
        return "pending" if self.waiting else "done"


def record(
    conn: sa.Connection, message_id: str, user_id: str, subscribers: int, now: float
) -> None:
    row = {"message_id": message_id, "user_id": user_id, "subscribers": subscribers}
    conn.execute(deletions.insert().values(**row, requested_at=now))


def recent(conn: sa.Connection, limit: int) -> list[Deletion]:
    """The latest deletion requests, newest first, pending ones among them."""
    calls = outbox.c.message_id == deletions.c.message_id
    calls = calls & (outbox.c.destination == "drip") & (outbox.c.kind == "delete")
    waiting = sa.func.count(outbox.c.id).filter(outbox.c.state.in_((State.PENDING, State.DEAD)))
    failed = sa.func.count(outbox.c.id).filter(outbox.c.state == State.DEAD)
    query = (
        sa.select(*deletions.c, waiting.label("waiting"), failed.label("failed"))
        .select_from(deletions.outerjoin(outbox, calls))
        .group_by(*deletions.c)
        .order_by(deletions.c.requested_at.desc(), deletions.c.message_id)
        .limit(limit)
    )
    return [Deletion(**row._asdict()) for row in conn.execute(query)]
