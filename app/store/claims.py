"""Claims: which due rows a worker takes, and the lease that keeps them its own.

A claim leases rows for a while (`LEASE_SECONDS`), so work held by a worker that dies
is taken up again. Claims of one destination take turns (`lock_claims`), and a
person's rows go out in order, never two calls of theirs in flight at once. Each
function takes an open connection inside the caller's transaction.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.selectable import NamedFromClause

from app.store.outbox import State, due_rows
from app.store.tables import outbox

LEASE_SECONDS = 60.0  # work held by a dead worker is taken up again after this


def due_counts(
    conn: sa.Connection, destination: str, now: float, cap: int = 5000
) -> dict[str, int]:
    """How many rows of each kind are due (counting at most `cap` rows, so it stays cheap)."""
    due = sa.select(outbox.c.kind).where(due_rows(destination, now)).limit(cap).subquery()
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
    spare: tuple[str, float] | None = None,
) -> list[sa.Row[Any]]:
    """Lease up to `limit` due rows, at most one per person: the oldest one (of `kind`
    when given; `spare`, (kind, since): not a row of that kind received after `since`).

    A person's later rows wait until the earlier ones are done or dead, which keeps
    their updates in order and never two in flight at once. On PostgreSQL the
    candidates are locked with SKIP LOCKED, so concurrent workers never share a row.
    With `admit`, the candidates (id, person, received_at, kind) are read first and
    leased only if `admit` (which takes the budget they need) says yes: no row is held
    for a call that cannot be made.
    """
    first_of_person = _first_pending_of_person(outbox.alias("earlier"))
    due = (
        sa.select(outbox.c.id)
        .where(
            due_rows(destination, now),
            outbox.c.id == first_of_person,
        )
        .order_by(outbox.c.id)
        .limit(limit)
    )
    if kind is not None:
        due = due.where(outbox.c.kind == kind)
    if spare is not None:
        due = due.where(~((outbox.c.kind == spare[0]) & (outbox.c.received_at > spare[1])))
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
    are taken oldest first, each with their whole run (as far as `rows` allows), so a
    batch holds as few people as it can: a batch claimed while it is in flight is filled
    from everyone else's runs, not from the ends of its people's. Read under
    `lock_claims`, then `lease` what is sent.
    """
    runs = sa.and_(due_rows(destination, now), outbox.c.kind == kind, _unblocked(kind, now))
    horizon = 2 * max(people, rows)
    scan = (
        sa.select(outbox.c.id, outbox.c.person, outbox.c.received_at)
        .where(runs)
        .order_by(outbox.c.id)
        .limit(horizon)
    )
    found: list[sa.Row[Any]] = list(conn.execute(scan))
    own: dict[str, list[sa.Row[Any]]] = {}
    for row in found:
        own.setdefault(row.person, []).append(row)
    chosen = list(own)[:people]
    # Runs that may go on past the rows scanned: those of people with later rows.
    longer = (
        _with_rows_after(conn, destination, chosen, found[-1].id)
        if len(found) == horizon
        else set()
    )
    taken: list[sa.Row[Any]] = []
    for person in chosen:
        run, left = own[person], rows - len(taken)
        if len(run) < left and person in longer:
            run = run + _rest_of_run(conn, destination, kind, now, run[-1], left - len(run))
        taken += run[:left]
        if len(taken) >= rows:
            break
    return sorted(taken, key=lambda row: row.id)


def _with_rows_after(
    conn: sa.Connection, destination: str, people: Sequence[str], after: int
) -> set[str]:
    """Those of `people` with pending rows after id `after`."""
    query = (
        sa.select(outbox.c.person)
        .distinct()
        .where(
            outbox.c.destination == destination,
            outbox.c.person.in_(people),
            outbox.c.state == State.PENDING,
            outbox.c.id > after,
        )
    )
    return set(conn.execute(query).scalars())


def _rest_of_run(
    conn: sa.Connection, destination: str, kind: str, now: float, last: sa.Row[Any], limit: int
) -> list[sa.Row[Any]]:
    """Up to `limit` rows (id, person, received_at) that carry on `last`'s person's run."""
    query = (
        sa.select(outbox.c.id, outbox.c.person, outbox.c.received_at)
        .where(_run_after(destination, last.person, kind, now, last.id))
        .order_by(outbox.c.id)
        .limit(limit)
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
    later = _run_after(row.destination, row.person, row.kind, now, row.id)
    return [row, *_lease(conn, later, now, lease)]


def _run_after(
    destination: str, person: str, kind: str, now: float, after: int
) -> sa.ColumnElement[bool]:
    """`person`'s rows that carry on their run after id `after`: due, of `kind`, and with
    no pending row of theirs in between that is of another kind or not due."""
    return sa.and_(
        due_rows(destination, now),
        outbox.c.person == person,
        outbox.c.kind == kind,
        outbox.c.id > after,
        _unblocked(kind, now, after=after),
    )


def _unblocked(kind: str, now: float, after: int = 0) -> sa.ColumnElement[bool]:
    """No earlier pending row of the person (after id `after`) is of another kind or not due."""
    earlier = outbox.alias("earlier")
    blocker = _first_pending_of_person(
        earlier,
        earlier.c.id < outbox.c.id,
        earlier.c.id > after,
        sa.or_(earlier.c.kind != kind, earlier.c.available_at > now),
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


def _first_pending_of_person(
    earlier: NamedFromClause, *more: sa.ColumnElement[bool]
) -> sa.ScalarSelect[Any]:
    """The smallest id among the pending rows (`earlier`, an alias of the outbox) of the
    outer row's person and destination that also meet `more`: a scalar MIN over
    outbox_person, which PostgreSQL plans per row even before it has statistics on a
    fresh table."""
    return (
        sa.select(sa.func.min(earlier.c.id))
        .where(
            earlier.c.destination == outbox.c.destination,
            earlier.c.person == outbox.c.person,
            earlier.c.state == State.PENDING,
            *more,
        )
        .scalar_subquery()
    )
