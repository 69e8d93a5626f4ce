"""Properties of the Segment -> Drip mapper over random, often malformed, messages.

Whatever arrives, `map_message` returns (never raises), and every record it
emits keeps Drip's documented rules (DripEmail/api-docs `source/includes/...`).
"""

from __future__ import annotations

import copy
import json
import math
import re
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from app.mapping.fields import MAX_VALUE_CHARS, normalise_key
from app.mapping.to_drip import ids_to_look_up, map_message
from app.mapping.types import DripCall, Options, Outcome, Problem

MAX_DRIP_INT = 2_147_483_647
KEY = re.compile(r"[a-z0-9_]+")
UTC_SECONDS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
ORDER_ACTIONS = {"placed", "updated", "paid", "fulfilled", "refunded", "canceled"}
ORDER_AMOUNTS = ("grand_total", "total_discounts", "total_taxes", "total_shipping", "refund_amount")


def mostly(good: st.SearchStrategy[Any], bad: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """`good` nine times in ten, else `bad` (wrong types, random JSON)."""
    return st.integers(0, 9).flatmap(lambda n: bad if n == 0 else good)


scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
emails = st.sampled_from(["jd@example.com", " JD@Example.com ", "nope", "", "a@b"]) | st.emails()
ids = st.sampled_from(["u1", "a1", "jd@example.com"]) | st.text(max_size=6) | st.integers()
keys = st.sampled_from(
    [
        "email",
        "name",
        "firstName",
        "tags",
        "remove_tags",
        "address",
        "revenue",
        "total",
        "value",
        "order_id",
        "products",
        "audience_key",
        "drip_x",
        "Shirt Size",
        "new_email",
        "custom_fields",
        "prospect",
        "eu_consent",
        "first_time_shopper",
        "provider",
    ]
) | st.text(max_size=10)
amounts = st.integers() | st.floats() | st.sampled_from(["$9.99", "abc", "1e999", "-3", "NaN"])
products = st.lists(
    st.dictionaries(
        st.sampled_from(["product_id", "sku", "name", "price", "quantity", "category", "url"]),
        amounts | json_values,
        max_size=6,
    )
    | json_values,
    max_size=4,
)
known_fields = st.fixed_dictionaries(
    {},
    optional={
        "email": emails,
        "order_id": ids | json_values,
        "products": products,
        "revenue": amounts,
        "total": amounts,
        "value": amounts,
        "audience_key": keys | json_values,
        "tags": st.text() | st.lists(json_values | st.text(), max_size=3),
        "address": st.dictionaries(
            st.sampled_from(["street", "city", "postal_code", "postalCode", "country"]), scalars
        ),
        "name": json_values,
        "lifetime_value": amounts,
    },
)
bags = st.tuples(known_fields, st.dictionaries(keys, json_values | emails, max_size=8)).map(
    lambda parts: {**parts[1], **parts[0]}
)
timestamps = (
    st.sampled_from(
        [
            "2015-02-23T22:28:55.111Z",
            "2015-12-12T19:11:01-05:00",
            "0001-01-01T00:00:00+01:00",
            "9999-12-31T23:59:59-01:00",
            "yesterday",
            "2015-02-23",
        ]
    )
    | json_values
)
integrations = (
    st.fixed_dictionaries(
        {},
        optional={
            "All": json_values,
            "all": json_values,
            "Drip": json_values
            | st.fixed_dictionaries(
                {},
                optional={
                    "campaignId": ids | json_values,
                    "doubleOptin": json_values,
                    "reactivateIfRemoved": json_values,
                },
            ),
        },
    )
    | json_values
)
contexts = (
    st.fixed_dictionaries(
        {},
        optional={
            "traits": bags,
            "ip": json_values,
            "timezone": json_values,
            "personas": st.fixed_dictionaries(
                {"computation_key": keys | json_values},
                optional={
                    "computation_class": st.sampled_from(["audience", "trait"]) | json_values
                },
            )
            | json_values,
        },
    )
    | json_values
)
messages = st.fixed_dictionaries(
    {"type": mostly(st.sampled_from(["identify", "track", "track", "alias", "page"]), json_values)},
    optional={
        "userId": ids | json_values,
        "anonymousId": ids | json_values,
        "previousId": ids | json_values,
        "event": mostly(
            st.sampled_from(
                [
                    "Order Completed",
                    "Checkout Started",
                    "Order Refunded",
                    "Order Cancelled",
                    "order updated",
                    "Audience Entered",
                    "Audience Exited",
                    "Signed Up",
                    "",
                    " ",
                ]
            ),
            json_values,
        ),
        "traits": mostly(bags, json_values),
        "properties": mostly(bags, json_values),
        "context": contexts,
        "integrations": integrations,
        "timestamp": timestamps,
        "originalTimestamp": timestamps,
    },
)
knowns = st.dictionaries(ids.map(str), emails, max_size=4)
options = st.builds(
    Options,
    campaign_id=st.none() | st.sampled_from(["555", ""]),
    orders=st.booleans(),
    audience_tags=st.booleans(),
)


@settings(max_examples=1000, deadline=None)
@given(messages, knowns, options)
def test_the_mapper_never_raises_and_keeps_drips_rules(
    message: dict[str, Any], known: dict[str, str], opts: Options
) -> None:
    before = copy.deepcopy(message)
    result = map_message(message, known, opts)
    assert message == before, "the mapper must not change its input"
    assert result == map_message(message, known, opts), "the mapper must be deterministic"
    check_outcome(result)


@settings(max_examples=1000, deadline=None)
@given(messages, st.data(), options)
def test_the_mapper_reads_known_emails_only_for_the_ids_it_names(
    message: dict[str, Any], data: st.DataObject, opts: Options
) -> None:
    """The store is read for `ids_to_look_up` alone: the answer must be the same."""
    keys = ("userId", "anonymousId", "previousId")
    own = {str(message[k]) for k in keys if isinstance(message.get(k), str | int)}
    known = {i: data.draw(emails) for i in own}
    wanted = ids_to_look_up(message)
    narrowed = {i: e for i, e in known.items() if i in wanted}
    assert map_message(message, narrowed, opts) == map_message(message, known, opts)


@given(st.text())
def test_normalised_keys_are_drip_identifiers_and_stable(key: str) -> None:
    normal = normalise_key(key)
    assert normal == "" or (KEY.fullmatch(normal) and not normal.startswith("drip_"))
    assert normalise_key(normal) == normal


def check_outcome(result: Outcome) -> None:
    assert all(isinstance(p, Problem) and p.field and p.reason for p in result.problems)
    assert all(isinstance(k, str) and "@" in v for k, v in result.learned.items())
    if result.skip is not None:
        assert result.calls == []
    for call in result.calls:
        assert isinstance(call.email, str) and "@" in call.email
        assert call.record["email"] == call.email or "new_email" in call.record
        json.dumps(call.record, allow_nan=False)  # valid JSON for Drip
        assert_no_nulls(call.record)
        CHECKS[call.kind](call)


def check_subscriber(call: DripCall) -> None:
    record = call.record
    for key in ("email", "new_email"):
        assert key not in record or ("@" in record[key] and isinstance(record[key], str))
    for key, value in record.get("custom_fields", {}).items():
        assert KEY.fullmatch(key) and not key.startswith("drip_")
        assert isinstance(value, str | int | float)
        assert not isinstance(value, str) or len(value) <= MAX_VALUE_CHARS
    for key in ("tags", "remove_tags"):
        assert key not in record or all(isinstance(t, str) and t.strip() for t in record[key])
    assert record.get("status", "active") in ("active", "unsubscribed")
    assert record.get("eu_consent", "granted") in ("granted", "denied")
    for key in ("prospect", "sms_consent"):
        assert isinstance(record.get(key, True), bool)


def check_event(call: DripCall) -> None:
    record = call.record
    assert isinstance(record["action"], str) and record["action"].strip()
    assert UTC_SECONDS.fullmatch(record.get("occurred_at", "2000-01-01T00:00:00Z"))
    properties = record["properties"]
    assert all(KEY.fullmatch(k) and not k.startswith("drip_") for k in properties)
    if "value" in properties:
        value = properties["value"]
        assert type(value) is int and 0 <= value < MAX_DRIP_INT


def check_order(call: DripCall) -> None:
    record = call.record
    assert record["action"] in ORDER_ACTIONS
    assert KEY.fullmatch(record["provider"])
    assert isinstance(record["order_id"], str) and record["order_id"].strip()
    assert UTC_SECONDS.fullmatch(record.get("occurred_at", "2000-01-01T00:00:00Z"))
    for key in ORDER_AMOUNTS:
        assert key not in record or is_number(record[key])
    for item in record.get("items", []):
        assert isinstance(item["name"], str) and item["name"].strip()
        for key in ("price", "quantity", "total"):
            assert key not in item or is_number(item[key])


def check_campaign(call: DripCall) -> None:
    assert isinstance(call.campaign_id, str) and call.campaign_id.strip()
    assert isinstance(call.record["reactivate_if_removed"], bool)
    assert isinstance(call.record.get("double_optin", True), bool)


CHECKS = {
    "subscriber": check_subscriber,
    "event": check_event,
    "order": check_order,
    "campaign": check_campaign,
}


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def assert_no_nulls(value: Any) -> None:
    assert value is not None
    if isinstance(value, dict):
        for item in value.values():
            assert_no_nulls(item)
    elif isinstance(value, list):
        for item in value:
            assert_no_nulls(item)
