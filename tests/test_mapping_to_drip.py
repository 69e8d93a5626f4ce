"""Segment message -> exact Drip calls (docs/mapping.md), one table row per rule.

Each row: a message, what the bridge already knows (id -> email), the options,
and the exact `Outcome`. Spec examples are copied from segmentio/segment-docs
(`src/connections/spec/{identify,track}.md`, `spec/ecommerce/v2.md`,
`src/engage/using-engage-data.md`).
"""

from __future__ import annotations

from typing import Any

import pytest

from app.mapping.to_drip import map_message
from app.mapping.types import DripCall, Options, Outcome, Problem

DEFAULT = Options()
NO_ORDERS = Options(orders=False)
NO_AUDIENCE_TAGS = Options(audience_tags=False)
CAMPAIGN = Options(campaign_id="555")
LONG = "x" * 1001


def identify(traits: Any, **fields: Any) -> dict[str, Any]:
    return {"type": "identify", "userId": "u1", "traits": traits, **fields}


def track(event: Any, properties: Any, **fields: Any) -> dict[str, Any]:
    return {"type": "track", "userId": "u1", "event": event, "properties": properties, **fields}


def subscriber(record: dict[str, Any]) -> DripCall:
    return DripCall("subscriber", record["email"], record)


def event(record: dict[str, Any]) -> DripCall:
    return DripCall("event", record["email"], record)


def order(record: dict[str, Any]) -> DripCall:
    return DripCall("order", record["email"], record)


def campaign(campaign_id: str, record: dict[str, Any]) -> DripCall:
    return DripCall("campaign", record["email"], record, campaign_id=campaign_id)


def outcome(
    *calls: DripCall,
    learned: dict[str, str] | None = None,
    problems: list[Problem] | None = None,
    skip: str | None = None,
) -> Outcome:
    return Outcome(list(calls), learned or {}, problems or [], skip)


def skipped(reason: str, *problems: Problem) -> Outcome:
    return outcome(problems=list(problems), skip=reason)


U1 = {"u1": "jd@example.com"}  # what `learned` says after a message for u1 with jd's email
# A track's properties.email addresses that event only ("Invite Sent" carries the
# invitee's email): it is no longer learned as the userId's email (SPEC 4.1). These
# cases used to expect U1.
NOT_LEARNED: dict[str, str] = {}
JD = {"email": "jd@example.com"}

# segment-docs src/connections/spec/identify.md, the payload "with most common fields removed".
SPEC_IDENTIFY = {
    "type": "identify",
    "traits": {
        "name": "Peter Gibbons",
        "email": "peter@example.com",
        "plan": "premium",
        "logins": 5,
    },
    "userId": "97980cfea0067",
}
# segment-docs src/connections/spec/identify.md, "a complete example" (integrations: All false).
SPEC_IDENTIFY_COMPLETE = {
    "anonymousId": "507f191e810c19729de860ea",
    "channel": "browser",
    "context": {
        "ip": "8.8.8.8",
        "userAgent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_9_5) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Chrome/40.0.2214.115 Safari/537.36",
    },
    "integrations": {"All": False, "Mixpanel": True, "Salesforce": True},
    "messageId": "022bb90c-bbac-11e4-8dfc-aa07a5b093db",
    "receivedAt": "2015-02-23T22:28:55.387Z",
    "sentAt": "2015-02-23T22:28:55.111Z",
    "timestamp": "2015-02-23T22:28:55.111Z",
    "traits": {
        "name": "Peter Gibbons",
        "email": "peter@example.com",
        "plan": "premium",
        "logins": 5,
        "address": {
            "street": "6th St",
            "city": "San Francisco",
            "state": "CA",
            "postalCode": "94103",
            "country": "USA",
        },
    },
    "type": "identify",
    "userId": "97980cfea0067",
    "version": "1.1",
}
SPEC_IDENTIFY_FOR_DRIP = {
    **SPEC_IDENTIFY_COMPLETE,
    "integrations": {"All": False, "Mixpanel": True, "Salesforce": True, "Drip": True},
}
PETER_RECORD = {
    "email": "peter@example.com",
    "user_id": "97980cfea0067",
    "first_name": "Peter",
    "last_name": "Gibbons",
    "custom_fields": {"plan": "premium", "logins": 5},
}
# segment-docs src/connections/spec/track.md, first payload (no email: known from u1).
SPEC_TRACK = {
    "type": "track",
    "event": "User Registered",
    "properties": {"plan": "Pro Annual", "accountType": "Facebook"},
    "userId": "u1",
}
# segment-docs src/connections/spec/track.md, "a complete example".
SPEC_TRACK_COMPLETE = {
    "anonymousId": "23adfd82-aa0f-45a7-a756-24f2a7a4c895",
    "context": {
        "library": {"name": "analytics.js", "version": "2.11.1"},
        "page": {
            "path": "/academy/",
            "referrer": "",
            "search": "",
            "title": "Analytics Academy",
            "url": "https://segment.com/academy/",
        },
        "userAgent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_11_0) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Chrome/46.0.2490.86 Safari/537.36",
        "ip": "108.0.78.21",
    },
    "event": "Course Clicked",
    "integrations": {},
    "messageId": "ajs-f8ca1e4de5024d9430b3928bd8ac6b96",
    "properties": {"title": "Intro to Analytics"},
    "receivedAt": "2015-12-12T19:11:01.266Z",
    "sentAt": "2015-12-12T19:11:01.169Z",
    "timestamp": "2015-12-12T19:11:01.249Z",
    "type": "track",
    "userId": "AiUGstSDIg",
    "originalTimestamp": "2015-12-12T19:11:01.152Z",
}
# segment-docs src/connections/spec/ecommerce/v2.md, Order Completed example properties.
ORDER_COMPLETED_PROPERTIES = {
    "checkout_id": "fksdjfsdjfisjf9sdfjsd9f",
    "order_id": "50314b8e9bcf000000000000",
    "affiliation": "Google Store",
    "total": 27.50,
    "subtotal": 22.50,
    "revenue": 22.50,
    "shipping": 3,
    "tax": 2,
    "discount": 2.5,
    "coupon": "hasbros",
    "currency": "USD",
    "products": [
        {
            "product_id": "507f1f77bcf86cd799439011",
            "sku": "45790-32",
            "name": "Monopoly: 3rd Edition",
            "price": 19,
            "quantity": 1,
            "category": "Games",
            "url": "https://www.example.com/product/path",
            "image_url": "https://www.example.com/product/path.jpg",
        },
        {
            "product_id": "505bd76785ebb509fc183733",
            "sku": "46493-32",
            "name": "Uno Card Game",
            "price": 3,
            "quantity": 2,
            "category": "Games",
        },
    ],
}
ORDER_COMPLETED = {
    **track("Order Completed", ORDER_COMPLETED_PROPERTIES),
    "timestamp": "2015-02-23T22:28:55.111Z",
}
SPEC_ITEMS = [
    {
        "product_id": "507f1f77bcf86cd799439011",
        "sku": "45790-32",
        "name": "Monopoly: 3rd Edition",
        "price": 19,
        "quantity": 1,
        "total": 19,
        "categories": ["Games"],
        "product_url": "https://www.example.com/product/path",
        "image_url": "https://www.example.com/product/path.jpg",
    },
    {
        "product_id": "505bd76785ebb509fc183733",
        "sku": "46493-32",
        "name": "Uno Card Game",
        "price": 3,
        "quantity": 2,
        "total": 6,
        "categories": ["Games"],
    },
]
PERSONAS = {
    "computation_class": "audience",
    "computation_id": "aud_123",
    "computation_key": "first_time_shopper",
    "namespace": "spa_1",
    "space_id": "spa_1",
}
# segment-docs src/engage/using-engage-data.md, audience identify (with the email Engage adds).
ENGAGE_IDENTIFY = {
    "context": {"personas": PERSONAS},
    "integrations": {"All": False, "Drip": True},
    "type": "identify",
    "userId": "u123",
    "traits": {"first_time_shopper": True, "email": "jd@example.com"},
}
# The same doc's audience track; Engage puts the email in context.traits for tracks.
ENGAGE_ENTERED = {
    "context": {"personas": PERSONAS, "traits": {"email": "jd@example.com"}},
    "integrations": {"All": False, "Drip": True},
    "type": "track",
    "userId": "u123",
    "event": "Audience Entered",
    "properties": {"audience_key": "first_time_shopper", "first_time_shopper": True},
}
ENGAGE_EXITED = {
    **ENGAGE_ENTERED,
    "event": "Audience Exited",
    "properties": {"audience_key": "first_time_shopper", "first_time_shopper": False},
}
JD_U123 = {"u123": "jd@example.com"}

