"""Outbox operations: accept, enqueue, claim, finish.

Each function takes an open connection inside the caller's transaction, so ingest
stores a whole request atomically and the worker's steps stay small.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from app.store.tables import campaign_members, identities, outbox, received, skipped, workers

LEASE_SECONDS = 60.0  # work held by a dead worker is taken up again after this


@dataclass(frozen=True)
class Pending:
    """One outgoing call to store."""

    destination: str
    kind: str
    person: str
    body: dict[str, Any]
    campaign_id: str | None = None


def _insert(conn: sa.Connection, table: sa.Table) -> Any:
    """The dialect's INSERT, which knows ON CONFLICT."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


def _inserted(conn: sa.Connection, stmt: Any) -> bool:
    """Whether an INSERT ... ON CONFLICT DO NOTHING RETURNING inserted its row.

    RETURNING rather than rowcount: psycopg 3 reports -1 for these statements.
    """
    return conn.execute(stmt).first() is not None


def accept(
    conn: sa.Connection, message_id: str, source: str, payload: Mapping[str, Any], now: float
) -> bool:
    """Record a message as received; False when its id was seen before."""
    stmt = _insert(conn, received).values(
        message_id=message_id, source=source, payload=payload, received_at=now
    )
    stmt = stmt.on_conflict_do_nothing(index_elements=["message_id"])
    return _inserted(conn, stmt.returning(received.c.message_id))


def enqueue(conn: sa.Connection, message_id: str, calls: Sequence[Pending], now: float) -> None:
    if calls:
        conn.execute(
            outbox.insert(),
            [
                {
                    "destination": c.destination,
                    "kind": c.kind,
                    "person": c.person,
                    "campaign_id": c.campaign_id,
                    "body": c.body,
                    "message_id": message_id,
                    "received_at": now,
                    "available_at": now,
                }
                for c in calls
            ],
        )


def record_skip(
    conn: sa.Connection,
    source: str,
    message_id: str | None,
    reason: str,
    detail: str | None,
    payload: Any,
    now: float,
) -> None:
    conn.execute(
        skipped.insert().values(
            source=source,
            message_id=message_id,
            reason=reason,
            detail=detail,
            payload=payload,
            at=now,
        )
    )


def known_emails(conn: sa.Connection, ids: Iterable[str]) -> dict[str, str]:
    """The last email seen for each of `ids` that has one."""
    wanted = [i for i in ids if i]
    if not wanted:
        return {}
    rows = conn.execute(
        sa.select(identities.c.id, identities.c.email).where(identities.c.id.in_(wanted))
    )
    return {row.id: row.email for row in rows}


def learn(conn: sa.Connection, emails: Mapping[str, str], now: float) -> None:
    """Remember the email of each id (the latest wins)."""
    for ident, email in emails.items():
        stmt = _insert(conn, identities).values(id=ident, email=email, updated_at=now)
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=["id"], set_={"email": email, "updated_at": now}
            )
        )


def join_campaign(conn: sa.Connection, email: str, campaign_id: str, now: float) -> bool:
    """Remember that `email` is subscribed to `campaign_id`; False if it already was."""
    stmt = _insert(conn, campaign_members).values(email=email, campaign_id=campaign_id, at=now)
    return _inserted(conn, stmt.on_conflict_do_nothing().returning(campaign_members.c.email))


def due_counts(
    conn: sa.Connection, destination: str, now: float, cap: int = 5000
) -> dict[str, int]:
    """How many rows of each kind are due (counting at most `cap` rows, so it stays cheap)."""
    due = (
        sa.select(outbox.c.kind)
        .where(
            outbox.c.destination == destination,
            outbox.c.state == "pending",
            outbox.c.available_at <= now,
        )
        .limit(cap)
        .subquery()
    )
    rows = conn.execute(sa.select(due.c.kind, sa.func.count()).group_by(due.c.kind))
    return {kind: count for kind, count in rows}


def claim(
    conn: sa.Connection,
    destination: str,
    limit: int,
    now: float,
    lease: float = LEASE_SECONDS,
    kind: str | None = None,
) -> list[sa.Row[Any]]:
    """Lease up to `limit` due rows, at most one per person: the oldest one.

    A person's later rows wait until the earlier ones are done or dead, which keeps
    their updates in order and never two in flight at once. On PostgreSQL the
    candidates are locked with SKIP LOCKED, so concurrent workers never share a row.
    """
    earlier = outbox.alias("earlier")
    first_of_person = (
        sa.select(sa.func.min(earlier.c.id))
        .where(
            earlier.c.destination == outbox.c.destination,
            earlier.c.person == outbox.c.person,
            earlier.c.state == "pending",
        )
        .scalar_subquery()
    )
    due = (
        sa.select(outbox.c.id)
        .where(
            outbox.c.destination == destination,
            outbox.c.state == "pending",
            outbox.c.available_at <= now,
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
    stmt = (
        outbox.update()
        .where(outbox.c.id.in_(due.scalar_subquery()))
        .values(available_at=now + lease, attempts=outbox.c.attempts + 1)
        .returning(*outbox.c)
    )
    return sorted(conn.execute(stmt), key=lambda row: row.id)


def finish(conn: sa.Connection, ids: Sequence[int], now: float) -> None:
    if not ids:
        return
    conn.execute(
        outbox.update()
        .where(outbox.c.id.in_(ids))
        .values(state="done", finished_at=now, error=None)
    )


def retry_later(conn: sa.Connection, ids: Sequence[int], at: float, error: str) -> None:
    conn.execute(outbox.update().where(outbox.c.id.in_(ids)).values(available_at=at, error=error))


def release(conn: sa.Connection, ids: Sequence[int], at: float, error: str) -> None:
    """Give rows back without counting the attempt (delivery is paused, not failing)."""
    conn.execute(
        outbox.update()
        .where(outbox.c.id.in_(ids))
        .values(available_at=at, error=error, attempts=outbox.c.attempts - 1)
    )


def dead_letter(conn: sa.Connection, ids: Sequence[int], code: str, error: str, now: float) -> None:
    conn.execute(
        outbox.update()
        .where(outbox.c.id.in_(ids))
        .values(state="dead", finished_at=now, error_code=code, error=error)
    )


def heartbeat(conn: sa.Connection, name: str, now: float, paused: str | None) -> None:
    """A worker reports that it is alive (and whether delivery is paused)."""
    stmt = _insert(conn, workers).values(name=name, seen_at=now, paused=paused)
    conn.execute(
        stmt.on_conflict_do_update(index_elements=["name"], set_={"seen_at": now, "paused": paused})
    )
