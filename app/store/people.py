"""What the bridge knows about people: the last email of each userId/anonymousId
(README, "Finding the email"), who is already in which campaign, and who
unsubscribed from all mailings.

Each function takes an open connection inside the caller's transaction.
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Iterable, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from app.store.tables import campaign_members, identities, unsubscribes


@functools.cache
def _upserts(dialect: str) -> tuple[Any, Any]:
    """(learn, join a campaign), built once per dialect (ON CONFLICT is dialect-specific)."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    learn = insert(identities)
    learn = learn.on_conflict_do_update(
        index_elements=["id"],
        set_={"email": learn.excluded.email, "updated_at": learn.excluded.updated_at},
    )
    join = insert(campaign_members).on_conflict_do_nothing().returning(campaign_members.c.email)
    return learn, join


def known_emails(conn: sa.Connection, ids: Iterable[str]) -> dict[str, str]:
    """The last email seen for each of `ids` that has one."""
    wanted = sorted({i for i in ids if i})
    if not wanted:
        return {}
    query = sa.select(identities.c.id, identities.c.email).where(identities.c.id.in_(wanted))
    return {row.id: row.email for row in conn.execute(query)}


def learn(conn: sa.Connection, emails: Mapping[str, str], now: float) -> None:
    """Remember the email of each id (the latest wins)."""
    if emails:
        rows = [{"id": i, "email": e, "updated_at": now} for i, e in emails.items()]
        conn.execute(_upserts(conn.dialect.name)[0], rows)


def join_campaign(conn: sa.Connection, email: str, campaign_id: str, now: float) -> bool:
    """Remember that `email` is subscribed to `campaign_id`; False if it already was."""
    stmt = _upserts(conn.dialect.name)[1].values(email=email, campaign_id=campaign_id, at=now)
    return conn.execute(stmt).first() is not None


def unsubscribed(conn: sa.Connection, emails: Iterable[str]) -> set[str]:
    """Those of `emails` (lowercased) unsubscribed from all mailings."""
    wanted = sorted({e.lower() for e in emails})
    if not wanted:
        return set()
    query = sa.select(unsubscribes.c.email).where(unsubscribes.c.email.in_(wanted))
    return set(conn.execute(query).scalars())


def unsubscribe(conn: sa.Connection, emails: Iterable[str], now: float) -> None:
    """Remember that `emails` unsubscribed from all mailings (the first time counts)."""
    rows = [{"email": e.lower(), "at": now} for e in sorted(set(emails))]
    if rows:
        insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
        conn.execute(insert(unsubscribes).on_conflict_do_nothing(), rows)


def email_of(conn: sa.Connection, some_id: str) -> str | None:
    """The last email seen for `some_id`, if any."""
    query = sa.select(identities.c.email).where(identities.c.id == some_id)
    found: str | None = conn.execute(query).scalar()
    return found


def forget(conn: sa.Connection, user_id: str, emails: Collection[str]) -> None:
    """Drop what is known of a person: their identities (the userId and every id last
    seen with one of `emails`), campaign memberships and unsubscribe (emails lowercased)."""
    lowered = sorted({e.lower() for e in emails})
    same = sa.or_(identities.c.id == user_id, sa.func.lower(identities.c.email).in_(lowered))
    conn.execute(identities.delete().where(same))
    conn.execute(campaign_members.delete().where(campaign_members.c.email.in_(lowered)))
    conn.execute(unsubscribes.delete().where(unsubscribes.c.email.in_(lowered)))