INTEGRATIONS_AND_TYPES = [
    pytest.param(
        identify(JD, integrations={"Drip": False}),
        {},
        DEFAULT,
        skipped("disabled_by_integrations"),
        id="an identify with integrations.Drip false is skipped as disabled",
    ),
    pytest.param(
        SPEC_IDENTIFY_COMPLETE,
        {},
        DEFAULT,
        skipped("disabled_by_integrations"),
        id="Segment's complete identify example with All false and no Drip key is skipped",
    ),
    pytest.param(
        track("Signed Up", JD, integrations={"all": False}),
        {},
        DEFAULT,
        skipped("disabled_by_integrations"),
        id="a lowercase all false from the Python library also disables Drip",
    ),
    pytest.param(
        track("Signed Up", JD, integrations={"All": False, "Drip": True}),
        {},
        DEFAULT,
        outcome(
            event({"email": "jd@example.com", "action": "Signed Up", "properties": {}}),
            learned=NOT_LEARNED,
        ),
        id="All false with Drip true still reaches Drip",
    ),
    pytest.param(
        identify(JD, integrations={"All": False, "Drip": {"campaignId": "77"}}),
        {},
        DEFAULT,
        outcome(
            subscriber({"email": "jd@example.com", "user_id": "u1"}),
            campaign(
                "77", {"email": "jd@example.com", "user_id": "u1", "reactivate_if_removed": False}
            ),
            learned=U1,
        ),
        id="All false with a Drip options object counts as Drip enabled",
    ),
    pytest.param(
        {"type": "page", "userId": "u1", "name": "Home"},
        U1,
        DEFAULT,
        skipped("unsupported_type"),
        id="a page call is counted as unsupported",
    ),
    pytest.param(
        {"type": "screen", "userId": "u1", "name": "Home"},
        U1,
        DEFAULT,
        skipped("unsupported_type"),
        id="a screen call is counted as unsupported",
    ),
    pytest.param(
        {"type": "group", "userId": "u1", "groupId": "g1", "traits": JD},
        U1,
        DEFAULT,
        skipped("unsupported_type"),
        id="a group call is counted as unsupported",
    ),
    pytest.param(
        track("Signed Up", JD, integrations=["Drip"]),
        {},
        DEFAULT,
        outcome(
            event({"email": "jd@example.com", "action": "Signed Up", "properties": {}}),
            learned=NOT_LEARNED,
            problems=[Problem("integrations", "expected an object; ignored")],
        ),
        id="an integrations value that is not an object is reported and ignored",
    ),
]

