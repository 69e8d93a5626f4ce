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

import sqlalchemy as sa

from app.store.engine import reading, writing
from app.store.outbox import State
from app.store.received import SOURCES
from app.store.tables import campaign_members, identities, outbox, received, skipped, workers

SLICE = 1000  # rows a table loses per transaction
ROUNDS = 5  # slices a table may lose per call, while it has that much to lose


def _prunable(cutoff: float) -> dict[sa.Table, sa.ColumnElement[bool]]:
    # One probe of the index outbox_message_id (0012) per received row.
    waiting = sa.exists().where(
        outbox.c.message_id == received.c.message_id,
        outbox.c.state.in_((State.PENDING, State.DEAD)),
    )
    return {
        outbox: outbox.c.state.in_((State.DONE, State.DROPPED)) & (outbox.c.finished_at < cutoff),
        received: received.c.source.in_(SOURCES) & (received.c.received_at < cutoff) & ~waiting,
        skipped: skipped.c.at < cutoff,
        identities: identities.c.updated_at < cutoff,
        campaign_members: campaign_members.c.at < cutoff,
        workers: workers.c.seen_at < cutoff,
    }


def prune(engine: sa.Engine, now: float, retention: float, limit: int = SLICE) -> int:
    """Delete rows older than `retention`, a slice at a time, at most ROUNDS slices a
    table; how many went."""
    deleted = 0
    for table, old in _prunable(now - retention).items():
        columns = list(table.primary_key.columns)
        key = sa.tuple_(*columns) if len(columns) > 1 else columns[0]
        some = sa.select(*columns).where(old).limit(limit)
        for _ in range(ROUNDS):
            with reading(engine) as conn:
                keys = [tuple(row) if len(columns) > 1 else row[0] for row in conn.execute(some)]
            if not keys:
                break
            with writing(engine) as conn:
                deleted += conn.execute(table.delete().where(key.in_(keys), old)).rowcount
            if len(keys) < limit:
                break
    return deleted
