"""Drip's documented rules for a record, checked before it joins a batch.

Batch endpoints answer 201 and process later, with no per-record errors
(rest/_batch_api.md): a record Drip would refuse would vanish there. So each one
is checked first and, when it would fail, dead-lettered with the reason.
Sources: DripEmail/api-docs source/includes/rest/_subscribers.md, _events.md,
shopper_activity/_order_activity.md.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

Record = dict[str, Any]
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")
FIELD_KEY = re.compile(r"^[a-z0-9_]+$")
MAX_VALUE = 2_147_483_647  # "Conversion values must be less than 2,147,483,647"
ORDER_ACTIONS = {"placed", "updated", "paid", "fulfilled", "refunded", "canceled"}


def problem(kind: str, record: Record) -> str | None:
    """Why Drip would refuse `record` for `kind`, or None when it would take it."""
    if not isinstance(record.get("email"), str) or not EMAIL.match(record["email"]):
        return "email is missing or is not an email address"
    return RULES.get(kind, _nothing)(record)


def _nothing(record: Record) -> str | None:
    return None


def _subscriber(record: Record) -> str | None:
    fields = record.get("custom_fields", {})
    if not isinstance(fields, dict):
        return "custom_fields must be an object"
    bad = [k for k in fields if not FIELD_KEY.match(k) or k.startswith("drip_")]
    if bad:
        return f"custom field keys must be lowercase snake_case, not drip_*: {', '.join(bad)}"
    for key in ("tags", "remove_tags"):
        if key in record and not all(isinstance(t, str) for t in record[key]):
            return f"{key} must be a list of strings"
    return None


def _event(record: Record) -> str | None:
    if not isinstance(record.get("action"), str) or not record["action"].strip():
        return "action (the event name) is required"
    if "occurred_at" in record and not _is_time(record["occurred_at"]):
        return "occurred_at must be an ISO-8601 time"
    value = record.get("properties", {}).get("value", 0)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < MAX_VALUE:
        return f"properties.value must be whole cents below {MAX_VALUE:,}"
    return None


def _order(record: Record) -> str | None:
    if record.get("action") not in ORDER_ACTIONS:
        return f"action must be one of {', '.join(sorted(ORDER_ACTIONS))}"
    if not record.get("provider") or not record.get("order_id"):
        return "provider and order_id are required"
    if any(not isinstance(item, dict) or not item.get("name") for item in record.get("items", [])):
        return "every item needs a name"
    return None


def _is_time(value: Any) -> bool:
    try:
        datetime.fromisoformat(str(value))
    except ValueError:
        return False
    return True


RULES: dict[str, Callable[[Record], str | None]] = {
    "subscriber": _subscriber,
    "event": _event,
    "order": _order,
}