EMAIL_LOOKUP = [
    pytest.param(
        identify({"plan": "pro"}),
        {},
        DEFAULT,
        skipped("missing_email"),
        id="an identify with no email anywhere is skipped as missing_email",
    ),
    pytest.param(
        track("Signed Up", {"plan": "pro"}, anonymousId="a1"),
        {"someone-else": "x@example.com"},
        DEFAULT,
        skipped("missing_email"),
        id="a track without email is skipped with reason",
    ),
    pytest.param(
        identify({"plan": "pro"}, context={"traits": JD}),
        {},
        DEFAULT,
        outcome(
            subscriber(
                {"email": "jd@example.com", "user_id": "u1", "custom_fields": {"plan": "pro"}}
            ),
            learned=U1,
        ),
        id="context.traits.email is used when the traits have none",
    ),
    pytest.param(
        identify({}, userId="jd@example.com"),
        {},
        DEFAULT,
        outcome(
            subscriber({"email": "jd@example.com", "user_id": "jd@example.com"}),
            learned={"jd@example.com": "jd@example.com"},
        ),
        id="a userId that is an email address is used as the email",
    ),
    pytest.param(
        track("Signed Up", {}),
        U1,
        DEFAULT,
        outcome(
            event({"email": "jd@example.com", "action": "Signed Up", "properties": {}}),
            learned=U1,
        ),
        id="the email last seen for the userId is used",
    ),
    pytest.param(
        track("Signed Up", {}, anonymousId="a1"),
        {"a1": "jd@example.com"},
        DEFAULT,
        outcome(
            event({"email": "jd@example.com", "action": "Signed Up", "properties": {}}),
            learned={"u1": "jd@example.com", "a1": "jd@example.com"},
        ),
        id="the email last seen for the anonymousId is used and linked to the userId",
    ),
    pytest.param(
        identify({"email": "not-an-email"}, context={"traits": JD}),
        {},
        DEFAULT,
        outcome(
            subscriber({"email": "jd@example.com", "user_id": "u1"}),
            learned=U1,
            problems=[Problem("traits.email", "not an email address")],
        ),
        id="a malformed traits.email is reported and the lookup goes on",
    ),
    pytest.param(
        identify({"email": 42}),
        {},
        DEFAULT,
        skipped("missing_email", Problem("traits.email", "expected an email address string")),
        id="a non-string email is reported and without another email the identify is skipped",
    ),
    pytest.param(
        identify({"email": "  jd@example.com "}),
        {},
        DEFAULT,
        outcome(subscriber({"email": "jd@example.com", "user_id": "u1"}), learned=U1),
        id="an email is trimmed of surrounding spaces",
    ),
    pytest.param(
        track("Invited", JD, context={"traits": {"email": "other@example.com"}}),
        {},
        DEFAULT,
        outcome(
            event({"email": "jd@example.com", "action": "Invited", "properties": {}}),
            learned={
                "u1": "other@example.com"
            },  # context.traits is learned, properties.email is not (SPEC 4.1)
        ),
        id="on a track properties.email comes before context.traits.email",
    ),
]

IDENTIFY_FIELDS = [
    pytest.param(
        SPEC_IDENTIFY,
        {},
        DEFAULT,
        outcome(subscriber(PETER_RECORD), learned={"97980cfea0067": "peter@example.com"}),
        id="Segment's identify spec example becomes a subscriber with split name and custom fields",
    ),
    pytest.param(
        SPEC_IDENTIFY_FOR_DRIP,
        {},
        DEFAULT,
        outcome(
            subscriber(
                {
                    **PETER_RECORD,
                    "address1": "6th St",
                    "city": "San Francisco",
                    "state": "CA",
                    "zip": "94103",
                    "country": "USA",
                    "ip_address": "8.8.8.8",
                }
            ),
            learned={
                "97980cfea0067": "peter@example.com",
                "507f191e810c19729de860ea": "peter@example.com",
            },
        ),
        id="Segment's complete identify example sent to Drip maps the address and context.ip",
    ),
    pytest.param(
        identify({**JD, "firstName": "Jane", "lastName": "Doe", "name": "J. Q. Public"}),
        {},
        DEFAULT,
        outcome(
            subscriber({**JD, "user_id": "u1", "first_name": "Jane", "last_name": "Doe"}),
            learned=U1,
        ),
        id="firstName and lastName win over a full name",
    ),
    pytest.param(
        identify({**JD, "first_name": "Jane", "name": "Jane van Doe"}),
        {},
        DEFAULT,
        outcome(
            subscriber({**JD, "user_id": "u1", "first_name": "Jane", "last_name": "van Doe"}),
            learned=U1,
        ),
        id="a full name split at its first space fills only the missing last name",
    ),
    pytest.param(
        identify({**JD, "name": "Cher"}),
        {},
        DEFAULT,
        outcome(subscriber({**JD, "user_id": "u1", "first_name": "Cher"}), learned=U1),
        id="a one-word name gives only a first name",
    ),
    pytest.param(
        identify({**JD, "timezone": "Europe/Paris"}, context={"timezone": "America/New_York"}),
        {},
        DEFAULT,
        outcome(subscriber({**JD, "user_id": "u1", "time_zone": "Europe/Paris"}), learned=U1),
        id="traits.timezone wins over context.timezone",
    ),
    pytest.param(
        identify(JD, context={"timezone": "America/New_York", "ip": "1.2.3.4"}),
        {},
        DEFAULT,
        outcome(
            subscriber(
                {**JD, "user_id": "u1", "time_zone": "America/New_York", "ip_address": "1.2.3.4"}
            ),
            learned=U1,
        ),
        id="context.timezone and context.ip fill time_zone and ip_address",
    ),
    pytest.param(
        identify({**JD, "tags": " vip, ,beta ,vip", "remove_tags": ["trial", "", " old "]}),
        {},
        DEFAULT,
        outcome(
            subscriber(
                {**JD, "user_id": "u1", "tags": ["vip", "beta"], "remove_tags": ["trial", "old"]}
            ),
            learned=U1,
        ),
        id="tags from a comma string and remove_tags from an array are trimmed without blanks",
    ),
    pytest.param(
        identify({**JD, "tags": ["a", {"b": 1}, 7], "removeTags": "x"}),
        {},
        DEFAULT,
        outcome(
            subscriber({**JD, "user_id": "u1", "tags": ["a", "7"], "remove_tags": ["x"]}),
            learned=U1,
            problems=[Problem("traits.tags[1]", "a tag must be a string; dropped")],
        ),
        id="a tag that is an object is reported while removeTags in camelCase is accepted",
    ),
    pytest.param(
        identify({**JD, "tags": 5}),
        {},
        DEFAULT,
        outcome(
            subscriber({**JD, "user_id": "u1"}),
            learned=U1,
            problems=[Problem("traits.tags", "expected an array or a comma-separated string")],
        ),
        id="tags that are neither an array nor a string are reported",
    ),
    pytest.param(
        identify({**JD, "prospect": False, "base_lead_score": 0, "sms_consent": False}),
        {},
        DEFAULT,
        outcome(
            subscriber(
                {
                    **JD,
                    "user_id": "u1",
                    "prospect": False,
                    "base_lead_score": 0,
                    "sms_consent": False,
                }
            ),
            learned=U1,
        ),
        id="false and zero are values that Drip receives",
    ),
    pytest.param(
        identify(
            {
                **JD,
                "eu_consent": True,
                "eu_consent_message": "ok",
                "status": "Active",
                "initial_status": "unsubscribed",
                "sms_number": "+15555550100",
                "lifetime_value": 4999,
            }
        ),
        {},
        DEFAULT,
        outcome(
            subscriber(
                {
                    **JD,
                    "user_id": "u1",
                    "eu_consent": "granted",
                    "eu_consent_message": "ok",
                    "status": "active",
                    "initial_status": "unsubscribed",
                    "sms_number": "+15555550100",
                    "lifetime_value": 4999,
                }
            ),
            learned=U1,
        ),
        id="Drip's own subscriber keys are sent first-class with their documented values",
    ),
    pytest.param(
        identify({**JD, "status": "paused", "lifetime_value": 49.99, "prospect": "maybe"}),
        {},
        DEFAULT,
        outcome(
            subscriber({**JD, "user_id": "u1"}),
            learned=U1,
            problems=[
                Problem("traits.prospect", "expected true or false"),
                Problem("traits.lifetime_value", "expected a whole number"),
                Problem("traits.status", "expected one of active, unsubscribed"),
            ],
        ),
        id="first-class values outside Drip's rules are reported and left out",
    ),
    pytest.param(
        identify({**JD, "address": "6th St, San Francisco"}),
        {},
        DEFAULT,
        outcome(
            subscriber({**JD, "user_id": "u1"}),
            learned=U1,
            problems=[Problem("traits.address", "expected an object; ignored")],
        ),
        id="an address that is a string is reported and not sent",
    ),
    pytest.param(
        identify(
            {**JD, "address": {"street": "1 Main", "address2": "Apt 2", "postal_code": 10001}}
        ),
        {},
        DEFAULT,
        outcome(
            subscriber(
                {**JD, "user_id": "u1", "address1": "1 Main", "address2": "Apt 2", "zip": "10001"}
            ),
            learned=U1,
        ),
        id="address postal_code as a number becomes Drip's zip text",
    ),
    pytest.param(
        identify({**JD, "city": "Lyon", "zip": "69001", "phone": 5550100}),
        {},
        DEFAULT,
        outcome(
            subscriber({**JD, "user_id": "u1", "city": "Lyon", "zip": "69001", "phone": "5550100"}),
            learned=U1,
        ),
        id="traits named like Drip's keys are sent as those keys",
    ),
    pytest.param(
        identify({**JD, "phone": "  ", "first_name": None, "plan": None}),
        {},
        DEFAULT,
        outcome(subscriber({**JD, "user_id": "u1"}), learned=U1),
        id="nulls and blank strings leave their keys out of the record",
    ),
]

