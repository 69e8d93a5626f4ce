"""What Drip's API is: endpoints, limits, the rules a record must meet, webhook events.

The one home of Drip's facts; the mapper, the Drip client, the batch
pre-validation and the fake Drip all read them from here. Sources are files of
DripEmail/api-docs `source/includes/`, named beside each fact.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Literal

Record = dict[str, Any]
Wrap = Callable[[list[Record]], Any]

# One value per endpoint family.
Kind = Literal["subscriber", "event", "campaign", "order", "delete", "unsubscribe"]

# kind -> (path, body); paths hold {account} and, for campaigns, {campaign}.
# rest/_subscribers.md, rest/_events.md, rest/_campaigns.md, shopper_activity/_order.md.
INDIVIDUAL: dict[str, tuple[str, Wrap]] = {
    "subscriber": ("/v2/{account}/subscribers", lambda rs: {"subscribers": rs}),
    "event": ("/v2/{account}/events", lambda rs: {"events": rs}),
    "campaign": ("/v2/{account}/campaigns/{campaign}/subscribers", lambda rs: {"subscribers": rs}),
    "order": ("/v3/{account}/shopper_activity/order", lambda rs: rs[0]),
}
# kind -> (method, path) of the calls addressed to one subscriber, with no body
# (rest/_subscribers.md): "Delete a subscriber" (204; Drip then fires
# `subscriber.deleted`) and "Unsubscribe from all mailings" (200 with the subscriber).
PER_SUBSCRIBER: dict[str, tuple[str, str]] = {
    "delete": ("DELETE", "/v2/{account}/subscribers/{subscriber}"),
    "unsubscribe": ("POST", "/v2/{account}/subscribers/{subscriber}/unsubscribe_all"),
}
# rest/_batch_api.md, shopper_activity/_order.md. Campaign subscriptions and deletions
# have no batch form; "Unsubscribe a batch of subscribers" answers 204.
BATCH: dict[str, tuple[str, Wrap]] = {
    "subscriber": (
        "/v2/{account}/subscribers/batches",
        lambda rs: {"batches": [{"subscribers": rs}]},
    ),
    "event": ("/v2/{account}/events/batches", lambda rs: {"batches": [{"events": rs}]}),
    "order": ("/v3/{account}/shopper_activity/order/batch", lambda rs: {"orders": rs}),
    "unsubscribe": (
        "/v2/{account}/unsubscribes/batches",
        lambda rs: {"batches": [{"subscribers": rs}]},
    ),
}
# rest/_batch_api.md: "An Array with between 1 and 1000 objects".
BATCH_MAX = 1000
# rest/_events.md: "Conversion values must be less than 2,147,483,647"; Drip's integers
# (lead score, lifetime value) are 32-bit too.
MAX_INT = 2_147_483_647
# shopper_activity/_order_activity.md: the six order actions.
ORDER_ACTIONS = frozenset({"placed", "updated", "paid", "fulfilled", "refunded", "canceled"})
# js/_identify.md: custom-field keys are lowercase snake_case; `drip_` is reserved.
FIELD_KEY = re.compile(r"^[a-z0-9_]+$")
RESERVED_PREFIX = "drip_"
# Drip's exact email rule is not documented; this refuses what is plainly not an
# address, a trailing dot included, and anything over RFC 5321's 320 characters.
# Emails are compared trimmed.
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]+")
MAX_EMAIL = 320
# Drip's JavaScript tag for an account (js/_getting_started.md: the snippet loads
# `//tag.getdrip.com/<account id>.js` after setting `_dcs.account`).
TAG_URL = "https://tag.getdrip.com/{account}.js"
# Campaign ids are numbers; one goes into a URL path, so nothing else may pass.
CAMPAIGN_ID = re.compile(r"[0-9]{1,32}")


def tag_url(account_id: str) -> str:
    return TAG_URL.format(account=account_id)


def is_email(value: Any) -> bool:
    """An address Drip accepts (surrounding spaces aside)."""
    if not isinstance(value, str) or len(value.strip()) > MAX_EMAIL:
        return False
    return _EMAIL.fullmatch(value.strip()) is not None


def is_campaign_id(value: Any) -> bool:
    return isinstance(value, str) and CAMPAIGN_ID.fullmatch(value) is not None


def parse_time(value: Any) -> datetime:
    """An ISO-8601 string as an aware UTC datetime; no offset means UTC.

    Raises ValueError when it is not an ISO-8601 string or falls outside the
    years 1-9999 once converted to UTC.
    """
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {type(value).__name__}")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"not ISO-8601: {value!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"out of range in UTC: {value!r}") from None


def is_time(value: Any) -> bool:
    try:
        parse_time(value)
    except ValueError:
        return False
    return True


# The webhook events, in the order of rest/_webhook_events.md.
WEBHOOK_PREFIX = "subscriber."
WEBHOOK_EVENTS: tuple[str, ...] = (
    "subscriber.created",
    "subscriber.deleted",
    "subscriber.marked_as_deliverable",
    "subscriber.marked_as_undeliverable",
    "subscriber.subscribed_to_email_marketing",
    "subscriber.subscribed_to_campaign",
    "subscriber.removed_from_campaign",
    "subscriber.unsubscribed_from_campaign",
    "subscriber.unsubscribed_all",
    "subscriber.reactivated",
    "subscriber.completed_campaign",
    "subscriber.applied_tag",
    "subscriber.removed_tag",
    "subscriber.updated_custom_field",
    "subscriber.updated_email_address",
    "subscriber.updated_lifetime_value",
    "subscriber.updated_time_zone",
    "subscriber.received_email",
    "subscriber.opened_email",
    "subscriber.clicked_email",
    "subscriber.bounced",
    "subscriber.complained",
    "subscriber.clicked_trigger_link",
    "subscriber.visited_page",
    "subscriber.became_lead",
    "subscriber.became_non_prospect",
    "subscriber.updated_lead_score",
    "subscriber.performed_custom_event",
    "subscriber.updated_alias",
)


def record_problem(kind: str, record: Record) -> str | None:
    """Why Drip would refuse `record` at a `kind` endpoint, or None when it would take it.

    Batch endpoints answer 201 and drop bad records silently (rest/_batch_api.md),
    so every record is checked with this before it joins a batch.
    """
    if not is_email(record.get("email")):
        return "email is missing or is not an email address"
    check = _RULES.get(kind)
    return check(record) if check else None


def _subscriber(record: Record) -> str | None:
    fields = record.get("custom_fields", {})
    if not isinstance(fields, dict):
        return "custom_fields must be an object"
    bad = [k for k in fields if not FIELD_KEY.match(k) or k.startswith(RESERVED_PREFIX)]
    if bad:
        return f"custom field keys must be lowercase snake_case, not drip_*: {', '.join(bad)}"
    for key in ("tags", "remove_tags"):
        if key in record and not all(isinstance(t, str) for t in record[key]):
            return f"{key} must be a list of strings"
    return None


def _event(record: Record) -> str | None:
    if not isinstance(record.get("action"), str) or not record["action"].strip():
        return "action (the event name) is required"
    if "occurred_at" in record and not is_time(record["occurred_at"]):
        return "occurred_at must be an ISO-8601 time"
    value = record.get("properties", {}).get("value", 0)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < MAX_INT:
        return f"properties.value must be whole cents below {MAX_INT:,}"
    return None


def _order(record: Record) -> str | None:
    if record.get("action") not in ORDER_ACTIONS:
        return f"action must be one of {', '.join(sorted(ORDER_ACTIONS))}"
    if not record.get("provider") or not record.get("order_id"):
        return "provider and order_id are required"
    if any(not isinstance(item, dict) or not item.get("name") for item in record.get("items", [])):
        return "every item needs a name"
    return None


_RULES: dict[str, Callable[[Record], str | None]] = {
    "subscriber": _subscriber,
    "event": _event,
    "order": _order,
}
