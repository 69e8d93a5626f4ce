"""Drip webhook -> Segment Track: exact kwargs per event, stable ids, schema, loop guard."""

from __future__ import annotations

import copy
import hashlib
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from marshmallow import ValidationError
from segment.analytics import Client

from app.drip_api import WEBHOOK_EVENTS as DRIP_EVENTS
from app.mapping.to_segment import (
    DEFAULT_FORWARDED,
    event_id,
    is_forwarded,
    segment_event_name,
    to_track,
)
from app.pipeline.drip_schema import EVENT_PATTERN, DripWebhookSchema
from app.segment_api import LOOP_GUARD_INTEGRATIONS, LOOP_MARKER, is_echo

VERSION = "0.1.0"
SUBSCRIBER_ID = "z1togz2hcjrkpp5treip"
EMAIL = "john@acme.com"
OCCURRED_AT = "2013-06-21T10:31:58Z"
WHEN = datetime(2013, 6, 21, 10, 31, 58, tzinfo=UTC)
LOOP_GUARD = {
    "Drip": False,
    "Drip (Actions)": False,
    "Webhooks": False,
    "Webhooks (Actions)": False,
}

# The subscriber resource from Drip's webhook docs.
SUBSCRIBER: dict[str, Any] = {
    "id": SUBSCRIBER_ID,
    "status": "active",
    "email": EMAIL,
    "custom_fields": {"shirt_size": "Medium"},
    "tags": ["Customer", "SEO"],
    "time_zone": "America/Los_Angeles",
    "utc_offset": -440,
    "created_at": "2013-06-21T10:31:58Z",
    "ip_address": "123.123.123.123",
    "user_agent": "Mozilla/5.0",
    "lifetime_value": 2000,
    "original_referrer": "https://google.com/search",
    "landing_url": "https://www.drip.co/landing",
    "prospect": True,
    "base_lead_score": 30,
    "lead_score": 65,
    "user_id": "123",
}

CAMPAIGN = {"campaign_id": "9999999", "campaign_name": "Email course"}
EMAIL_SENT = {"delivery_id": "99999", "email_id": "88888", "email_subject": "Email Course: Day 1"}
USER_AGENT = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_10_1) AppleWebKit/537.36"
CLICK = {**EMAIL_SENT, "url": "http://www.example.com", "user_agent": USER_AGENT}
CLICK_PROPERTIES = {**CLICK, "ip_address": "111.111.111.11"}
TRIGGER = {"url": "http://example.com", "ip_address": "128.1.1.1", "trigger_id": 99999999}


def envelope(event: str, properties: dict[str, Any] | None, **subscriber: Any) -> dict[str, Any]:
    """A webhook as Drip sends it; `properties=None` leaves the key out."""
    data: dict[str, Any] = {"account_id": "9999999", "subscriber": {**SUBSCRIBER, **subscriber}}
    if properties is not None:
        data["properties"] = properties
    return {"event": event, "data": data, "occurred_at": OCCURRED_AT}


def expected(name: str, properties: dict[str, Any], **context: Any) -> dict[str, Any]:
    """The exact kwargs for the docs' subscriber (user_id "123") and this event."""
    return {
        "user_id": "123",
        "event": name,
        "properties": {**properties, "drip_subscriber_id": SUBSCRIBER_ID},
        "context": {
            "traits": {"email": EMAIL},
            "integration": {"name": "drip-bridge", "version": VERSION},
            **context,
        },
        "timestamp": WHEN,
        "message_id": None,  # filled in by the test: event_id is pinned separately
        "integrations": LOOP_GUARD,
    }


def row(event: str, sent: dict[str, Any] | None, name: str, got: dict[str, Any], **ctx: Any) -> Any:
    """One table row; its id is a sentence."""
    return pytest.param(
        envelope(f"subscriber.{event}", sent),
        expected(name, got, **ctx),
        id=f"{event} becomes {name}",
    )