CUSTOM_FIELDS = [
    pytest.param(
        identify({**JD, "accountType": "pro", "Shirt Size": "M", "HTMLColor": "red"}),
        {},
        DEFAULT,
        outcome(
            subscriber(
                {
                    **JD,
                    "user_id": "u1",
                    "custom_fields": {
                        "account_type": "pro",
                        "shirt_size": "M",
                        "html_color": "red",
                    },
                }
            ),
            learned=U1,
        ),
        id="camelCase and spaced trait keys become snake_case custom fields",
    ),
    pytest.param(
        identify({**JD, "drip_score": 3, "Price ($)": 9}),
        {},
        DEFAULT,
        outcome(
            subscriber({**JD, "user_id": "u1", "custom_fields": {"score": 3, "price": 9}}),
            learned=U1,
        ),
        id="a leading drip_ is stripped and symbols at the ends are removed",
    ),
    pytest.param(
        identify({**JD, "Größe": "L", "café": 1, "日本": "x"}),
        {},
        DEFAULT,
        outcome(
            subscriber({**JD, "user_id": "u1", "custom_fields": {"gro_e": "L", "cafe": 1}}),
            learned=U1,
            problems=[Problem("traits.日本", "key has no characters Drip accepts; dropped")],
        ),
        id="accents are dropped from keys and a key with nothing usable is reported",
    ),
    pytest.param(
        identify({**JD, "planName": "a", "plan_name": "b"}),
        {},
        DEFAULT,
        outcome(
            subscriber({**JD, "user_id": "u1", "custom_fields": {"plan_name": "b"}}),
            learned=U1,
            problems=[
                Problem("traits.planName", "same Drip key 'plan_name' as traits.plan_name; dropped")
            ],
        ),
        id="on a key collision the trait already in normal form wins",
    ),
    pytest.param(
        identify({**JD, "Plan Name": "a", "PlanName": "b"}),
        {},
        DEFAULT,
        outcome(
            subscriber({**JD, "user_id": "u1", "custom_fields": {"plan_name": "a"}}),
            learned=U1,
            problems=[
                Problem("traits.PlanName", "same Drip key 'plan_name' as traits.Plan Name; dropped")
            ],
        ),
        id="on a collision between unnormalised keys the first in sorted order wins",
    ),
    pytest.param(
        identify({**JD, "company": {"name": "Acme", "id": 7}, "roles": ["a", 1, None]}),
        {},
        DEFAULT,
        outcome(
            subscriber(
                {
                    **JD,
                    "user_id": "u1",
                    "custom_fields": {
                        "company": '{"id":7,"name":"Acme"}',
                        "roles": '["a",1,null]',
                    },
                }
            ),
            learned=U1,
        ),
        id="objects and arrays become compact JSON with sorted keys",
    ),
    pytest.param(
        identify({**JD, "bio": LONG, "motto": "y" * 1000}),
        {},
        DEFAULT,
        outcome(
            subscriber({**JD, "user_id": "u1", "custom_fields": {"motto": "y" * 1000}}),
            learned=U1,
            problems=[Problem("traits.bio", "1001 characters, over the 1000 limit; dropped")],
        ),
        id="a value over 1000 characters is dropped and reported rather than cut",
    ),
    pytest.param(
        identify({**JD, "id": "u1", "userId": "u1", "vip": True, "visits": 0}),
        {},
        DEFAULT,
        outcome(
            subscriber({**JD, "user_id": "u1", "custom_fields": {"vip": True, "visits": 0}}),
            learned=U1,
        ),
        id="id and userId traits are not custom fields while true and zero are",
    ),
    pytest.param(
        identify({**JD, "custom_fields": {"Shirt Size": "M"}, "plan": "pro"}),
        {},
        DEFAULT,
        outcome(
            subscriber(
                {**JD, "user_id": "u1", "custom_fields": {"plan": "pro", "shirt_size": "M"}}
            ),
            learned=U1,
        ),
        id="a nested custom_fields object as Drip Actions users send it is merged",
    ),
    pytest.param(
        identify({**JD, "score": float("nan")}),
        {},
        DEFAULT,
        outcome(
            subscriber({**JD, "user_id": "u1"}),
            learned=U1,
            problems=[Problem("traits.score", "not a finite number; dropped")],
        ),
        id="a NaN trait value is reported and dropped",
    ),
]

