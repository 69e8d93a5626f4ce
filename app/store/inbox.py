"""The inbox: tracking-API requests stored whole, until the worker maps them.

`put` is all that the HTTP request does; `oldest`, `remove` and `mark_mapped` are the worker's
intake (app/pipeline/intake.py), one worker at a time.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from app import store
from app.store.tables import inbox

# PostgreSQL advisory lock held by the one intake at work, so that messages are
# mapped in the order they arrived even with several workers. Any constant will
# do; this one spells "drip" in ASCII.
INTAKE_LOCK = 0x64726970


def put(engine: sa.Engine, kind: str, body: str, now: float, browser: bool = False) -> None:
    """Store one tracking-API request, committed on return (with the requests that
    arrived at the same time); `browser` when it came with BROWSER_WRITE_KEY."""
    group = _groups.get(engine)
    if group is None:
        columns = ("kind", "body", "received_at", "browser")
        group = _groups.setdefault(engine, store.GroupCommit(engine.dialect, inbox, columns))
    group.insert(engine, (kind, body, now, browser))


# One group commit per engine (each process has its own).
_groups: weakref.WeakKeyDictionary[sa.Engine, store.GroupCommit] = weakref.WeakKeyDictionary()


def oldest(conn: sa.Connection, limit: int) -> list[sa.Row[Any]]:
    """The oldest waiting requests, or none while another worker's intake is at work.

    On SQLite the caller's write transaction already excludes other intakes.
    """
    if conn.dialect.name == "postgresql":
        lock = sa.select(sa.func.pg_try_advisory_xact_lock(INTAKE_LOCK))
        if not conn.execute(lock).scalar_one():
            return []
    return list(conn.execute(sa.select(inbox).order_by(inbox.c.id).limit(limit)))


def remove(conn: sa.Connection, ids: Sequence[int]) -> None:
    """Requests whose messages are all mapped."""
    if ids:
        conn.execute(inbox.delete().where(inbox.c.id.in_(ids)))


def mark_mapped(conn: sa.Connection, row_id: int, mapped: int) -> None:
    """How many of a request's messages are mapped so far (it is mapped in slices)."""
    conn.execute(inbox.update().where(inbox.c.id == row_id).values(mapped=mapped))


def waiting(conn: sa.Connection) -> int:
    """Requests not yet mapped."""
    return int(conn.execute(sa.select(sa.func.count()).select_from(inbox)).scalar_one())


def any_waiting(conn: sa.Connection) -> bool:
    """Whether any request is not yet mapped (without counting them all)."""
    return bool(conn.execute(sa.select(sa.exists().select_from(inbox))).scalar())
