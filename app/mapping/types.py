"""What the Segment -> Drip mapper returns: Drip calls to make, or why none."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from app.drip_api import Kind


@dataclass(frozen=True)
class DripCall:
    """One record for one Drip endpoint.

    `record` is exactly the object that goes inside Drip's wrapper
    (`{"subscribers": [record]}`, `{"events": [record]}`, ...); for an order it is
    the whole Shopper Activity body. `campaign_id` is set for kind "campaign".
    """

    kind: Kind
    email: str
    record: dict[str, Any]
    campaign_id: str | None = None


@dataclass(frozen=True)
class Problem:
    """A field that could not be mapped as sent, and why (the rest still is)."""

    field: str
    reason: str


@dataclass(frozen=True)
class Options:
    """Settings that change the mapping."""

    campaign_id: str | None = None  # DRIP_CAMPAIGN_ID
    orders: bool = True  # order events go to the Shopper Activity API
    audience_tags: bool = True  # Engage audiences also become tags
    # Sent with BROWSER_WRITE_KEY (public): no rename, no other campaign (README).
    browser: bool = False


@dataclass
class Outcome:
    """The result of mapping one message.

    `skip` is the reason when the message makes no Drip call on purpose
    (`missing_email`, `disabled_by_integrations`, `unsupported_type`, ...).
    `learned` maps ids (userId, anonymousId) to the email they belong to, for the
    caller's identity store.
    """

    calls: list[DripCall] = field(default_factory=list)
    learned: dict[str, str] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    skip: str | None = None