# Drip webhook (properties as documented) -> exact Segment Track kwargs.
EVERY_EVENT = [
    row("created", None, "Created", {}),
    row("deleted", None, "Deleted", {}),
    row("marked_as_deliverable", {"source": "drip"}, "Marked As Deliverable", {"source": "drip"}),
    row(
        "marked_as_undeliverable",
        {"source": "drip"},
        "Marked As Undeliverable",
        {"source": "drip"},
    ),
    row("subscribed_to_email_marketing", None, "Subscribed To Email Marketing", {}),
    row("subscribed_to_campaign", CAMPAIGN, "Subscribed To Campaign", CAMPAIGN),
    row("removed_from_campaign", CAMPAIGN, "Removed From Campaign", CAMPAIGN),
    row("unsubscribed_from_campaign", CAMPAIGN, "Unsubscribed", CAMPAIGN),
    row("unsubscribed_all", {}, "Unsubscribed", {}),
    row("reactivated", {}, "Reactivated", {}),
    row("completed_campaign", CAMPAIGN, "Completed Campaign", CAMPAIGN),
    row("applied_tag", {"tag": "Customer"}, "Applied Tag", {"tag": "Customer"}),
    row("removed_tag", {"tag": "Customer"}, "Removed Tag", {"tag": "Customer"}),
    row(
        "updated_custom_field",
        {"identifier": "first_name", "value": "John", "previous_value": "", "source": "drip"},
        "Updated Custom Field",
        {"identifier": "first_name", "value": "John", "previous_value": "", "source": "drip"},
    ),
    row(
        "updated_email_address",
        {"value": "jdoe@gmail.com", "previous_value": "johndoe@gmail.com", "source": "drip"},
        "Updated Email Address",
        {"value": "jdoe@gmail.com", "previous_value": "johndoe@gmail.com", "source": "drip"},
    ),
    row(
        "updated_lifetime_value",
        {"value": 10000, "previous_value": 9500, "source": "drip"},
        "Updated Lifetime Value",
        {"value": 10000, "previous_value": 9500, "source": "drip"},
    ),
    row(
        "updated_time_zone",
        {"value": "America/Chicago", "previous_value": "America/Los_Angeles"},
        "Updated Time Zone",
        {"value": "America/Chicago", "previous_value": "America/Los_Angeles"},
    ),
    row("received_email", EMAIL_SENT, "Email Delivered", EMAIL_SENT),
    row("opened_email", EMAIL_SENT, "Email Opened", EMAIL_SENT),
    row(
        "clicked_email",
        CLICK_PROPERTIES,
        "Email Link Clicked",
        {**EMAIL_SENT, "link_url": "http://www.example.com"},
        ip="111.111.111.11",
        userAgent=USER_AGENT,
    ),
    row("bounced", EMAIL_SENT, "Email Bounced", EMAIL_SENT),
    row("complained", EMAIL_SENT, "Email Marked as Spam", EMAIL_SENT),
    row(
        "clicked_trigger_link",
        {**TRIGGER, "source": "drip"},
        "Clicked Trigger Link",
        {"url": "http://example.com", "trigger_id": 99999999, "source": "drip"},
        ip="128.1.1.1",
    ),
    row("visited_page", {"url": "/blog/1"}, "Visited Page", {"url": "/blog/1"}),
    row("became_lead", {"lead_score": 68}, "Became Lead", {"lead_score": 68}),
    row("became_non_prospect", None, "Became Non Prospect", {}),
    row(
        "updated_lead_score",
        {"lead_score": 68, "previous_lead_score": 60},
        "Updated Lead Score",
        {"lead_score": 68, "previous_lead_score": 60},
    ),
    row(
        "performed_custom_event",
        {"action": "Signed up for a trial", "plan": "rock-star", "amount": 2999},
        "Performed Custom Event",
        {"action": "Signed up for a trial", "plan": "rock-star", "amount": 2999},
    ),
    row(
        "updated_alias",
        {"identifier": "user_id", "value": "123", "previous_value": "", "source": "drip"},
        "Updated Alias",
        {"identifier": "user_id", "value": "123", "previous_value": "", "source": "drip"},
    ),
]


