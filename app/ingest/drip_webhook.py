"""POST /drip/webhook?token=...: Drip's webhooks, stored before the answer.

Drip disables a webhook whose endpoint errs for three days, but re-sends for three
days one that was rate limited (rest/_webhook_events.md). So a valid event that is
not forwarded still gets 200, and when the store is down the answer is 429 with
Retry-After, never a 5xx.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import sqlalchemy as sa
from flask import Blueprint, Flask, current_app, request
from marshmallow import ValidationError

from app import metrics, store
from app.config import Config
from app.errors import ApiError, store_failures_as
from app.ingest.auth import same
from app.ingest.drip_schema import DripWebhookSchema
from app.ingest.segment import parse_json, read_body
from app.mapping.to_segment import DRIP_EVENTS, event_id, is_forwarded
from app.store import outbox

log = logging.getLogger(__name__)
bp = Blueprint("drip_webhook", __name__)
SCHEMA = DripWebhookSchema()


@bp.post("/drip/webhook")
def receive() -> dict[str, Any]:
    cfg: Config = current_app.config["BRIDGE"]
    _check_token(cfg)
    envelope = load_envelope(parse_json(read_body(request, cfg.max_body_bytes)))
    # Drip re-sends a rate-limited webhook for 3 days; any other error disables it.
    unstored = "The bridge cannot store webhooks right now; Drip re-sends rate-limited ones."
    with store_failures_as(429, 60, unstored), store.writing(store.engine()) as conn:
        answer = ingest_webhook(conn, envelope, cfg, time.time())
    _count(answer)
    return answer


def _check_token(cfg: Config) -> None:
    if not cfg.drip_webhook_token:
        raise ApiError(
            503,
            "not_configured",
            "Set DRIP_WEBHOOK_TOKEN and add ?token=<it> to the webhook URL in Drip.",
        )
    if not same(request.args.get("token"), cfg.drip_webhook_token):
        raise ApiError(
            401,
            "unauthorized",
            "Missing or wrong token: the webhook URL must end in ?token=<DRIP_WEBHOOK_TOKEN>.",
        )


def load_envelope(body: Any) -> dict[str, Any]:
    """The envelope, checked by the schema (400) and for the account (403)."""
    try:
        envelope: dict[str, Any] = SCHEMA.load(body)
    except ValidationError as exc:
        raise ApiError(
            400,
            "invalid_webhook",
            "Not a Drip webhook envelope; see details for each field.",
            {"fields": exc.messages},
        ) from exc
    account, ours = envelope["data"]["account_id"], current_app.config["BRIDGE"].drip_account_id
    if account != ours:
        raise ApiError(
            403,
            "wrong_account",
            f"This webhook is for Drip account {account}, but the bridge serves account "
            f"{ours} (DRIP_ACCOUNT_ID).",
        )
    return envelope


def _skip_reason(envelope: dict[str, Any], cfg: Config) -> str | None:
    event = envelope["event"]
    if event not in DRIP_EVENTS:
        return "unknown_event"
    if not is_forwarded(event, cfg.drip_forward_events):
        return "not_forwarded"
    if not envelope["data"]["subscriber"].get("email"):
        return "missing_email"
    return None


def ingest_webhook(
    conn: sa.Connection, envelope: dict[str, Any], cfg: Config, now: float
) -> dict[str, Any]:
    """Store one envelope in `conn`'s transaction; the answer says what became of it."""
    mid = event_id(envelope)
    answer: dict[str, Any] = {"success": True, "id": mid}
    if not outbox.accept(conn, "drip", [(mid, envelope)], now):
        return answer | {"duplicate": True}
    reason = _skip_reason(envelope, cfg)
    if reason:
        skip = outbox.Skip("drip", mid, reason, envelope["event"], envelope)
        outbox.record_skips(conn, [skip], now)
        return answer | {"skipped": reason}
    email = envelope["data"]["subscriber"]["email"].lower()
    outbox.enqueue(conn, [outbox.Pending(mid, "segment", "track", email, envelope)], now)
    return answer


def _count(answer: dict[str, Any]) -> None:
    metrics.RECEIVED.labels("drip").inc()
    if answer.get("duplicate"):
        metrics.DUPLICATES.labels("drip").inc()
    elif "skipped" in answer:
        metrics.SKIPPED.labels("drip", answer["skipped"]).inc()
    else:
        metrics.ACCEPTED.labels("drip").inc()


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
