"""What the dashboard shows, read from the store in one short read transaction."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from app.config import Config
from app.dead_letters import as_dict, iso
from app.store import dead_letters, deletions, inbox, outbox, received, recent, workers

HOUR = 3600.0
SHOWN = 50  # rows per list


def gather(conn: sa.Connection, now: float) -> dict[str, Any]:
    counts = outbox.counts_by_state(conn)
    merged, saved = recent.merged_since(conn, now - HOUR)
    return {
        "merged": merged,
        "saved": saved,
        "received": received.counts_since(conn, now - HOUR),
        "delivered": recent.delivered_since(conn, now - HOUR),
        "backlog": {d: n for (d, state), n in counts.items() if state == outbox.State.PENDING},
        "inbox": inbox.waiting(conn),
        "dead": [as_dict(row) for row in dead_letters.read(conn, limit=SHOWN)],
        "skipped": [_skip(row) for row in received.recent_skips(conn, SHOWN)],
        "errors": [_error(row) for row in recent.retrying(conn, 10)],
        "deletions": [_deletion(d) for d in deletions.recent(conn, SHOWN)],
        "workers": workers.running(conn, now),
    }


def _skip(row: sa.Row[Any]) -> dict[str, Any]:
    return {"at": iso(row.at), "source": row.source, "message_id": row.message_id,
            "reason": row.reason, "detail": row.detail, "payload": row.payload}  # fmt: skip


def _deletion(d: deletions.Deletion) -> dict[str, Any]:
    return {"requested_at": iso(d.requested_at), "message_id": d.message_id,
            "user_id": d.user_id, "subscribers": d.subscribers, "state": d.state,
            "waiting": d.waiting}  # fmt: skip


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
            "Merging waiting updates (DRIP_COALESCE)": "on" if cfg.drip_coalesce else "off",
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