def test_the_table_covers_each_of_the_29_documented_drip_events_once() -> None:
    events = [param.values[0]["event"] for param in EVERY_EVENT]
    assert len(DRIP_EVENTS) == 29
    assert len(set(DRIP_EVENTS)) == 29
    assert sorted(events) == sorted(DRIP_EVENTS)


@pytest.mark.parametrize(("webhook", "kwargs"), EVERY_EVENT)
def test_each_drip_event_maps_to_exactly_these_track_kwargs(
    webhook: dict[str, Any], kwargs: dict[str, Any]
) -> None:
    assert to_track(webhook, VERSION) == {**kwargs, "message_id": event_id(webhook)}


@pytest.mark.parametrize(("webhook", "kwargs"), EVERY_EVENT)
def test_each_mapped_event_passes_the_schema_and_segments_own_client(
    webhook: dict[str, Any], kwargs: dict[str, Any]
) -> None:
    loaded = DripWebhookSchema().load(webhook)
    track = to_track(loaded, VERSION)
    client = Client("write-key", send=False, sync_mode=True)
    ok, message = client.track(**copy.deepcopy(track))
    assert ok
    assert message["userId"] == "123"
    assert message["messageId"] == track["message_id"]
    assert message["timestamp"] == "2013-06-21T10:31:58.000+00:00"
    assert message["context"]["integration"] == {"name": "drip-bridge", "version": VERSION}
    assert message["integrations"] == LOOP_GUARD


# --- identity ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("subscriber", "identity"),
    [
        pytest.param({"user_id": "123"}, {"user_id": "123"}, id="a user_id is the userId only"),
        pytest.param({"user_id": 42}, {"user_id": "42"}, id="an integer user_id becomes a string"),
        pytest.param({"user_id": ""}, {"anonymous_id": EMAIL}, id="an empty user_id is absent"),
        pytest.param({"user_id": "  "}, {"anonymous_id": EMAIL}, id="a blank user_id is absent"),
        pytest.param({"user_id": None}, {"anonymous_id": EMAIL}, id="a null user_id is absent"),
    ],
)
def test_user_id_wins_else_the_email_is_the_anonymous_id(
    subscriber: dict[str, Any], identity: dict[str, str]
) -> None:
    track = to_track(envelope("subscriber.opened_email", EMAIL_SENT, **subscriber), VERSION)
    assert {k: track[k] for k in ("user_id", "anonymous_id") if k in track} == identity
    assert track["context"]["traits"] == {"email": EMAIL}


def test_a_subscriber_without_user_id_key_is_sent_anonymously_by_email() -> None:
    webhook = envelope("subscriber.bounced", EMAIL_SENT)
    del webhook["data"]["subscriber"]["user_id"]
    track = to_track(webhook, VERSION)
    assert track["anonymous_id"] == EMAIL
    assert "user_id" not in track


def test_a_webhook_without_email_is_refused_with_a_reason() -> None:
    webhook = envelope("subscriber.bounced", EMAIL_SENT)
    del webhook["data"]["subscriber"]["email"]
    with pytest.raises(ValueError, match=r"data\.subscriber\.email is missing"):
        to_track(webhook, VERSION)


# --- timestamp, purity ------------------------------------------------------


@pytest.mark.parametrize(
    ("occurred_at", "timestamp"),
    [
        pytest.param("2013-06-21T10:31:58Z", WHEN, id="Z is UTC"),
        pytest.param("2013-06-21T12:31:58+02:00", WHEN, id="an offset is converted to UTC"),
        pytest.param("2013-06-21T10:31:58", WHEN, id="no offset is read as UTC"),
        pytest.param(
            "2013-06-21T10:31:58.250Z",
            WHEN + timedelta(milliseconds=250),
            id="fractions of a second are kept",
        ),
    ],
)
def test_occurred_at_becomes_an_aware_utc_timestamp(occurred_at: str, timestamp: datetime) -> None:
    webhook = {**envelope("subscriber.opened_email", EMAIL_SENT), "occurred_at": occurred_at}
    result = to_track(webhook, VERSION)["timestamp"]
    assert result == timestamp
    assert result.tzinfo is UTC