NEW_EMAIL_AND_CAMPAIGNS = [
    pytest.param(
        identify({"email": "new@example.com"}),
        {"u1": "old@example.com"},
        DEFAULT,
        outcome(
            DripCall(
                "subscriber",
                "old@example.com",
                {"email": "old@example.com", "new_email": "new@example.com", "user_id": "u1"},
            ),
            learned={"u1": "new@example.com"},
        ),
        id="a known userId with a changed email renames the person with new_email",
    ),
    pytest.param(
        identify({"email": "JD@Example.com"}),
        U1,
        DEFAULT,
        outcome(
            subscriber({"email": "JD@Example.com", "user_id": "u1"}),
            learned={"u1": "JD@Example.com"},
        ),
        id="an email that differs only in case is not a change",
    ),
    pytest.param(
        identify({**JD, "new_email": "jane@example.com"}),
        {},
        DEFAULT,
        outcome(
            subscriber({**JD, "new_email": "jane@example.com", "user_id": "u1"}),
            learned={"u1": "jane@example.com"},
        ),
        id="an explicit new_email trait is sent as Drip's new_email",
    ),
    pytest.param(
        identify({"plan": "pro"}, anonymousId="a1"),
        {"u1": "jd@example.com", "a1": "other@example.com"},
        DEFAULT,
        outcome(
            subscriber({**JD, "user_id": "u1", "custom_fields": {"plan": "pro"}}),
            learned={"u1": "jd@example.com", "a1": "jd@example.com"},
        ),
        id="an email taken from what is known is never a change",
    ),
    pytest.param(
        identify(JD),
        {},
        CAMPAIGN,
        outcome(
            subscriber({**JD, "user_id": "u1"}),
            campaign("555", {**JD, "user_id": "u1", "reactivate_if_removed": False}),
            learned=U1,
        ),
        id="with DRIP_CAMPAIGN_ID the person is subscribed after the upsert",
    ),
    pytest.param(
        identify(
            JD,
            integrations={
                "Drip": {"campaignId": 42, "doubleOptin": False, "reactivateIfRemoved": True}
            },
        ),
        {},
        CAMPAIGN,
        outcome(
            subscriber({**JD, "user_id": "u1"}),
            campaign(
                "42",
                {**JD, "user_id": "u1", "reactivate_if_removed": True, "double_optin": False},
            ),
            learned=U1,
        ),
        id="integrations.Drip campaignId doubleOptin and reactivateIfRemoved override the defaults",
    ),
    pytest.param(
        identify({"email": "new@example.com"}),
        {"u1": "old@example.com"},
        CAMPAIGN,
        outcome(
            DripCall(
                "subscriber",
                "old@example.com",
                {"email": "old@example.com", "new_email": "new@example.com", "user_id": "u1"},
            ),
            campaign(
                "555", {"email": "new@example.com", "user_id": "u1", "reactivate_if_removed": False}
            ),
            learned={"u1": "new@example.com"},
        ),
        id="after an email change the campaign subscription uses the new email",
    ),
    pytest.param(
        identify(JD, integrations={"Drip": {"doubleOptin": "sometimes", "campaignId": ["x"]}}),
        {},
        CAMPAIGN,
        outcome(
            subscriber({**JD, "user_id": "u1"}),
            campaign("555", {**JD, "user_id": "u1", "reactivate_if_removed": False}),
            learned=U1,
            problems=[
                Problem("integrations.Drip.campaignId", "expected a string id"),
                Problem("integrations.Drip.doubleOptin", "expected true or false"),
            ],
        ),
        id="unusable Drip options are reported and the defaults apply",
    ),
    pytest.param(
        track("Signed Up", JD),
        {},
        CAMPAIGN,
        outcome(event({**JD, "action": "Signed Up", "properties": {}}), learned=NOT_LEARNED),
        id="a track never subscribes to a campaign",
    ),
]

