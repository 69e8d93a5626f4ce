"""What the dashboard shows, read from the store in one short read transaction."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from app.config import Config
from app.dead_letters import as_dict, iso
from app.store import dead_letters, inbox
from app.store.tables import outbox, received, skipped, workers

HOUR = 3600.0
SHOWN = 50  # rows per list


def gather(conn: sa.Connection, now: float) -> dict[str, Any]:
    since = now - HOUR
    delivered = (outbox.c.state == "done") & (outbox.c.finished_at > since)
    recent_skips = sa.select(skipped).order_by(skipped.c.id.desc()).limit(SHOWN)
    retrying = (
        sa.select(outbox)
        .where(outbox.c.state == "pending", outbox.c.error.is_not(None))
        .order_by(outbox.c.id.desc())
        .limit(10)
    )
    alive = sa.select(workers).where(workers.c.seen_at > now - 60).order_by(workers.c.name)
    return {
        "received": _counts(conn, received.c.source, received.c.received_at > since),
        "delivered": _counts(conn, outbox.c.destination, delivered),
        "backlog": _counts(conn, outbox.c.destination, outbox.c.state == "pending"),
        "inbox": inbox.waiting(conn),
        "dead": [as_dict(row) for row in dead_letters.dead_letters(conn, limit=SHOWN)],
        "skipped": [_skip(row) for row in conn.execute(recent_skips)],
        "errors": [_error(row) for row in conn.execute(retrying)],
        "workers": list(conn.execute(alive)),
    }


def _counts(conn: sa.Connection, key: Any, condition: Any) -> dict[str, int]:
    query = sa.select(key, sa.func.count()).where(condition).group_by(key)
    return {name: count for name, count in conn.execute(query)}


def _skip(row: sa.Row[Any]) -> dict[str, Any]:
    return {"at": iso(row.at), "source": row.source, "message_id": row.message_id,
            "reason": row.reason, "detail": row.detail, "payload": row.payload}  # fmt: skip


def _error(row: sa.Row[Any]) -> dict[str, Any]:
    return {"destination": row.destination, "kind": row.kind, "error": row.error,
            "attempts": row.attempts, "next_try": iso(row.available_at)}  # fmt: skip


def setup(cfg: Config, base: str) -> dict[str, Any]:
    """The facts to paste elsewhere, and which secrets are set (never their values)."""
    return {
        "urls": {
            "Segment Webhooks destination": f"{base}/segment",
            "Segment libraries (host)": base,
            "Drip webhook (Settings > Webhooks)": f"{base}/drip/webhook?token=<DRIP_WEBHOOK_TOKEN>",
        },
        "settings": {
            "Drip account": cfg.drip_account_id,
            "Drip campaign": cfg.drip_campaign_id or "none",
            "Drip budgets": f"{cfg.drip_rate_limit} individual, {cfg.drip_batch_rate_limit} batch",
            "Store": cfg.store_name,
        },
        "secrets": {
            "DRIP_API_TOKEN": bool(cfg.drip_api_token),
            "SEGMENT_SHARED_SECRET": bool(cfg.segment_shared_secret),
            "BRIDGE_WRITE_KEY": bool(cfg.bridge_write_key),
            "DRIP_WEBHOOK_TOKEN": bool(cfg.drip_webhook_token),
            "SEGMENT_WRITE_KEY": bool(cfg.segment_write_key),
            "ADMIN_PASSWORD": bool(cfg.admin_password),
        },
    }