def test_to_track_does_not_change_the_webhook_it_reads() -> None:
    webhook = envelope("subscriber.clicked_email", {**CLICK_PROPERTIES, "nested": {"a": [1]}})
    before = copy.deepcopy(webhook)
    track = to_track(webhook, VERSION)
    track["properties"]["nested"]["a"].append(2)
    assert webhook == before
    assert to_track(webhook, VERSION) == to_track(before, VERSION)


def test_our_own_subscriber_id_wins_over_a_property_of_the_same_name() -> None:
    webhook = envelope("subscriber.performed_custom_event", {"drip_subscriber_id": "spoof"})
    assert to_track(webhook, VERSION)["properties"]["drip_subscriber_id"] == SUBSCRIBER_ID


# --- event names and forwarding ---------------------------------------------


@pytest.mark.parametrize(
    ("drip_event", "name"),
    [
        pytest.param("subscriber.applied_tag", "Applied Tag", id="words become title case"),
        pytest.param("subscriber.some_new_event", "Some New Event", id="an unknown event too"),
        pytest.param("subscriber.complained", "Email Marked as Spam", id="the table wins"),
        pytest.param("subscriber.v2_thing", "V2 Thing", id="digits are kept"),
    ],
)
def test_segment_event_names_follow_the_spec_table(drip_event: str, name: str) -> None:
    assert segment_event_name(drip_event) == name


@pytest.mark.parametrize(
    ("drip_event", "forwarded", "result"),
    [
        pytest.param("subscriber.opened_email", None, True, id="email events go by default"),
        pytest.param(
            "subscriber.performed_custom_event", None, False, id="custom events stay by default"
        ),
        pytest.param("subscriber.new_thing", None, False, id="unknown events stay by default"),
        pytest.param(
            "subscriber.performed_custom_event",
            frozenset({"subscriber.performed_custom_event"}),
            True,
            id="custom events go when configured",
        ),
        pytest.param(
            "subscriber.opened_email", frozenset(), False, id="an empty set forwards nothing"
        ),
    ],
)
def test_which_events_are_forwarded_is_configurable(
    drip_event: str, forwarded: frozenset[str] | None, result: bool
) -> None:
    assert is_forwarded(drip_event, forwarded) is result


def test_every_documented_event_but_custom_events_is_forwarded_by_default() -> None:
    assert set(DRIP_EVENTS) - DEFAULT_FORWARDED == {"subscriber.performed_custom_event"}


# --- the stable event id ----------------------------------------------------


def test_the_event_id_is_sha256_of_canonical_json_and_never_changes() -> None:
    # Pinned: a new hash after a deploy would forward Drip's replays twice.
    canonical = (
        '{"event":"subscriber.clicked_email","occurred_at":"2013-06-21T10:31:58Z",'
        '"properties":{"delivery_id":"99999","email_id":"88888",'
        '"email_subject":"Email Course: Day 1","ip_address":"111.111.111.11",'
        f'"url":"http://www.example.com","user_agent":"{USER_AGENT}"}},'
        '"subscriber_id":"z1togz2hcjrkpp5treip"}'
    )
    webhook = envelope("subscriber.clicked_email", CLICK_PROPERTIES)
    assert event_id(webhook) == "drip-" + hashlib.sha256(canonical.encode()).hexdigest()
    assert event_id(webhook) == PINNED_CLICK_ID


PINNED_CLICK_ID = "drip-e600dbe70bbf3d623cb9f8a52c78ee3578cffb8e9ebad49d648b98354dace78e"


def test_identical_webhooks_get_the_same_id_of_at_most_100_chars() -> None:
    first = envelope("subscriber.opened_email", EMAIL_SENT)
    second = copy.deepcopy(first)
    assert event_id(first) == event_id(second)
    assert event_id(first).startswith("drip-")
    assert len(event_id(first)) <= 100


