"""The tracking API's inbox: requests kept whole by the web, mapped by the worker.

`keep` is all an HTTP request does; `map_waiting` is the worker's first step.

One worker at a time takes the oldest requests (PostgreSQL: an advisory lock;
SQLite: the write lock), so a person's messages are mapped in the order they
arrived. They are validated, de-duplicated and mapped by the same code as
/segment's, in the transaction that removes them from the inbox: a worker killed
half-way leaves them waiting, never half-mapped.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import sqlalchemy as sa

from app import metrics, store
from app.config import Config
from app.pipeline import segment
from app.pipeline.messages import secret_free, tracking_api_messages
from app.segment_api import MESSAGE_LIMIT
from app.store import inbox, received

log = logging.getLogger(__name__)

# Messages per transaction, so that SQLite's write lock (which ingest waits for)
# is held for milliseconds; a request is never split, so a large batch goes alone.
MESSAGES = 200


def keep(engine: sa.Engine, kind: str, raw: bytes, body: dict[str, Any], count: int) -> None:
    """Store one tracking-API request whole (without writeKeys), committed on return;
    `count` is how many messages it carries."""
    inbox.put(engine, kind, secret_free(raw, body), time.time())
    metrics.RECEIVED.labels("segment").inc(count)


def map_waiting(engine: sa.Engine, config: Config) -> bool:
    """Map and enqueue the oldest waiting requests; False when none were waiting.

    A request that cannot be mapped (a bug, or a row this version cannot read)
    must not hold up the ones behind it: it is set aside as a skip with the error.
    """
    try:
        return _map(engine, config, MESSAGES)
    except sa.exc.DBAPIError:
        raise
    except Exception:
        log.exception("mapping the inbox failed; trying its oldest request alone")
    try:
        return _map(engine, config, 1)
    except sa.exc.DBAPIError:
        raise
    except Exception as exc:
        log.exception("mapping the oldest inbox request failed; setting it aside")
        _set_aside(engine, f"{type(exc).__name__}: {exc}")
        return True


def _map(engine: sa.Engine, config: Config, limit: int) -> bool:
    with store.writing(engine) as conn:
        messages: list[Any] = []
        received_at: list[float] = []
        taken = []
        for row in inbox.oldest(conn, limit):
            if len(messages) >= limit:
                break
            batch = tracking_api_messages(row.kind, json.loads(row.body))
            messages += batch
            received_at += [row.received_at] * len(batch)
            taken.append(row.id)
        if not taken:
            return False
        checked = segment.check(messages, MESSAGE_LIMIT, single=False, received_at=received_at)
        summary = segment.store_checked(conn, config, checked, time.time())
        inbox.remove(conn, taken)
    segment.count(summary)
    return True


def _set_aside(engine: sa.Engine, error: str) -> None:
    """Move the oldest request out of the inbox into the skips (shown on /admin)."""
    with store.writing(engine) as conn:
        rows = inbox.oldest(conn, 1)
        if not rows:
            return
        (row,) = rows
        payload = {"kind": row.kind, "body": row.body}
        skip = received.Skip("segment", None, "mapping_failed", error, payload)
        received.record_skips(conn, [skip], time.time())
        inbox.remove(conn, [row.id])
    metrics.SKIPPED.labels("segment", "mapping_failed").inc()
    log.error("set aside inbox request %s: it could not be mapped", row.id)
