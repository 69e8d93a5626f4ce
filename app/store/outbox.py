"""The outbox: one row per outgoing call, from enqueue to delivered or dead.

A row's `body` is exactly what leaves: a Drip record (the object inside Drip's
wrapper) or a Segment message as analytics-python sends it. Each function takes
an open connection inside the caller's transaction, so ingest stores a whole
request atomically and the worker's steps stay small.
"""

from __future__ import annotations

import enum
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from app.store.engine import mentions
from app.store.tables import outbox, received

LEASE_SECONDS = 60.0  # work held by a dead worker is taken up again after this
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


def _due(destination: str, now: float) -> sa.ColumnElement[bool]:
    """Rows of `destination` waiting to be sent whose time has come."""
    return sa.and_(
        outbox.c.destination == destination,
        outbox.c.state == State.PENDING,
        outbox.c.available_at <= now,
    )


def due_counts(
    conn: sa.Connection, destination: str, now: float, cap: int = 5000
) -> dict[str, int]:
    """How many rows of each kind are due (counting at most `cap` rows, so it stays cheap)."""
    due = sa.select(outbox.c.kind).where(_due(destination, now)).limit(cap).subquery()
    rows = conn.execute(sa.select(due.c.kind, sa.func.count()).group_by(due.c.kind))
    return {kind: count for kind, count in rows}


# PostgreSQL advisory lock held by the one claim at work on a destination. Claims of
# a person's consecutive rows read "every earlier row is due" before they lease, so
# two of them at once could lease a person's rows around one another's.
CLAIM_LOCK = 0x636C6169  # "clai"
Admit = Callable[[Sequence[sa.Row[Any]]], bool]


def lock_claims(conn: sa.Connection, destination: str) -> None:
    """Take the claim lock of `destination` until the transaction ends (SQLite: the
    write transaction already excludes other claims)."""
    if conn.dialect.name == "postgresql":
        key = CLAIM_LOCK + zlib.crc32(destination.encode()) % 1024
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(key)))


def claim(
    conn: sa.Connection,
    destination: str,
    limit: int,
    now: float,
    lease: float = LEASE_SECONDS,
    kind: str | None = None,
    admit: Admit | None = None,
) -> list[sa.Row[Any]]:
    """Lease up to `limit` due rows, at most one per person: the oldest one.

    A person's later rows wait until the earlier ones are done or dead, which keeps
    their updates in order and never two in flight at once. On PostgreSQL the
    candidates are locked with SKIP LOCKED, so concurrent workers never share a row.
    With `admit`, the candidates (id, person, received_at, kind) are read first and
    leased only if `admit` (which
    takes the budget they need) says yes: no row is held for a call that cannot be made.
    """
    earlier = outbox.alias("earlier")
    first_of_person = (
        sa.select(sa.func.min(earlier.c.id))
        .where(
            earlier.c.destination == outbox.c.destination,
            earlier.c.person == outbox.c.person,
            earlier.c.state == State.PENDING,
        )
        .scalar_subquery()
    )
    due = (
        sa.select(outbox.c.id)
        .where(
            _due(destination, now),
            # A scalar MIN (not NOT EXISTS): planned per row from outbox_person even
            # before PostgreSQL has statistics on a fresh table.
            outbox.c.id == first_of_person,
        )
        .order_by(outbox.c.id)
        .limit(limit)
    )
    if kind is not None:
        due = due.where(outbox.c.kind == kind)
    if conn.dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    if admit is None:
        return _lease(conn, outbox.c.id.in_(due.scalar_subquery()), now, lease)
    lock_claims(conn, destination)
    found = conn.execute(due.add_columns(outbox.c.person, outbox.c.received_at, outbox.c.kind))
    candidates: list[sa.Row[Any]] = list(found)
    if not candidates or not admit(candidates):
        return []
    return _lease(conn, outbox.c.id.in_([c.id for c in candidates]), now, lease)


def run_candidates(
    conn: sa.Connection, destination: str, kind: str, now: float, *, people: int, rows: int
) -> list[sa.Row[Any]]:
    """The due rows of `kind` (id, person, received_at) of up to `people` people, at most
    `rows`, each person's from their oldest pending row on while those are due and of `kind`.

    A batch call carries a person's consecutive rows together, in order; a row behind
    one of another kind, or behind one in flight or waiting for a retry, waits. People
    are taken oldest first. Read under `lock_claims`, then `lease` what is sent.
    """
    runs = sa.and_(_due(destination, now), outbox.c.kind == kind, _unblocked(kind, now))
    oldest = (
        sa.select(outbox.c.person).where(runs).order_by(outbox.c.id).limit(2 * max(people, rows))
    )
    chosen = list(dict.fromkeys(conn.execute(oldest).scalars()))[:people]
    if not chosen:
        return []
    query = (
        sa.select(outbox.c.id, outbox.c.person, outbox.c.received_at)
        .where(runs, outbox.c.person.in_(chosen))
        .order_by(outbox.c.id)
        .limit(rows)
    )
    return list(conn.execute(query))


def lease(conn: sa.Connection, ids: Sequence[int], now: float, seconds: float) -> list[sa.Row[Any]]:
    """Lease the rows `ids` (read by `run_candidates`) for `seconds`; the rows, in order."""
    return _lease(conn, outbox.c.id.in_(ids), now, seconds)


def claim_run_of(
    conn: sa.Connection, row: sa.Row[Any], now: float, lease: float = LEASE_SECONDS
) -> list[sa.Row[Any]]:
    """Lease the due rows that follow `row` (just leased) for its person while they are
    of its kind: `row` and those, in order."""
    later = sa.and_(
        _due(row.destination, now),
        outbox.c.person == row.person,
        outbox.c.kind == row.kind,
        outbox.c.id > row.id,
        _unblocked(row.kind, now, after=row.id),
    )
    return [row, *_lease(conn, later, now, lease)]


def _unblocked(kind: str, now: float, after: int = 0) -> sa.ColumnElement[bool]:
    """No earlier pending row of the person (after id `after`) is of another kind or not due.

    A scalar MIN over the person's earlier rows (outbox_person), as in `claim`.
    """
    earlier = outbox.alias("earlier")
    blocker = (
        sa.select(sa.func.min(earlier.c.id))
        .where(
            earlier.c.destination == outbox.c.destination,
            earlier.c.person == outbox.c.person,
            earlier.c.state == State.PENDING,
            earlier.c.id < outbox.c.id,
            earlier.c.id > after,
            sa.or_(earlier.c.kind != kind, earlier.c.available_at > now),
        )
        .scalar_subquery()
    )
    return blocker.is_(None)


def _lease(
    conn: sa.Connection, which: sa.ColumnElement[bool], now: float, lease: float
) -> list[sa.Row[Any]]:
    stmt = (
        outbox.update()
        .where(which)
        .values(available_at=now + lease, attempts=outbox.c.attempts + 1)
        .returning(*outbox.c)
    )
    return sorted(conn.execute(stmt), key=lambda row: row.id)


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


# What people read: counts for /metrics and /admin, dead letters, errors being retried.


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


def _dead(ids: Sequence[int] | None, destination: str | None) -> sa.ColumnElement[bool]:
    """Dead rows, optionally only `ids` (None: all) of one `destination`."""
    condition = outbox.c.destination.in_(DESTINATIONS) & (outbox.c.state == State.DEAD)
    if ids is not None:
        condition = condition & outbox.c.id.in_(ids)
    if destination is not None:
        condition = condition & (outbox.c.destination == destination)
    return condition


def dead_letters(
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


def count_dead(conn: sa.Connection, destination: str | None = None) -> int:
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