def change(path: str, value: Any) -> Any:
    def edit(webhook: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = webhook
        for key in parents:
            node = node[key]
        node[last] = value

    return edit


@pytest.mark.parametrize(
    "edit",
    [
        pytest.param(change("event", "subscriber.bounced"), id="another event name"),
        pytest.param(change("data.subscriber.id", "other"), id="another subscriber"),
        pytest.param(change("occurred_at", "2013-06-21T10:31:59Z"), id="another second"),
        pytest.param(change("data.properties.email_id", "77777"), id="another property value"),
        pytest.param(change("data.properties.extra", None), id="one more property"),
        pytest.param(change("data.properties", {}), id="no properties"),
    ],
)
def test_any_difference_in_the_identifying_fields_gives_another_id(edit: Any) -> None:
    webhook = envelope("subscriber.opened_email", EMAIL_SENT)
    other = copy.deepcopy(webhook)
    edit(other)
    assert event_id(other) != event_id(webhook)


@pytest.mark.parametrize(
    "edit",
    [
        pytest.param(change("data.subscriber.email", "x@y.z"), id="another email"),
        pytest.param(change("data.subscriber.tags", []), id="other subscriber fields"),
        pytest.param(change("data.account_id", 9999999), id="an integer account id"),
    ],
)
def test_fields_outside_the_identifying_ones_do_not_change_the_id(edit: Any) -> None:
    webhook = envelope("subscriber.opened_email", EMAIL_SENT)
    other = copy.deepcopy(webhook)
    edit(other)
    assert event_id(other) == event_id(webhook)


def test_missing_properties_and_empty_properties_get_the_same_id() -> None:
    assert event_id(envelope("subscriber.created", None)) == event_id(
        envelope("subscriber.created", {})
    )


def test_an_integer_subscriber_id_gets_the_same_id_as_its_string() -> None:
    assert event_id(envelope("subscriber.created", {}, id=7)) == event_id(
        envelope("subscriber.created", {}, id="7")
    )


def test_the_schema_keeps_the_id_of_the_webhook_as_sent() -> None:
    webhook = envelope("subscriber.clicked_email", CLICK_PROPERTIES)
    assert event_id(DripWebhookSchema().load(webhook)) == event_id(webhook)


@given(st.dictionaries(st.text(max_size=8), st.integers() | st.text(max_size=8), max_size=12))
def test_key_order_in_properties_does_not_change_the_id(properties: dict[str, Any]) -> None:
    shuffled = dict(reversed(list(properties.items())))
    nested = {"outer": shuffled, "z": 1}
    assert event_id(envelope("subscriber.x", properties)) == event_id(
        envelope("subscriber.x", shuffled)
    )
    assert event_id(envelope("subscriber.x", {"z": 1, "outer": properties})) == event_id(
        envelope("subscriber.x", nested)
    )


# --- the loop guard ---------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "echo"),
    [
        pytest.param(
            {"context": {"integration": {"name": "drip-bridge", "version": "1"}}},
            True,
            id="our marker is an echo",
        ),
        pytest.param(
            {"context": {"integration": {"name": "Drip"}}}, False, id="another source is not"
        ),
        pytest.param({"context": {}}, False, id="no integration is not"),
        pytest.param({}, False, id="no context is not"),
        pytest.param({"context": "drip-bridge"}, False, id="a string context is not"),
        pytest.param({"context": {"integration": "drip-bridge"}}, False, id="a string is not"),
        pytest.param({"context": {"integration": None}}, False, id="a null integration is not"),
        pytest.param({"context": {"library": {"name": "drip-bridge"}}}, False, id="library is not"),
        pytest.param([], False, id="a list is not"),
        pytest.param(None, False, id="null is not"),
    ],
)
def test_is_echo_recognises_only_our_marker(message: Any, echo: bool) -> None:
    assert is_echo(message) is echo