ENGAGE = [
    pytest.param(
        ENGAGE_IDENTIFY,
        {},
        DEFAULT,
        outcome(
            subscriber(
                {
                    **JD,
                    "user_id": "u123",
                    "tags": ["first_time_shopper"],
                    "custom_fields": {"first_time_shopper": True},
                }
            ),
            learned=JD_U123,
        ),
        id="an Engage audience identify sets the custom field and applies the tag",
    ),
    pytest.param(
        {**ENGAGE_IDENTIFY, "traits": {"first_time_shopper": "false", "email": "jd@example.com"}},
        {},
        DEFAULT,
        outcome(
            subscriber(
                {
                    **JD,
                    "user_id": "u123",
                    "remove_tags": ["first_time_shopper"],
                    "custom_fields": {"first_time_shopper": False},
                }
            ),
            learned=JD_U123,
        ),
        id="leaving an Engage audience sets the field false and removes the tag",
    ),
    pytest.param(
        ENGAGE_IDENTIFY,
        {},
        NO_AUDIENCE_TAGS,
        outcome(
            subscriber({**JD, "user_id": "u123", "custom_fields": {"first_time_shopper": True}}),
            learned=JD_U123,
        ),
        id="with audience tags off an audience is only a custom field",
    ),
    pytest.param(
        {
            **ENGAGE_IDENTIFY,
            "context": {"personas": {**PERSONAS, "computation_class": "trait"}},
            "traits": {"first_time_shopper": True, "email": "jd@example.com"},
        },
        {},
        DEFAULT,
        outcome(
            subscriber({**JD, "user_id": "u123", "custom_fields": {"first_time_shopper": True}}),
            learned=JD_U123,
        ),
        id="an Engage computed trait is a plain custom field without a tag",
    ),
    pytest.param(
        ENGAGE_ENTERED,
        {},
        DEFAULT,
        outcome(
            subscriber(
                {
                    **JD,
                    "user_id": "u123",
                    "custom_fields": {"first_time_shopper": True},
                    "tags": ["first_time_shopper"],
                }
            ),
            learned=JD_U123,
        ),
        id="Audience Entered updates the subscriber like the audience identify",
    ),
    pytest.param(
        ENGAGE_EXITED,
        {},
        DEFAULT,
        outcome(
            subscriber(
                {
                    **JD,
                    "user_id": "u123",
                    "custom_fields": {"first_time_shopper": False},
                    "remove_tags": ["first_time_shopper"],
                }
            ),
            learned=JD_U123,
        ),
        id="Audience Exited sets the field false and removes the tag",
    ),
    pytest.param(
        {**ENGAGE_ENTERED, "properties": {"first_time_shopper": True}},
        {},
        DEFAULT,
        outcome(
            event({**JD, "action": "Audience Entered", "properties": {"first_time_shopper": True}}),
            learned=JD_U123,
            problems=[Problem("properties.audience_key", "missing; sent as a plain event")],
        ),
        id="Audience Entered without an audience_key is reported and sent as an event",
    ),
]

TRACK = [
    pytest.param(
        SPEC_TRACK,
        U1,
        DEFAULT,
        outcome(
            event(
                {
                    **JD,
                    "action": "User Registered",
                    "properties": {"plan": "Pro Annual", "account_type": "Facebook"},
                }
            ),
            learned=U1,
        ),
        id="Segment's track spec example becomes a Drip event with snake_case properties",
    ),
    pytest.param(
        SPEC_TRACK_COMPLETE,
        {"AiUGstSDIg": "jd@example.com"},
        DEFAULT,
        outcome(
            event(
                {
                    **JD,
                    "action": "Course Clicked",
                    "occurred_at": "2015-12-12T19:11:01Z",
                    "properties": {"title": "Intro to Analytics"},
                }
            ),
            learned={
                "AiUGstSDIg": "jd@example.com",
                "23adfd82-aa0f-45a7-a756-24f2a7a4c895": "jd@example.com",
            },
        ),
        id="Segment's complete track example gets occurred_at in whole UTC seconds",
    ),
    pytest.param(
        track("Upgraded", {**JD, "revenue": 19.99, "prop": True}),
        {},
        DEFAULT,
        outcome(
            event({**JD, "action": "Upgraded", "properties": {"prop": True, "value": 1999}}),
            learned=NOT_LEARNED,
        ),
        id="revenue in dollars becomes value in cents without revenue or email",
    ),
    pytest.param(
        track("Upgraded", {**JD, "revenue": "$9.99"}),
        {},
        DEFAULT,
        outcome(
            event({**JD, "action": "Upgraded", "properties": {"value": 999}}), learned=NOT_LEARNED
        ),
        id="revenue as a dollar string is accepted",
    ),
    pytest.param(
        track("Upgraded", {**JD, "revenue": 0.125}),
        {},
        DEFAULT,
        outcome(
            event({**JD, "action": "Upgraded", "properties": {"value": 13}}), learned=NOT_LEARNED
        ),
        id="half a cent rounds up like JavaScript's Math.round",
    ),
    pytest.param(
        track("Upgraded", {**JD, "revenue": "abc"}),
        {},
        DEFAULT,
        outcome(
            event({**JD, "action": "Upgraded", "properties": {}}),
            learned=NOT_LEARNED,
            problems=[Problem("properties.revenue", "expected a number")],
        ),
        id="revenue that is not a number is reported and no value is sent",
    ),
    pytest.param(
        track("Refund", {**JD, "revenue": -5}),
        {},
        DEFAULT,
        outcome(
            event({**JD, "action": "Refund", "properties": {}}),
            learned=NOT_LEARNED,
            problems=[
                Problem("properties.revenue", "negative; a Drip conversion value must be 0 or more")
            ],
        ),
        id="negative revenue is reported because Drip conversions start at zero",
    ),
    pytest.param(
        track("Whale", {**JD, "revenue": 21474836.47}),
        {},
        DEFAULT,
        outcome(
            event({**JD, "action": "Whale", "properties": {}}),
            learned=NOT_LEARNED,
            problems=[
                Problem(
                    "properties.revenue",
                    "too large for a Drip conversion value (below 2147483647 cents)",
                )
            ],
        ),
        id="revenue reaching Drip's 2147483647 cent limit is reported",
    ),
    pytest.param(
        track("Scored", {**JD, "value": 250}),
        {},
        DEFAULT,
        outcome(
            event({**JD, "action": "Scored", "properties": {"value": 250}}), learned=NOT_LEARNED
        ),
        id="a value already in whole cents is passed through",
    ),
    pytest.param(
        track("Scored", {**JD, "value": 2.5, "revenue": 1}),
        {},
        DEFAULT,
        outcome(
            event({**JD, "action": "Scored", "properties": {"value": 100}}),
            learned=NOT_LEARNED,
            problems=[Problem("properties.value", "replaced by the conversion from revenue")],
        ),
        id="revenue replaces a value sent alongside it",
    ),
    pytest.param(
        track("Scored", {**JD, "value": "high"}),
        {},
        DEFAULT,
        outcome(
            event({**JD, "action": "Scored", "properties": {}}),
            learned=NOT_LEARNED,
            problems=[
                Problem(
                    "properties.value",
                    "Drip reads it as conversion cents: expected a whole number from 0 below "
                    "2147483647; dropped",
                )
            ],
        ),
        id="a value Drip could not read as cents is dropped and reported",
    ),
    pytest.param(
        track("Signed Up", JD, originalTimestamp="2015-12-12T19:11:01.152-05:00"),
        {},
        DEFAULT,
        outcome(
            event(
                {
                    **JD,
                    "action": "Signed Up",
                    "occurred_at": "2015-12-13T00:11:01Z",
                    "properties": {},
                }
            ),
            learned=NOT_LEARNED,
        ),
        id="originalTimestamp with an offset is used and converted to UTC",
    ),
    pytest.param(
        track("Signed Up", JD, timestamp="yesterday", originalTimestamp="2015-12-12"),
        {},
        DEFAULT,
        outcome(
            event(
                {
                    **JD,
                    "action": "Signed Up",
                    "occurred_at": "2015-12-12T00:00:00Z",
                    "properties": {},
                }
            ),
            learned=NOT_LEARNED,
            problems=[Problem("timestamp", "not an ISO-8601 timestamp")],
        ),
        id="an unparseable timestamp is reported and originalTimestamp is tried",
    ),
    pytest.param(
        track("Signed Up", JD, timestamp=1449947461),
        {},
        DEFAULT,
        outcome(
            event({**JD, "action": "Signed Up", "properties": {}}),
            learned=NOT_LEARNED,
            problems=[Problem("timestamp", "expected an ISO-8601 timestamp string")],
        ),
        id="a numeric timestamp is reported and occurred_at left to Drip",
    ),
    pytest.param(
        track(
            "  my-event Name ", {**JD, "Item Count": 2, "meta": {"b": 1, "a": None}, "gone": None}
        ),
        {},
        DEFAULT,
        outcome(
            event(
                {
                    **JD,
                    "action": "  my-event Name ",
                    "properties": {"item_count": 2, "meta": '{"a":null,"b":1}'},
                }
            ),
            learned=NOT_LEARNED,
        ),
        id="the event name is sent verbatim and properties are normalised like custom fields",
    ),
    pytest.param(
        track("Viewed", {**JD, "notes": LONG}),
        {},
        DEFAULT,
        outcome(
            event({**JD, "action": "Viewed", "properties": {}}),
            learned=NOT_LEARNED,
            problems=[Problem("properties.notes", "1001 characters, over the 1000 limit; dropped")],
        ),
        id="an event property over 1000 characters is dropped and reported",
    ),
    pytest.param(
        track(None, JD),
        {},
        DEFAULT,
        skipped("missing_event", Problem("event", "expected a non-empty event name")),
        id="a track without an event name is skipped as missing_event",
    ),
    pytest.param(
        track("Signed Up", "not an object"),
        U1,
        DEFAULT,
        outcome(
            event({**JD, "action": "Signed Up", "properties": {}}),
            learned=U1,
            problems=[Problem("properties", "expected an object; ignored")],
        ),
        id="properties that are not an object are reported and an empty object is sent",
    ),
]

