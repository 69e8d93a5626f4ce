"""A Drip webhook -> stored Segment messages: check, de-duplicate, map, store.

Each webhook becomes a Track; the subscriber webhooks that change a profile
(PROFILE_EVENTS) also an Identify, stored as its own row. Both are built by
analytics-python exactly as they will be sent, so an outbox row is the message
itself and the worker only posts it.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import sqlalchemy as sa
from marshmallow import ValidationError

from app import __version__, metrics, store
from app.config import Config
from app.drip_api import WEBHOOK_EVENTS
from app.mapping.to_segment import PROFILE_EVENTS, event_id, is_forwarded, to_identify, to_track
from app.pipeline.drip_schema import DripWebhookSchema
from app.pipeline.errors import Malformed, WrongAccount
from app.segment_api import MESSAGE_LIMIT, identify_message, track_message
from app.store import counters, fields, outbox, people, received

log = logging.getLogger(__name__)
SOURCE = "drip"
SCHEMA = DripWebhookSchema()
UNSUBSCRIBED_ALL = "subscriber.unsubscribed_all"
DELETED = "subscriber.deleted"  # Drip's answer to a deletion: forwarded, then forgotten


def load_envelope(body: Any, account_id: str) -> dict[str, Any]:
    """The envelope, checked by the schema (Malformed) and for the account (WrongAccount)."""
    try:
        envelope: dict[str, Any] = SCHEMA.load(body)
    except ValidationError as exc:
        raise Malformed(
            "invalid_webhook",
            "Not a Drip webhook envelope; see details for each field.",
            {"fields": exc.messages},
        ) from exc
    account = envelope["data"]["account_id"]
    if account != account_id:
        raise WrongAccount(
            "wrong_account",
            f"This webhook is for Drip account {account}, but the bridge serves account "
            f"{account_id} (DRIP_ACCOUNT_ID).",
        )
    return envelope


def accept(engine: sa.Engine, envelope: dict[str, Any], cfg: Config) -> dict[str, Any]:
    """Store one envelope, committed on return; the answer says what became of it."""
    with store.writing(engine) as conn:
        answer = store_envelope(conn, envelope, cfg, time.time())
        counters.add(conn, _counts(answer))
    metrics.RECEIVED.labels(SOURCE).inc()
    return answer


def store_envelope(
    conn: sa.Connection, envelope: dict[str, Any], cfg: Config, now: float
) -> dict[str, Any]:
    """Store one envelope in `conn`'s transaction; the answer says what became of it."""
    mid = event_id(envelope)
    answer: dict[str, Any] = {"success": True, "id": mid}
    deleted = envelope["event"] == DELETED
    kept = without_person(envelope) if deleted else envelope
    if not received.accept(conn, SOURCE, [(mid, kept)], now):
        return answer | {"duplicate": True}
    if envelope["event"] == UNSUBSCRIBED_ALL and envelope["data"]["subscriber"].get("email"):
        # Unsubscribed in Drip: no later upsert from Segment resubscribes them.
        people.unsubscribe(conn, [envelope["data"]["subscriber"]["email"]], now)
    reason, message = _track(envelope, cfg)
    if message is None:
        skip = received.Skip(SOURCE, mid, reason, envelope["event"], kept)
        received.record_skips(conn, [skip], now)
        return answer | {"skipped": reason}
    email = envelope["data"]["subscriber"]["email"]
    # A deleted subscriber's Track is blanked once Segment has it (outbox.finish).
    call = outbox.Pending(mid, "segment", "deleted" if deleted else "track", email.lower(),
                          email, message)  # fmt: skip
    calls = [call]
    if (profile := _identify(conn, envelope)) is not None:
        calls.append(outbox.Pending(mid, "segment", "identify", email.lower(), email, profile))
    outbox.enqueue(conn, calls, now)
    return answer


def _identify(conn: sa.Connection, envelope: dict[str, Any]) -> dict[str, Any] | None:
    """The Identify for a profile change (PROFILE_EVENTS), or None."""
    if envelope["event"] not in PROFILE_EVENTS:
        return None
    custom = envelope["data"]["subscriber"].get("custom_fields")
    names = fields.segment_names(conn, custom if isinstance(custom, dict) else ())
    try:
        return identify_message(**to_identify(envelope, __version__, names))
    except RuntimeError:
        log.warning("Drip's profile in %s is over Segment's 32 KB", envelope["event"])
        return None


def without_person(envelope: dict[str, Any]) -> dict[str, Any]:
    """What the bridge keeps of a `subscriber.deleted` webhook: ids and times only."""
    data = envelope["data"]
    data = {"account_id": data["account_id"], "subscriber": {"id": data["subscriber"].get("id")}}
    return {"event": envelope["event"], "data": data, "occurred_at": envelope.get("occurred_at")}


def _track(envelope: dict[str, Any], cfg: Config) -> tuple[str, dict[str, Any] | None]:
    """The Track message to send, or why there is none."""
    event = envelope["event"]
    if event not in WEBHOOK_EVENTS:
        return "unknown_event", None
    if not is_forwarded(event, cfg.drip_forward_events):
        return "not_forwarded", None
    if not envelope["data"]["subscriber"].get("email"):
        return "missing_email", None
    try:
        return "", track_message(**to_track(envelope, __version__))
    except RuntimeError:
        log.warning("Drip event %s is over Segment's %d KB", event, MESSAGE_LIMIT // 1024)
        return "too_large", None


def _counts(answer: dict[str, Any]) -> metrics.Counts:
    counts = metrics.Counts()
    if answer.get("duplicate"):
        metrics.count(counts, metrics.DUPLICATES, SOURCE)
    elif "skipped" in answer:
        metrics.count(counts, metrics.SKIPPED, SOURCE, answer["skipped"])
    else:
        metrics.count(counts, metrics.ACCEPTED, SOURCE)
    return counts
