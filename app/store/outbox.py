"""Outbox operations: accept, enqueue, claim, finish.

Each function takes an open connection inside the caller's transaction, so ingest
stores a whole request atomically and the worker's steps stay small.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from app.store.tables import campaign_members, identities, outbox, received, skipped, workers

LEASE_SECONDS = 60.0  # work held by a dead worker is taken up again after this


@dataclass(frozen=True)
class Pending:
    """One outgoing call to store, for the message it came from."""

    message_id: str
    destination: str
    kind: str
    person: str  # the ordering key: one person's calls go out in order, one at a time
    body: dict[str, Any]
    campaign_id: str | None = None
    received_at: float | None = None  # None: now, when it is enqueued


@dataclass(frozen=True)
class Skip:
    """A message accepted or refused without a delivery, and why."""

    source: str
    message_id: str | None
    reason: str
    detail: str | None
    payload: Any


@functools.cache
def _statements(dialect: str) -> SimpleNamespace:
    """The upserts, built once per dialect (ON CONFLICT is dialect-specific)."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    learn = insert(identities)
    beat = insert(workers)
    campaign = insert(campaign_members).on_conflict_do_nothing()
    return SimpleNamespace(
        accept=insert(received)
        .on_conflict_do_nothing(index_elements=["message_id"])
        .returning(received.c.message_id),
        learn=learn.on_conflict_do_update(
            index_elements=["id"],
            set_={"email": learn.excluded.email, "updated_at": learn.excluded.updated_at},
        ),
        join_campaign=campaign.returning(campaign_members.c.email),
        heartbeat=beat.on_conflict_do_update(
            index_elements=["name"],
            set_={"seen_at": beat.excluded.seen_at, "paused": beat.excluded.paused},
        ),
    )


def _sql(conn: sa.Connection) -> SimpleNamespace:
    return _statements(conn.dialect.name)


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
    return {row.message_id for row in conn.execute(_sql(conn).accept, rows)}


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
        "body": call.body,
        "campaign_id": call.campaign_id,
        "received_at": received_at,
        "available_at": received_at,
    }


def record_skips(conn: sa.Connection, skips: Sequence[Skip], now: float) -> None:
    if skips:
        conn.execute(skipped.insert(), [vars(s) | {"at": now} for s in skips])


def known_emails(conn: sa.Connection, ids: Iterable[str]) -> dict[str, str]:
    """The last email seen for each of `ids` that has one."""
    wanted = [i for i in ids if i]
    if not wanted:
        return {}
    query = sa.select(identities.c.id, identities.c.email).where(identities.c.id.in_(wanted))
    return {row.id: row.email for row in conn.execute(query)}


class KnownEmails(Mapping[str, str]):
    """The emails of a request's ids: read from the store on first use, then kept
    current with what the request itself teaches, so later messages see it."""

    def __init__(self, conn: sa.Connection, ids: Iterable[str]) -> None:
        self._conn = conn
        self._ids = {i for i in ids if i}
        self._stored: dict[str, str] | None = None
        self.learned: dict[str, str] = {}

    def _emails(self) -> dict[str, str]:
        if self._stored is None:
            self._stored = known_emails(self._conn, self._ids)
        return self._stored | self.learned

    def __getitem__(self, ident: str) -> str:
        if ident in self.learned:
            return self.learned[ident]
        return self._emails()[ident]

    def __iter__(self) -> Iterator[str]:
        return iter(self._emails())

    def __len__(self) -> int:
        return len(self._emails())


def learn(conn: sa.Connection, emails: Mapping[str, str], now: float) -> None:
    """Remember the email of each id (the latest wins)."""
    if emails:
        rows = [{"id": i, "email": e, "updated_at": now} for i, e in emails.items()]
        conn.execute(_sql(conn).learn, rows)


def join_campaign(conn: sa.Connection, email: str, campaign_id: str, now: float) -> bool:
    """Remember that `email` is subscribed to `campaign_id`; False if it already was."""
    stmt = _sql(conn).join_campaign.values(email=email, campaign_id=campaign_id, at=now)
    return conn.execute(stmt).first() is not None


def _due(destination: str, now: float) -> sa.ColumnElement[bool]:
    """Rows of `destination` waiting to be sent whose time has come."""
    return sa.and_(
        outbox.c.destination == destination,
        outbox.c.state == "pending",
        outbox.c.available_at <= now,
    )


def due_counts(
    conn: sa.Connection, destination: str, now: float, cap: int = 5000
) -> dict[str, int]:
    """How many rows of each kind are due (counting at most `cap` rows, so it stays cheap)."""
    due = sa.select(outbox.c.kind).where(_due(destination, now)).limit(cap).subquery()
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
    conn.execute(_sql(conn).heartbeat, {"name": name, "seen_at": now, "paused": paused})