ORDERS = [
    pytest.param(
        ORDER_COMPLETED,
        U1,
        DEFAULT,
        outcome(
            order(
                {
                    "provider": "segment",
                    **JD,
                    "action": "paid",
                    "occurred_at": "2015-02-23T22:28:55Z",
                    "order_id": "50314b8e9bcf000000000000",
                    "grand_total": 27.5,
                    "total_discounts": 2.5,
                    "total_taxes": 2,
                    "total_shipping": 3,
                    "currency": "USD",
                    "items": SPEC_ITEMS,
                }
            ),
            learned=U1,
        ),
        id="Segment's Order Completed example becomes a paid Shopper Activity order",
    ),
    pytest.param(
        ORDER_COMPLETED,
        U1,
        NO_ORDERS,
        outcome(
            event(
                {
                    **JD,
                    "action": "Order Completed",
                    "occurred_at": "2015-02-23T22:28:55Z",
                    "properties": {
                        "checkout_id": "fksdjfsdjfisjf9sdfjsd9f",
                        "order_id": "50314b8e9bcf000000000000",
                        "affiliation": "Google Store",
                        "total": 27.5,
                        "subtotal": 22.5,
                        "shipping": 3,
                        "tax": 2,
                        "discount": 2.5,
                        "coupon": "hasbros",
                        "currency": "USD",
                        "products": (
                            '[{"category":"Games","image_url":"https://www.example.com/product/'
                            'path.jpg","name":"Monopoly: 3rd Edition","price":19,"product_id":'
                            '"507f1f77bcf86cd799439011","quantity":1,"sku":"45790-32","url":'
                            '"https://www.example.com/product/path"},{"category":"Games","name":'
                            '"Uno Card Game","price":3,"product_id":"505bd76785ebb509fc183733",'
                            '"quantity":2,"sku":"46493-32"}]'
                        ),
                        "value": 2250,
                    },
                }
            ),
            learned=U1,
        ),
        id="with orders off Order Completed is an event valued at its revenue in cents",
    ),
    pytest.param(
        track("Order Completed", {**JD, "order_id": "o1", "total": 27.5}),
        {},
        NO_ORDERS,
        outcome(
            event(
                {
                    **JD,
                    "action": "Order Completed",
                    "properties": {"order_id": "o1", "total": 27.5, "value": 2750},
                }
            ),
            learned=NOT_LEARNED,
        ),
        id="with orders off an Order Completed without revenue is valued at its total",
    ),
    pytest.param(
        track("Order Updated", {**JD, "order_id": "o1", "total": 27.5}),
        {},
        NO_ORDERS,
        outcome(
            event(
                {**JD, "action": "Order Updated", "properties": {"order_id": "o1", "total": 27.5}}
            ),
            learned=NOT_LEARNED,
        ),
        id="total is a conversion only on Order Completed",
    ),
    pytest.param(
        track("Checkout Started", {**JD, "order_id": 9, "value": 27.5, "currency": "EUR"}),
        {},
        DEFAULT,
        outcome(
            order(
                {
                    "provider": "segment",
                    **JD,
                    "action": "placed",
                    "order_id": "9",
                    "currency": "EUR",
                }
            ),
            learned=NOT_LEARNED,
        ),
        id="Checkout Started is a placed order with a numeric order_id as text",
    ),
    pytest.param(
        track("Order Refunded", {**JD, "order_id": "o1", "total": 30, "refund_amount": "$30"}),
        {},
        DEFAULT,
        outcome(
            order(
                {
                    "provider": "segment",
                    **JD,
                    "action": "refunded",
                    "order_id": "o1",
                    "grand_total": 30,
                    "refund_amount": 30.0,
                }
            ),
            learned=NOT_LEARNED,
        ),
        id="Order Refunded is a refunded order carrying refund_amount",
    ),
    pytest.param(
        track("Order Cancelled", {**JD, "order_id": "o1", "provider": "My Store"}),
        {},
        DEFAULT,
        outcome(
            order({"provider": "my_store", **JD, "action": "canceled", "order_id": "o1"}),
            learned=NOT_LEARNED,
        ),
        id="Order Cancelled is a canceled order and the provider is snake_cased",
    ),
    pytest.param(
        track("order updated", {**JD, "order_id": "o1", "tax": "oops"}),
        {},
        DEFAULT,
        outcome(
            order({"provider": "segment", **JD, "action": "updated", "order_id": "o1"}),
            learned=NOT_LEARNED,
            problems=[Problem("properties.tax", "expected a number")],
        ),
        id="order event names match in any case and a bad amount is reported",
    ),
    pytest.param(
        track("Order Completed", {**JD, "revenue": 10}),
        {},
        DEFAULT,
        outcome(
            event({**JD, "action": "Order Completed", "properties": {"value": 1000}}),
            learned=NOT_LEARNED,
            problems=[
                Problem(
                    "properties.order_id",
                    "Drip's order API requires an order id; sent as a plain event",
                )
            ],
        ),
        id="an order without order_id is reported and sent as a plain event",
    ),
    pytest.param(
        track(
            "Order Completed",
            {
                **JD,
                "order_id": "o1",
                "products": [
                    {"sku": "S1", "price": 19.99, "quantity": 3},
                    {"price": 1},
                    "junk",
                    {"product_id": 5, "categories": ["a", "b"], "brand": "Acme"},
                ],
            },
        ),
        {},
        DEFAULT,
        outcome(
            order(
                {
                    "provider": "segment",
                    **JD,
                    "action": "paid",
                    "order_id": "o1",
                    "items": [
                        {"sku": "S1", "name": "S1", "price": 19.99, "quantity": 3, "total": 59.97},
                        {
                            "product_id": "5",
                            "name": "5",
                            "brand": "Acme",
                            "categories": ["a", "b"],
                        },
                    ],
                }
            ),
            learned=NOT_LEARNED,
            problems=[
                Problem("properties.products[1].name", "Drip requires an item name; item dropped"),
                Problem("properties.products[2]", "expected an object; item dropped"),
            ],
        ),
        id="an item name falls back to sku then product_id and nameless items are dropped",
    ),
]

