"""Retention: what the bridge keeps is pruned after DATA_RETENTION, in small slices.

Delivered (and discarded) outbox rows, the ids of received messages (so the
de-duplication window is the retention), skips, identities, campaign memberships
and the heartbeats of workers gone quiet. Dead letters and waiting rows stay, and
so do the received payloads they show; so do `deletions` (the proof, ids and times
only), `unsubscribes` (never resubscribe anyone) and `field_names` (trait names).

The write lock is held only to delete: each slice's rows are found by a read, which
on SQLite takes no lock and on PostgreSQL none that ingest waits for, then deleted by
primary key in their own short transaction, which checks again that each row may go
(it may have been needed again since the read: a replayed dead letter's message).
The work of one call is bounded: at most ROUNDS slices a table. The worker calls it
every few minutes (app/delivery/worker.py, PRUNE_EVERY).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from app.store.engine import reading, writing
from app.store.outbox import State
from app.store.received import SOURCES
from app.store.tables import campaign_members, identities, outbox, received, skipped, workers

SLICE = 1000  # rows a table loses per transaction
ROUNDS = 5  # slices a table may lose per call, while it has that much to lose


def _prunable(cutoff: float, by_key: bool = False) -> dict[sa.Table, sa.ColumnElement[bool]]:
    """What may go, per table. `by_key`: the same test for a delete that names its rows,
    with the times and the state written so that no index on them applies (`+ 0`,
    `|| ''`): the rows are then found by their key, not through every delivered row or
    every old row that stays (dead letters, a backlog older than the retention)."""

    def older(column: sa.Column[float]) -> sa.ColumnElement[bool]:
        return (column + 0 if by_key else column) < cutoff

    state = outbox.c.state + "" if by_key else outbox.c.state

    # One probe of the index outbox_message_id (0012) per received row.
    waiting = sa.exists().where(
        outbox.c.message_id == received.c.message_id,
        outbox.c.state.in_((State.PENDING, State.DEAD)),
    )
    return {
        outbox: state.in_((State.DONE, State.DROPPED)) & older(outbox.c.finished_at),
        received: received.c.source.in_(SOURCES) & older(received.c.received_at) & ~waiting,
        skipped: older(skipped.c.at),
        identities: older(identities.c.updated_at),
        campaign_members: older(campaign_members.c.at),
        workers: older(workers.c.seen_at),
    }


def prune(engine: sa.Engine, now: float, retention: float, limit: int = SLICE) -> int:
    """Delete rows older than `retention`, a slice at a time, at most ROUNDS slices a
    table; how many went."""
    deleted = 0
    again = _prunable(now - retention, by_key=True)
    for table, old in _prunable(now - retention).items():
        columns = list(table.primary_key.columns)
        some = sa.select(*columns).where(old).limit(limit)
        for _ in range(ROUNDS):
            with reading(engine) as conn:
                keys = conn.execute(some).all()
            if not keys:
                break
            with writing(engine) as conn:
                deleted += conn.execute(
                    table.delete().where(_among(columns, keys), again[table])
                ).rowcount
            if len(keys) < limit:
                break
    return deleted


def _among(columns: list[sa.Column[Any]], keys: Sequence[sa.Row[Any]]) -> sa.ColumnElement[bool]:
    """The rows of `keys`, found through the primary key: each column among the values
    read. With a key of two columns, (source, message_id), that may take in a few more
    rows than were read, each of them prunable too (the delete checks every row again).
    (A list of tuples was scanned through the time index, every row compared with each
    tuple on PostgreSQL.)"""
    return sa.and_(*(c.in_({key[i] for key in keys}) for i, c in enumerate(columns)))
