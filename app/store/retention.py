"""Retention: what the bridge keeps is pruned after DATA_RETENTION, in small slices.

Delivered (and discarded) outbox rows, the ids of received messages (so the
de-duplication window is the retention), skips, identities, campaign memberships
and the heartbeats of workers gone quiet. Dead letters and waiting rows stay, and
so do the received payloads they show; so do `deletions` (the proof, ids and times
only), `unsubscribes` (never resubscribe anyone) and `field_names` (trait names).
Each slice is its own short transaction, so ingest never waits long behind it.
"""

from __future__ import annotations

import sqlalchemy as sa

from app.store.engine import writing
from app.store.outbox import State
from app.store.received import SOURCES
from app.store.tables import campaign_members, identities, outbox, received, skipped, workers

SLICE = 1000  # rows a table loses per transaction
ROUNDS = 5  # slices a table may lose per call, while it has that much to lose


def _prunable(cutoff: float) -> dict[sa.Table, sa.ColumnElement[bool]]:
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
    """Delete rows older than `retention`, a slice at a time; how many went."""
    deleted = 0
    for table, old in _prunable(now - retention).items():
        key = sa.tuple_(*table.primary_key.columns)
        some = sa.select(*table.primary_key.columns).where(old).limit(limit)
        for _ in range(ROUNDS):
            with writing(engine) as conn:
                gone = conn.execute(table.delete().where(key.in_(some))).rowcount
            deleted += gone
            if gone < limit:
                break
    return deleted
