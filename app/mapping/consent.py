"""Unsubscribes: a Segment identify that says `unsubscribed: true`, and the rule that
no later call resubscribes anyone (docs/mapping.md, "Unsubscribes"). Pure."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace
from typing import Any

from app.mapping.types import DripCall, Problem
from app.mapping.values import as_bool, attempt

UNSUBSCRIBED = "traits.unsubscribed"  # the trait; Drip's own Identify carries it too
KEPT = "ignored: the person unsubscribed from all mailings and the bridge never resubscribes"


def unsubscribes(message: dict[str, Any], problems: list[Problem]) -> bool:
    """True when the identify says the person unsubscribed (`unsubscribed: true`);
    `false` is no instruction: the bridge never resubscribes anyone."""
    traits = message.get("traits")
    value = traits.get("unsubscribed") if isinstance(traits, dict) else None
    return attempt(value, as_bool, UNSUBSCRIBED, problems) is True


def unsubscribe_call(email: str) -> DripCall:
    """Unsubscribe from all mailings (rest/_subscribers.md, `/unsubscribe_all`)."""
    return DripCall("unsubscribe", email, {"email": email})


def may_resubscribe(call: DripCall) -> bool:
    """Whether a call could make an unsubscribed person active again."""
    return call.kind == "campaign" or (
        call.kind == "subscriber" and call.record.get("status") == "active"
    )


def keep_unsubscribed(
    calls: list[DripCall], unsubscribed: Collection[str]
) -> tuple[list[DripCall], list[Problem]]:
    """`calls` without what would resubscribe a person in `unsubscribed` (lowercased
    emails): `status: active` is dropped from an upsert, a campaign subscription is
    not made. Returns the calls kept and a problem for each change."""
    kept: list[DripCall] = []
    problems: list[Problem] = []
    for call in calls:
        if not (may_resubscribe(call) and addresses(call) & set(unsubscribed)):
            kept.append(call)
        elif call.kind == "campaign":
            problems.append(Problem(f"campaign {call.campaign_id}", KEPT))
        else:
            record = {k: v for k, v in call.record.items() if k != "status"}
            kept.append(replace(call, record=record))
            problems.append(Problem("traits.status", KEPT))
    return kept, problems


def addresses(call: DripCall) -> set[str]:
    """The lowercased emails a call is about (its email, and any `new_email`)."""
    found = (call.email, call.record.get("new_email"))
    return {e.lower() for e in found if isinstance(e, str)}
