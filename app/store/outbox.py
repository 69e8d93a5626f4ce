"""The outbox: one row per outgoing call, from enqueue to delivered or dead.

A row's `body` is exactly what leaves: a Drip record (the object inside Drip's
wrapper) or a Segment message as analytics-python sends it. Each function takes
an open connection inside the caller's transaction, so ingest stores a whole
request atomically and the worker's steps stay small.

This module stores calls, settles the rows the worker sent (delivered, retried,
given back, dead), forgets a deleted person's rows and counts the backlog. Which
rows a worker takes is in `claims`, dead letters in `dead_letters`, what `/admin`
shows of the last hour in `recent`.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from app.store.engine import mentions
from app.store.tables import outbox

# Every row's destination. Queries by state name them all, so that the index that
# starts with the destination (outbox_due) serves them instead of a scan of the table.
DESTINATIONS = ("drip", "segment")


class State(enum.StrEnum):
    PENDING = "pending"  # waiting, being tried, or leased by a worker
    DONE = "done"  # delivered
    DEAD = "dead"  # could not be delivered: waits for replay or discard
    # Discarded dead letters stay for the audit trail, in a state never claimed
    # ("discarded" does not fit the column, String(8)).
    DROPPED = "dropped"


@dataclass(frozen=True)
class Pending:
    """One outgoing call to store, for the message it came from."""

    message_id: str
    destination: str
    kind: str
    person: str  # the ordering key: one person's calls go out in order, one at a time
    email: str  # who the call is about, for people reading the outbox
    body: dict[str, Any]
    campaign_id: str | None = None
    received_at: float | None = None  # None: now, when it is enqueued


def enqueue(conn: sa.Connection, calls: Sequence[Pending], now: float) -> None:
    if calls:
        conn.execute(outbox.insert(), [_row(c, now) for c in calls])


def _row(call: Pending, now: float) -> dict[str, Any]:
    received_at = now if call.received_at is None else call.received_at
    return {
        "message_id": call.message_id,
        "destination": call.destination,
        "kind": call.kind,
        "person": call.person,
        "email": call.email,
        "body": call.body,
        "campaign_id": call.campaign_id,
        "received_at": received_at,
        "available_at": received_at,
    }


def due_rows(destination: str, now: float) -> sa.ColumnElement[bool]:
    """Rows of `destination` waiting to be sent whose time has come."""
    return sa.and_(
        outbox.c.destination == destination,
        outbox.c.state == State.PENDING,
        outbox.c.available_at <= now,
    )


# Kinds whose row names someone only until it is delivered: a deletion's proof keeps
# ids and times, not the address it deleted.
# ("deleted": the Track of Drip's `subscriber.deleted`, on its way to Segment.)
FORGOTTEN_WHEN_DONE = frozenset({"delete", "deleted"})
FORGOTTEN = "forgotten"  # the person key of rows whose person was deleted


def finish(conn: sa.Connection, ids: Sequence[int], now: float, forget: bool = False) -> None:
    """Mark rows delivered; `forget`: also blank those of FORGOTTEN_WHEN_DONE kinds."""
    if ids:
        _set(conn, ids, state=State.DONE, finished_at=now, error=None)
    if ids and forget:
        done = outbox.c.id.in_(ids) & outbox.c.kind.in_(FORGOTTEN_WHEN_DONE)
        conn.execute(outbox.update().where(done).values(**_blank()))


def _blank() -> dict[str, Any]:
    return {"body": {}, "email": None, "person": FORGOTTEN}


def mark_merged(conn: sa.Connection, merged_into: Mapping[int, int]) -> None:
    """Note rows delivered inside one merged record: row id -> the record's first row id."""
    if merged_into:
        stmt = (
            outbox.update()
            .where(outbox.c.id == sa.bindparam("row_id"))
            .values(merged_into=sa.bindparam("into"))
        )
        conn.execute(stmt, [{"row_id": i, "into": into} for i, into in merged_into.items()])


def retry_later(conn: sa.Connection, ids: Sequence[int], at: float, error: str) -> None:
    _set(conn, ids, available_at=at, error=error)


def release(conn: sa.Connection, ids: Sequence[int], at: float, error: str) -> None:
    """Give rows back without counting the attempt (delivery is paused, not failing)."""
    _set(conn, ids, available_at=at, error=error, attempts=outbox.c.attempts - 1)


def unclaim(conn: sa.Connection, ids: Sequence[int], now: float) -> None:
    """Give claimed rows back untried (a worker stopping): due now, attempt not counted."""
    _set(conn, ids, available_at=now, attempts=outbox.c.attempts - 1)


def dead_letter(conn: sa.Connection, ids: Sequence[int], code: str, error: str, now: float) -> None:
    _set(conn, ids, state=State.DEAD, finished_at=now, error_code=code, error=error)


def _set(conn: sa.Connection, ids: Sequence[int], **values: Any) -> None:
    conn.execute(outbox.update().where(outbox.c.id.in_(ids)).values(**values))


# A deleted person: where their rows went, and forgetting them.


def emails_of(conn: sa.Connection, person: str) -> list[str]:
    """Every address the bridge sent Drip subscriber updates for `person` under (the
    email of each upsert and any `new_email`), lowercased, oldest first."""
    query = (
        sa.select(outbox.c.email, outbox.c.body)
        .where(
            outbox.c.destination == "drip",
            outbox.c.person == person,
            outbox.c.kind.in_(("subscriber", "campaign", "unsubscribe")),
        )
        .order_by(outbox.c.id)
    )
    found: dict[str, None] = {}
    for email, body in conn.execute(query):
        for address in (email, body.get("email"), body.get("new_email")):
            if isinstance(address, str) and address:
                found[address.lower()] = None
    return list(found)


def forget(conn: sa.Connection, person: str, emails: Sequence[str], values: Sequence[str]) -> int:
    """A person's rows: waiting and dead ones deleted (never sent), the rest blanked
    (ids, kinds, states and times kept). `person` is their ordering key, `emails` their
    addresses, `values` what their bodies may hold (userId, emails). How many rows."""
    theirs = sa.or_(
        outbox.c.person == person,
        sa.func.lower(outbox.c.email).in_(sorted({e.lower() for e in emails})),
        mentions(outbox.c.body, values),
    )
    unsent = outbox.c.state.in_((State.PENDING, State.DEAD))
    gone = conn.execute(outbox.delete().where(theirs & unsent)).rowcount
    blanked = conn.execute(outbox.update().where(theirs & ~unsent).values(**_blank())).rowcount
    return int(gone) + int(blanked)


# What people read.


def bodies(conn: sa.Connection, message_id: str) -> list[dict[str, Any]]:
    """What the calls stored for one message will send, in order."""
    query = sa.select(outbox.c.body).where(outbox.c.message_id == message_id)
    return list(conn.execute(query.order_by(outbox.c.id)).scalars())


def counts_by_state(conn: sa.Connection) -> dict[tuple[str, str], int]:
    """(destination, state) -> rows, for the states that wait: pending and dead."""
    query = (
        sa.select(outbox.c.destination, outbox.c.state, sa.func.count())
        .where(
            outbox.c.destination.in_(DESTINATIONS), outbox.c.state.in_((State.PENDING, State.DEAD))
        )
        .group_by(outbox.c.destination, outbox.c.state)
    )
    return {(destination, state): count for destination, state, count in conn.execute(query)}
