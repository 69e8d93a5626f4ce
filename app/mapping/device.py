"""Device mode: the rules the /drip.js plugin follows, taken from the server's own tables.

The plugin hands identify and track to Drip's tag (`_dcq`) in the page. It must
name fields and count revenue exactly as the server mapping does, so it gets
this table (served inside /drip.js) instead of a second hand-written copy: the
field table of `subscriber.py`, the key rules of `fields.py`, the revenue rule of
`events.py`, the email rule of `drip_api.py`. What a page may not do with the
public key (change a status) is left out of it as well.

Events the plugin hands to the tag are marked (`context.dripBridge.device`), so
their cloud-mode copy is skipped (`SENT_BY_PLUGIN`) instead of reaching Drip twice.
"""

from __future__ import annotations

from typing import Any

from app.drip_api import _EMAIL, CAMPAIGN_ID, MAX_EMAIL, MAX_INT, RESERVED_PREFIX
from app.mapping import fields as keys
from app.mapping.events import AUDIENCE_EVENTS, CONVERSION_TOTAL_EVENT
from app.mapping.orders import ORDER_ACTIONS
from app.mapping.subscriber import (
    _STATUS,
    CONSUMED,
    FIELDS,
    NESTED_CUSTOM_FIELDS,
    REMOVE_TAGS,
    STATUSES,
    TAGS,
)
from app.mapping.values import _NUMBER, Coerce, as_bool, as_consent, as_int, as_text, dig

SENT_BY_PLUGIN = "sent_by_device_mode"  # the skip reason of the cloud-mode copy
MARK = "context.dripBridge.device"  # set to true by the plugin on what it handed over
# The coercions of the field table, by the name the plugin knows them by.
COERCIONS: dict[Coerce, str] = {as_text: "text", as_bool: "bool", as_int: "int",
                                as_consent: "consent", _STATUS: "status"}  # fmt: skip
# Subscriber keys a page may not set (see `to_drip.BROWSER_ONLY`).
PAGE_DENIED = frozenset({"status"})


def handed_to_tag(message: dict[str, Any]) -> bool:
    """Whether the plugin already gave this message to Drip's tag in the page."""
    return dig(message, MARK) is True


def plugin_table() -> dict[str, Any]:
    """Everything the plugin needs to map as the server does, as JSON."""
    return {
        "destination": "Drip",
        "mark": MARK.split("."),
        "email": _EMAIL.pattern,
        "maxEmail": MAX_EMAIL,
        "campaignId": CAMPAIGN_ID.pattern,
        "fields": [
            [f.target, [p.split(".") for p in f.sources], COERCIONS[f.coerce]]
            for f in FIELDS
            if f.target not in PAGE_DENIED
        ],
        "statuses": list(STATUSES),
        "tags": TAGS[0].split("."),
        "removeTags": [p.split(".") for p in REMOVE_TAGS],
        "name": ["traits", "name"],  # split at its first space into first/last name
        "notCustom": sorted(CONSUMED),
        "nestedCustom": list(NESTED_CUSTOM_FIELDS),
        "key": {
            "camel": keys._CAMEL.pattern,
            "edge": keys._EDGE.pattern,
            "inner": keys._INNER.pattern,
            "reserved": RESERVED_PREFIX,
        },
        "maxValueChars": keys.MAX_VALUE_CHARS,
        "revenue": {
            "property": "revenue",
            "totalProperty": "total",
            "totalEvent": CONVERSION_TOTAL_EVENT,
            "dropped": ["email", "revenue"],
            "number": _NUMBER.pattern,
            "below": MAX_INT,
        },
        # Left to cloud mode: the server turns these into orders and audience changes.
        "serverEvents": sorted(ORDER_ACTIONS) + sorted(e.casefold() for e in AUDIENCE_EVENTS),
    }
