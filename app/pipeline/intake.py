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
from app.pipeline.messages import secret_free, storable, tracking_api_messages
from app.segment_api import MESSAGE_LIMIT
from app.store import counters, inbox, received

log = logging.getLogger(__name__)

# Messages per transaction, so that SQLite's write lock (which ingest waits for)
# is held for milliseconds; a larger request is mapped in slices of this size.
MESSAGES = 200
# Errors that mean the store is unreachable: the worker waits and tries again.
# Any other failure is about the rows themselves and must not stop the rest.
UNAVAILABLE = (sa.exc.OperationalError, sa.exc.InterfaceError)


def keep(
    engine: sa.Engine, kind: str, raw: bytes, body: dict[str, Any], count: int, browser: bool
) -> None:
    """Store one tracking-API request whole (without writeKeys), committed on return;
    `count` is how many messages it carries, `browser` whether it came with
    BROWSER_WRITE_KEY (its messages are then mapped with the browser's restrictions)."""
    inbox.put(engine, kind, secret_free(raw, body), time.time(), browser)
    metrics.RECEIVED.labels("segment").inc(count)


def map_waiting(engine: sa.Engine, config: Config) -> bool:
    """Map and enqueue the oldest waiting messages; False when none were waiting.

    A message that cannot be mapped (a value a column refuses, a bug) must not
    hold up the ones behind it: the slice is tried again one message at a time,
    and the message that fails alone is set aside as a skip with the error.
    """
    try:
        return _map(engine, config, MESSAGES)
    except UNAVAILABLE:
        raise
    except Exception:
        log.exception("mapping the inbox failed; trying its oldest message alone")
    try:
        return _map(engine, config, 1)
    except UNAVAILABLE:
        raise
    except Exception as exc:
        log.exception("mapping the oldest inbox message failed; setting it aside")
        _set_aside(engine, f"{type(exc).__name__}: {exc}")
        return True


def _map(engine: sa.Engine, config: Config, limit: int) -> bool:
    """Map up to `limit` messages from the oldest requests, in arrival order."""
    with store.writing(engine) as conn:
        messages: list[Any] = []
        received_at: list[float] = []
        done = []
        browser: list[bool] = []
        for row in inbox.oldest(conn, limit):
            left = limit - len(messages)
            if left <= 0:
                break
            waiting = tracking_api_messages(row.kind, json.loads(row.body))[row.mapped :]
            messages += waiting[:left]
            received_at += [row.received_at] * len(waiting[:left])
            browser += [bool(row.browser)] * len(waiting[:left])
            if len(waiting) <= left:
                done.append(row.id)
            else:  # the slice ends inside this request: the rest waits for the next one
                inbox.mark_mapped(conn, row.id, row.mapped + left)
        inbox.remove(conn, done)
        if not messages:
            return False
        checked = segment.check(
            messages, MESSAGE_LIMIT, single=False, received_at=received_at, browser=browser
        )
        summary = segment.store_checked(conn, config, checked, time.time())
    segment.log_skips(summary)
    return True


def _set_aside(engine: sa.Engine, error: str) -> None:
    """Move the oldest waiting message (or a request that cannot be read at all) into
    the skips, shown on /admin."""
    with store.writing(engine) as conn:
        rows = inbox.oldest(conn, 1)
        if not rows:
            return
        (row,) = rows
        try:
            waiting = tracking_api_messages(row.kind, json.loads(row.body))[row.mapped :]
        except Exception:
            waiting = []
        if len(waiting) > 1:
            inbox.mark_mapped(conn, row.id, row.mapped + 1)
        else:
            inbox.remove(conn, [row.id])
        payload: Any = waiting[0] if waiting else {"kind": row.kind, "body": row.body}
        mid = segment.message_id(payload) if waiting and isinstance(payload, dict) else None
        skip = received.Skip("segment", mid, "mapping_failed", error, storable(payload))
        received.record_skips(conn, [skip], time.time())
        counts = metrics.Counts()
        metrics.count(counts, metrics.SKIPPED, "segment", "mapping_failed")
        counters.add(conn, counts)
    log.error("set aside a message of inbox request %s: it could not be mapped", row.id)