def test_what_we_send_to_segment_is_recognised_as_an_echo_when_it_comes_back() -> None:
    track = to_track(envelope("subscriber.opened_email", EMAIL_SENT), VERSION)
    _, message = Client("k", send=False, sync_mode=True).track(**track)
    assert LOOP_MARKER == "drip-bridge"
    assert is_echo(message)


def test_each_call_gets_its_own_integrations_dict() -> None:
    track = to_track(envelope("subscriber.opened_email", EMAIL_SENT), VERSION)
    track["integrations"]["Drip"] = True
    assert LOOP_GUARD_INTEGRATIONS["Drip"] is False


# --- the schema -------------------------------------------------------------


def flat(messages: Any, prefix: str = "") -> dict[str, str]:
    """`{"data": {"subscriber": {"email": ["..."]}}}` -> `{"data.subscriber.email": "..."}`."""
    if isinstance(messages, list):
        return {prefix: " ".join(messages)}
    return {k: v for key, sub in messages.items() for k, v in flat(sub, f"{prefix}{key}.").items()}


def without(path: str) -> dict[str, Any]:
    webhook = envelope("subscriber.opened_email", EMAIL_SENT)
    *parents, last = path.split(".")
    node = webhook
    for key in parents:
        node = node[key]
    del node[last]
    return webhook


def replaced(path: str, value: Any) -> dict[str, Any]:
    webhook = envelope("subscriber.opened_email", EMAIL_SENT)
    change(path, value)(webhook)
    return webhook


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        pytest.param([], {"_schema.": "must be a JSON object"}, id="a list is not an envelope"),
        pytest.param(without("event"), {"event.": "Missing"}, id="event is required"),
        pytest.param(replaced("event", 5), {"event.": "Must be a string"}, id="event is a string"),
        pytest.param(
            replaced("event", "opened_email"),
            {"event.": "like \"subscriber.opened_email\", got 'opened_email'"},
            id="event needs the subscriber prefix",
        ),
        pytest.param(
            replaced("event", "subscriber.opened_email\n"),
            {"event.": "Must be a Drip event name"},
            id="event has no trailing newline",
        ),
        pytest.param(
            replaced("event", "subscriber.Opened Email"),
            {"event.": "Must be a Drip event name"},
            id="event is snake case",
        ),
        pytest.param(without("data"), {"data.": "Missing"}, id="data is required"),
        pytest.param(replaced("data", []), {"data._schema.": "Must be an object"}, id="data obj"),
        pytest.param(
            without("data.account_id"), {"data.account_id.": "Missing"}, id="account is required"
        ),
        pytest.param(
            replaced("data.account_id", True),
            {"data.account_id.": "string or an integer"},
            id="account id is not a boolean",
        ),
        pytest.param(
            without("data.subscriber"), {"data.subscriber.": "Missing"}, id="subscriber required"
        ),
        pytest.param(
            without("data.subscriber.email"),
            {"data.subscriber.email.": "email is required to forward"},
            id="email is required",
        ),
        pytest.param(
            replaced("data.subscriber.email", " "),
            {"data.subscriber.email.": "Must not be empty"},
            id="email is not blank",
        ),
        pytest.param(
            without("data.subscriber.id"),
            {"data.subscriber.id.": "subscriber id"},
            id="subscriber id is required",
        ),
        pytest.param(
            replaced("data.subscriber.user_id", ["1"]),
            {"data.subscriber.user_id.": "string or an integer"},
            id="user id is a string or integer",
        ),
        pytest.param(
            replaced("data.properties", "x"),
            {"data.properties.": "Must be an object"},
            id="properties are an object",
        ),
        pytest.param(without("occurred_at"), {"occurred_at.": "ISO-8601"}, id="when is required"),
        pytest.param(
            replaced("occurred_at", "yesterday"),
            {"occurred_at.": "not ISO-8601: 'yesterday'"},
            id="when is ISO-8601",
        ),
        pytest.param(
            replaced("occurred_at", 1371810718),
            {"occurred_at.": "expected a string, got int"},
            id="when is not epoch seconds",
        ),
    ],
)
def test_bad_envelopes_get_errors_that_name_the_field_and_the_fix(
    body: Any, errors: dict[str, str]
) -> None:
    with pytest.raises(ValidationError) as caught:
        DripWebhookSchema().load(body)
    found = flat(caught.value.messages)
    assert set(found) == set(errors)
    for path, phrase in errors.items():
        assert phrase in found[path]


