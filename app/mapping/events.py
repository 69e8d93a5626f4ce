"""Segment track -> the parts of a Drip event (DripEmail/api-docs `rest/_events.md`).

Also Engage's `Audience Entered`/`Audience Exited`, which change a subscriber.
"""

from __future__ import annotations

from typing import Any

from app.drip_api import MAX_INT
from app.mapping.fields import collect_fields, entries_of, normalise_key
from app.mapping.types import Options, Problem
from app.mapping.values import Invalid, as_cents, as_int, as_timestamp, attempt, first_usable

AUDIENCE_EVENTS = {"Audience Entered": True, "Audience Exited": False}
CONVERSION_TOTAL_EVENT = "order completed"  # `total` is the revenue when `revenue` is absent


def audience_fields(
    event: str, properties: dict[str, Any], options: Options, problems: list[Problem]
) -> dict[str, Any] | None:
    """What an Engage `Audience Entered/Exited` changes on the subscriber."""
    raw = properties.get("audience_key")
    key = normalise_key(raw) if isinstance(raw, str) else ""
    if not key:
        problems.append(Problem("properties.audience_key", "missing; sent as a plain event"))
        return None
    member = AUDIENCE_EVENTS[event]
    fields: dict[str, Any] = {"custom_fields": {key: member}}
    if options.audience_tags:
        fields["tags" if member else "remove_tags"] = [key]
    return fields


def event_properties(
    event: str, properties: dict[str, Any], problems: list[Problem]
) -> dict[str, Any]:
    """Properties minus email/revenue, normalised; `value` = the conversion in cents."""
    props = collect_fields(
        entries_of(properties, "properties", skip=("email", "revenue")), problems
    )
    sent_value = props.pop("value", None)
    cents = conversion_cents(event, properties, problems)
    if cents is not None:
        props["value"] = cents
        if sent_value is not None:
            problems.append(Problem("properties.value", "replaced by the conversion from revenue"))
    elif sent_value is not None:
        try:
            props["value"] = drip_value(sent_value)
        except Invalid as exc:
            problems.append(Problem("properties.value", str(exc)))
    return props


def conversion_cents(event: str, properties: dict[str, Any], problems: list[Problem]) -> int | None:
    """`revenue` (else `total` on Order Completed) in dollars -> cents, as Segment's facade."""
    source = "revenue"
    if properties.get(source) is None and event.strip().casefold() == CONVERSION_TOTAL_EVENT:
        source = "total"
    cents: int | None = attempt(properties.get(source), as_cents, f"properties.{source}", problems)
    return cents


def drip_value(value: Any) -> int:
    """A `value` sent as is must already be Drip's: whole cents, 0 <= value < 2^31 - 1."""
    reason = f"Drip reads it as conversion cents: expected a whole number from 0 below {MAX_INT}"
    try:
        cents = as_int(value)
    except Invalid as exc:
        raise Invalid(reason + "; dropped") from exc
    if cents < 0:
        raise Invalid(reason + "; dropped")
    return cents


def occurred_at(message: dict[str, Any], problems: list[Problem]) -> dict[str, str]:
    """`{"occurred_at": ...}` from `timestamp`, else `originalTimestamp`; {} if neither."""
    when = first_usable(message, ("timestamp", "originalTimestamp"), as_timestamp, problems)
    return {"occurred_at": when} if when else {}