ALIAS = [
    pytest.param(
        {"type": "alias", "previousId": "a1", "userId": "u1"},
        U1,
        DEFAULT,
        outcome(learned={"a1": "jd@example.com"}),
        id="an alias lends a known userId's email to the previousId",
    ),
    pytest.param(
        {"type": "alias", "previousId": "a1", "userId": "u1"},
        {"a1": "jd@example.com"},
        DEFAULT,
        outcome(learned=U1),
        id="an alias lends a known previousId's email to the userId",
    ),
    pytest.param(
        {"type": "alias", "previousId": "a1", "userId": "u1"},
        {},
        DEFAULT,
        outcome(),
        id="an alias between unknown ids learns nothing and calls nothing",
    ),
    pytest.param(
        {"type": "alias", "previousId": {"id": "a1"}, "userId": "u1"},
        U1,
        DEFAULT,
        outcome(problems=[Problem("previousId", "expected a string id")]),
        id="an alias with an unusable previousId is reported",
    ),
]


@pytest.mark.parametrize(
    ("message", "known", "options", "expected"),
    INTEGRATIONS_AND_TYPES
    + EMAIL_LOOKUP
    + IDENTIFY_FIELDS
    + CUSTOM_FIELDS
    + NEW_EMAIL_AND_CAMPAIGNS
    + ENGAGE
    + TRACK
    + ORDERS
    + ALIAS,
)
def test_segment_message_maps_to_exact_drip_calls(
    message: dict[str, Any], known: dict[str, str], options: Options, expected: Outcome
) -> None:
    assert map_message(message, known, options) == expected


def test_the_mapper_does_not_change_the_message_it_is_given() -> None:
    message = {**ORDER_COMPLETED, "properties": {**ORDER_COMPLETED_PROPERTIES}}
    before = repr(message)
    map_message(message, U1, NO_ORDERS)
    assert repr(message) == before


def test_an_invite_sent_to_someone_else_does_not_rename_the_sender() -> None:
    invite = {"type": "track", "userId": "u1", "event": "Invite Sent",
              "properties": {"email": "friend@example.com"}}  # fmt: skip
    known = {"u1": "jd@example.com"}
    result = map_message(invite, known, Options())
    assert [c.record["email"] for c in result.calls] == ["friend@example.com"]
    assert result.learned == {"u1": "jd@example.com"}  # the sender keeps their own email
    later = map_message(
        {"type": "identify", "userId": "u1", "traits": {"plan": "pro"}},
        known | result.learned,
        Options(),
    )
    assert [c.record for c in later.calls] == [
        {"email": "jd@example.com", "user_id": "u1", "custom_fields": {"plan": "pro"}}
    ]
