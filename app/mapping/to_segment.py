"""Drip webhook -> Segment Track (and Identify) calls: a pure mapping (no I/O, no clock).

`to_track(envelope, version)` returns the keyword arguments for
`segment.analytics.Client.track(...)`; `to_identify(envelope, version, names)`, for the
subscriber webhooks of PROFILE_EVENTS, those of `Client.identify(...)`. The envelope
is Drip's webhook body as sent (or as loaded by
`app.pipeline.drip_schema.DripWebhookSchema`), see the README's "Drip -> Segment"
and Drip's `source/includes/rest/_webhook_events.md`.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Collection, Mapping
from typing import Any

from app.drip_api import WEBHOOK_EVENTS, WEBHOOK_PREFIX, parse_time
from app.segment_api import LOOP_GUARD_INTEGRATIONS, LOOP_MARKER

EVENT_ID_PREFIX = "drip-"

# Drip webhook -> Segment Track event (README "Drip -> Segment", Segment's Email spec).
# Any other `subscriber.x_y` becomes the words of `x_y` in title case.
EVENT_NAMES: dict[str, str] = {
    "subscriber.received_email": "Email Delivered",
    "subscriber.opened_email": "Email Opened",
    "subscriber.clicked_email": "Email Link Clicked",
    "subscriber.bounced": "Email Bounced",
    "subscriber.complained": "Email Marked as Spam",
    "subscriber.unsubscribed_all": "Unsubscribed",
    "subscriber.unsubscribed_from_campaign": "Unsubscribed",
}

# Off by default: the bridge's own Segment -> Drip events come back as these.
DEFAULT_FORWARDED: frozenset[str] = frozenset(WEBHOOK_EVENTS) - {
    "subscriber.performed_custom_event"
}

# The webhooks that change a subscriber's profile: each also becomes an Identify with
# what Drip knows of the person. Not `subscriber.deleted`: that person is gone.
PROFILE_EVENTS: frozenset[str] = frozenset(
    {
        "subscriber.created",
        "subscriber.subscribed_to_email_marketing",
        "subscriber.subscribed_to_campaign",
        "subscriber.removed_from_campaign",
        "subscriber.unsubscribed_from_campaign",
        "subscriber.unsubscribed_all",
        "subscriber.reactivated",
        "subscriber.applied_tag",
        "subscriber.removed_tag",
        "subscriber.updated_custom_field",
        "subscriber.updated_email_address",
        "subscriber.updated_alias",
    }
)
IDENTIFY_ID_SUFFIX = "-identify"  # the Identify's messageId: the Track's, plus this

# Segment property <- Drip property, per event; other properties pass as sent.
RENAMED_PROPERTIES: dict[str, dict[str, str]] = {
    "subscriber.clicked_email": {"url": "link_url"},
}

# Segment context key <- Drip property, for clicks (moved out of properties).
CLICK_EVENTS = frozenset({"subscriber.clicked_email", "subscriber.clicked_trigger_link"})
CLICK_CONTEXT: dict[str, str] = {"ip_address": "ip", "user_agent": "userAgent"}


def event_id(envelope: Mapping[str, Any]) -> str:
    """Stable id of one webhook: `drip-` + sha256 of its identifying fields (69 chars).

    The fields are the event name, `data.subscriber.id` (as a string),
    `occurred_at` as sent and `data.properties` (missing = `{}`), as canonical
    JSON with sorted keys. Changing this function re-forwards replays: keep it.
    """
    data = _mapping(envelope.get("data"))
    subscriber_id = _mapping(data.get("subscriber")).get("id")
    key = {
        "event": envelope.get("event"),
        "subscriber_id": None if subscriber_id is None else str(subscriber_id),
        "occurred_at": envelope.get("occurred_at"),
        "properties": dict(_mapping(data.get("properties"))),
    }
    canonical = json.dumps(key, sort_keys=True, separators=(",", ":"), default=str)
    return EVENT_ID_PREFIX + hashlib.sha256(canonical.encode()).hexdigest()


def segment_event_name(drip_event: str) -> str:
    """The Segment Track event name for a Drip webhook event name."""
    if drip_event in EVENT_NAMES:
        return EVENT_NAMES[drip_event]
    words = drip_event.removeprefix(WEBHOOK_PREFIX).split("_")
    return " ".join(word.capitalize() for word in words if word) or drip_event


def is_forwarded(drip_event: str, forwarded: Collection[str] | None = None) -> bool:
    """Whether this event goes to Segment; `forwarded=None` means DEFAULT_FORWARDED."""
    return drip_event in (DEFAULT_FORWARDED if forwarded is None else forwarded)


def to_track(envelope: Mapping[str, Any], version: str) -> dict[str, Any]:
    """Keyword arguments for `segment.analytics.Client.track(**kwargs)`.

    Identity: `user_id` when the subscriber has a non-empty `user_id`, else
    `anonymous_id` = the email, never both (as Drip's own Segment source does).
    Raises ValueError when the subscriber has no email or `occurred_at` is not
    ISO-8601; an envelope that passed DripWebhookSchema never raises.
    """
    drip_event = str(envelope.get("event", ""))
    data = _mapping(envelope.get("data"))
    subscriber = _mapping(data.get("subscriber"))
    email = subscriber.get("email")
    if not isinstance(email, str) or not email.strip():
        raise ValueError(
            "data.subscriber.email is missing: Segment needs it to identify the person"
        )
    properties, click_context = _split_properties(drip_event, _mapping(data.get("properties")))
    if subscriber.get("id") is not None:
        properties["drip_subscriber_id"] = str(subscriber["id"])
    context: dict[str, Any] = {
        "traits": {"email": email},
        "integration": {"name": LOOP_MARKER, "version": version},
        **click_context,
    }
    return {
        **_identity(subscriber, email),
        "event": segment_event_name(drip_event),
        "properties": properties,
        "context": context,
        "timestamp": parse_time(envelope.get("occurred_at")),
        "message_id": event_id(envelope),
        "integrations": dict(LOOP_GUARD_INTEGRATIONS),
    }


def to_identify(
    envelope: Mapping[str, Any], version: str, names: Mapping[str, str]
) -> dict[str, Any]:
    """Keyword arguments for `segment.analytics.Client.identify(**kwargs)`.

    Traits are what Drip knows: `email`, `tags`, each custom field under the trait
    name Segment sent it as (`names`: Drip key -> trait name; else the Drip key), and
    `unsubscribed` (Drip's status). Identity and loop guard as `to_track`'s. Raises
    ValueError as `to_track` does.
    """
    subscriber = _mapping(_mapping(envelope.get("data")).get("subscriber"))
    email = subscriber.get("email")
    if not isinstance(email, str) or not email.strip():
        raise ValueError("data.subscriber.email is missing")
    custom = _mapping(subscriber.get("custom_fields"))
    traits: dict[str, Any] = {names.get(k, k): v for k, v in custom.items()}
    traits |= {"email": email, "tags": list(subscriber.get("tags") or [])}
    traits["unsubscribed"] = subscriber.get("status") == "unsubscribed"
    return {
        **_identity(subscriber, email),
        "traits": traits,
        "context": {"integration": {"name": LOOP_MARKER, "version": version}},
        "timestamp": parse_time(envelope.get("occurred_at")),
        "message_id": event_id(envelope) + IDENTIFY_ID_SUFFIX,
        "integrations": dict(LOOP_GUARD_INTEGRATIONS),
    }


def _identity(subscriber: Mapping[str, Any], email: str) -> dict[str, str]:
    """`{"user_id": ...}` for a non-empty Drip user_id, else `{"anonymous_id": email}`."""
    user_id = subscriber.get("user_id")
    if isinstance(user_id, int) and not isinstance(user_id, bool):
        return {"user_id": str(user_id)}
    if isinstance(user_id, str) and user_id.strip():
        return {"user_id": user_id}
    return {"anonymous_id": email}


def _split_properties(
    drip_event: str, drip_properties: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Segment properties (Email spec names) and the context taken from a click."""
    properties = copy.deepcopy(dict(drip_properties))
    for drip_name, segment_name in RENAMED_PROPERTIES.get(drip_event, {}).items():
        if drip_name in properties:
            properties[segment_name] = properties.pop(drip_name)
    context: dict[str, Any] = {}
    if drip_event in CLICK_EVENTS:
        for drip_name, context_key in CLICK_CONTEXT.items():
            value = properties.pop(drip_name, None)
            if value is not None:
                context[context_key] = value
    return properties, context


def _mapping(value: object) -> Mapping[str, Any]:
    """The value when it is a mapping, else an empty one (robust to bad shapes)."""
    return value if isinstance(value, Mapping) else {}