def test_an_unknown_event_name_is_valid_so_the_endpoint_can_count_it() -> None:
    loaded = DripWebhookSchema().load(envelope("subscriber.did_something_new", {}))
    assert loaded["event"] == "subscriber.did_something_new"


def test_the_schema_normalises_ids_and_properties_and_keeps_the_rest() -> None:
    webhook = envelope("subscriber.created", None, id=77, user_id=123)
    webhook["data"]["account_id"] = 9999999
    webhook["extra"] = True
    loaded = DripWebhookSchema().load(webhook)
    assert loaded["data"]["account_id"] == "9999999"
    assert loaded["data"]["subscriber"]["id"] == "77"
    assert loaded["data"]["subscriber"]["user_id"] == "123"
    assert loaded["data"]["subscriber"]["tags"] == ["Customer", "SEO"]
    assert loaded["data"]["properties"] == {}
    assert loaded["occurred_at"] == OCCURRED_AT
    assert loaded["extra"] is True


def test_null_properties_load_as_an_empty_object() -> None:
    webhook = envelope("subscriber.created", {})
    webhook["data"]["properties"] = None
    assert DripWebhookSchema().load(webhook)["data"]["properties"] == {}


# --- never raises on what the schema accepts --------------------------------

json_leaf = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
json_value = st.recursive(
    json_leaf,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
)
ids = st.text(min_size=1, max_size=30) | st.integers()
offsets = st.timedeltas(min_value=timedelta(hours=-23, minutes=-59), max_value=timedelta(hours=23))
moments = st.datetimes(timezones=st.none() | st.builds(timezone, offsets))
drip_properties = st.dictionaries(
    st.sampled_from(["url", "ip_address", "user_agent", "email_id", "campaign_id"])
    | st.text(max_size=10),
    json_value,
    max_size=6,
)
subscribers = st.fixed_dictionaries(
    {"email": st.text(min_size=1, max_size=40), "id": ids},
    optional={
        "user_id": st.none() | st.text(max_size=20) | st.integers(),
        "tags": st.lists(st.text(max_size=10), max_size=3),
        "custom_fields": st.dictionaries(st.text(max_size=8), json_value, max_size=3),
    },
)
webhooks = st.fixed_dictionaries(
    {
        "event": st.sampled_from(DRIP_EVENTS) | st.from_regex(EVENT_PATTERN, fullmatch=True),
        "data": st.fixed_dictionaries(
            {"account_id": ids, "subscriber": subscribers},
            optional={"properties": st.none() | drip_properties},
        ),
        "occurred_at": moments.map(datetime.isoformat),
    }
)


def load_or_none(webhook: dict[str, Any]) -> dict[str, Any] | None:
    try:
        return dict(DripWebhookSchema().load(webhook))
    except ValidationError:
        return None


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(webhooks)
def test_to_track_never_raises_on_a_webhook_the_schema_accepts(webhook: dict[str, Any]) -> None:
    loaded = load_or_none(webhook)
    assume(loaded is not None)
    assert loaded is not None
    for source in (webhook, loaded):
        track = to_track(source, VERSION)
        assert len(track["message_id"]) <= 100
        assert track["integrations"] == LOOP_GUARD
        assert track["context"]["integration"] == {"name": LOOP_MARKER, "version": VERSION}
        assert track["timestamp"].tzinfo is UTC
        assert ("user_id" in track) != ("anonymous_id" in track)
        Client("k", send=False, sync_mode=True).track(**copy.deepcopy(track))
