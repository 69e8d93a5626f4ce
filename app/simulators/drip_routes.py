"""FakeDrip's endpoints: unwrap, validate (drip_rules), change state, answer as Drip does."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from flask import Flask, Response, current_app, g

from app.simulators import drip_rules as rules
from app.simulators.base import json_response

if TYPE_CHECKING:
    from app.simulators.drip import FakeDrip

Record = dict[str, Any]
# rest/_subscribers.md: "All responses containing subscriber data also include" these links.
LINKS = {"subscribers.account": "https://api.getdrip.com/v2/accounts/{subscribers.account}"}


def _fake() -> FakeDrip:
    return cast("FakeDrip", current_app.extensions["fake_drip"])


def _invalid(errors: list[rules.Error]) -> Response:
    return json_response(422, rules.errors_body(errors))


def _one(key: str) -> Record | Response:
    """The single record of `{key: [record]}`, or the 400/422 Drip answers instead.

    The docs call the array "an array of one object"; more than one is refused here
    so that a client relying on extra records being processed fails in tests.
    """
    if g.bad_json:
        return json_response(400, rules.bad_json(g.bad_json))
    records = rules.unwrap(g.body, key)
    if records is None or len(records) != 1:
        return json_response(422, rules.parsing_error(key))
    return records[0]


def _batch(key: str, kind: str, check: Callable[[Record], list[rules.Error]]) -> Response | None:
    """Accept `{"batches":[{key:[...]}]}` (rest/_batch_api.md) and apply it.

    The real batch is processed in the background, so a bad record never reaches the
    caller: it is dropped here too, but counted (`FakeDrip.dropped`) for the tests.
    """
    if g.bad_json:
        return json_response(400, rules.bad_json(g.bad_json))
    batches = rules.unwrap_batches(g.body, key)
    if batches is None:
        return json_response(422, rules.parsing_error("batches"))
    for records in batches:
        if errors := rules.count_error(key, len(records)):
            return _invalid(errors)
    fake = _fake()
    for record in (r for records in batches for r in records):
        errors = check(record)
        if not errors and kind == "subscriber" and fake.people.upsert(record) is None:
            errors = [rules.error("not_found_error", "id", "Subscriber not found")]
        people = fake.people
        if kind == "unsubscribe" and not errors and not people.unsubscribe_all(record["email"]):
            errors = [rules.error("not_found_error", "email", "Subscriber not found")]
        if errors:
            fake.drop(kind, record, errors)
        else:
            fake.deliver(kind, record)
    return None


def user() -> Response:
    """GET /v2/user: the credential check Segment's Drip (Actions) destination makes."""
    return json_response(200, {"users": [_fake().user]})


def upsert_subscriber(acct: str) -> Response:
    """rest/_subscribers.md: POST /v2/:account_id/subscribers -> 200 with the subscriber."""
    record = _one("subscribers")
    if isinstance(record, Response):
        return record
    if errors := rules.subscriber_errors(record):
        return _invalid(errors)
    stored = _fake().people.upsert(record)
    if stored is None:
        return json_response(404, rules.NOT_FOUND)
    _fake().deliver("subscriber", record)
    return json_response(200, {"links": LINKS, "subscribers": [stored]})


def get_subscriber(acct: str, who: str) -> Response:
    """rest/_subscribers.md: GET /v2/:account_id/subscribers/:id_or_email."""
    found = _fake().subscriber(who)
    if found is None:
        return json_response(404, rules.NOT_FOUND)
    return json_response(200, {"links": LINKS, "subscribers": [found]})


def delete_subscriber(acct: str, who: str) -> Response:
    """rest/_subscribers.md: DELETE /v2/:account_id/subscribers/:id_or_email -> 204.

    Real Drip then fires `subscriber.deleted` to its webhooks; the fake fires nothing
    (a test posts that webhook to the bridge itself).
    """
    if not _fake().people.delete(who):
        return json_response(404, rules.NOT_FOUND)
    _fake().deliver("delete", {"email": who})
    return json_response(204)


def unsubscribe_all(acct: str, who: str) -> Response:
    """rest/_subscribers.md: POST .../subscribers/:id_or_email/unsubscribe_all -> 200."""
    stored = _fake().people.unsubscribe_all(who)
    if stored is None:
        return json_response(404, rules.NOT_FOUND)
    _fake().deliver("unsubscribe", {"email": who})
    return json_response(200, {"links": LINKS, "subscribers": [stored]})


def unsubscribe_batches(acct: str) -> Response:
    """rest/_batch_api.md: POST /v2/:account_id/unsubscribes/batches -> 204."""
    return _batch("subscribers", "unsubscribe", rules.unsubscribe_errors) or json_response(204)


def subscriber_batches(acct: str) -> Response:
    """rest/_batch_api.md: POST /v2/:account_id/subscribers/batches -> 201 {}."""
    return _batch("subscribers", "subscriber", rules.subscriber_errors) or json_response(201, {})


def record_event(acct: str) -> Response:
    """rest/_events.md: POST /v2/:account_id/events -> 204 No Content."""
    record = _one("events")
    if isinstance(record, Response):
        return record
    if errors := rules.event_errors(record):
        return _invalid(errors)
    _fake().deliver("event", record)
    return json_response(204)


def event_batches(acct: str) -> Response:
    """rest/_batch_api.md: POST /v2/:account_id/events/batches -> 201 {}."""
    return _batch("events", "event", rules.event_errors) or json_response(201, {})


def get_campaign(acct: str, campaign_id: str) -> Response:
    """rest/_campaigns.md: GET /v2/:account_id/campaigns/:campaign_id -> {"campaigns": [one]}."""
    if campaign_id not in _fake().campaigns:
        return json_response(404, rules.NOT_FOUND)
    campaign = {"id": campaign_id, "status": "active", "name": f"Campaign {campaign_id}"}
    return json_response(200, {"links": CAMPAIGN_LINKS, "campaigns": [campaign]})


# rest/_campaigns.md: "All responses containing campaign data also include" these links.
CAMPAIGN_LINKS = {
    "campaigns.account": "https://api.getdrip.com/v2/accounts/{campaigns.account}",
    "campaigns.subscribers": (
        "https://api.getdrip.com/v2/{campaigns.account}/campaigns/{campaigns.id}/subscribers"
    ),
}


def subscribe_to_campaign(acct: str, campaign_id: str) -> Response:
    """rest/_campaigns.md: POST /v2/:account_id/campaigns/:campaign_id/subscribers."""
    fake = _fake()
    if campaign_id not in fake.campaigns:
        return json_response(404, rules.NOT_FOUND)
    record = _one("subscribers")
    if isinstance(record, Response):
        return record
    if errors := rules.campaign_subscriber_errors(record):
        return _invalid(errors)
    if fake.people.is_removed(campaign_id, record["email"]):
        # "otherwise, respond with 422 Unprocessable Entity"; the code and message are ours.
        if record.get("reactivate_if_removed", True) is False:
            message = "Subscriber was removed from this campaign"
            return _invalid([rules.error("unavailable_error", "email", message)])
        fake.people.reactivate(campaign_id, record["email"])
    stored = fake.people.upsert({k: v for k, v in record.items() if k in _SUBSCRIBER_KEYS})
    fake.deliver("campaign", {**record, "campaign_id": campaign_id})
    return json_response(201, {"links": LINKS, "subscribers": [stored]})


_SUBSCRIBER_KEYS = frozenset(
    {"email", "user_id", "time_zone", "custom_fields", "tags", "prospect", "base_lead_score"}
    | {"eu_consent", "eu_consent_message"}
)


def apply_tags(acct: str) -> Response:
    """rest/_tags.md: POST /v2/:account_id/tags `{"tags":[{"email","tag"}]}` -> 201 {}."""
    if g.bad_json:
        return json_response(400, rules.bad_json(g.bad_json))
    records = rules.unwrap(g.body, "tags")
    if not records:
        return json_response(422, rules.parsing_error("tags"))
    if errors := [e for r in records for e in rules.tag_errors(r)]:
        return _invalid(errors)
    for record in records:
        _fake().people.upsert({"email": record["email"], "tags": [record["tag"]]})
        _fake().deliver("tag", record)
    return json_response(201, {})


def remove_tag(acct: str, who: str, tag: str) -> Response:
    """rest/_tags.md: DELETE /v2/:account_id/subscribers/:id_or_email/tags/:tag -> 204."""
    if not _fake().people.remove_tag(who, tag):
        return json_response(404, rules.NOT_FOUND)
    _fake().deliver("untag", {"email": who, "tag": tag})
    return json_response(204)


def order(acct: str) -> Response:
    """shopper_activity/_order_activity.md: POST /v3/:account_id/shopper_activity/order."""
    if g.bad_json:
        return json_response(400, rules.bad_json(g.bad_json))
    if not isinstance(g.body, dict):
        return json_response(422, rules.parsing_error("provider"))
    if errors := rules.order_errors(g.body):  # the v3 error body is not documented
        return _invalid(errors)
    _fake().deliver("order", g.body)
    return json_response(202, {"request_id": str(uuid.uuid4())})


def order_batch(acct: str) -> Response:
    """rest/_batch_api.md: POST /v3/:account_id/shopper_activity/order/batch -> 202."""
    if g.bad_json:
        return json_response(400, rules.bad_json(g.bad_json))
    orders = rules.unwrap(g.body, "orders")
    if orders is None:
        return json_response(422, rules.parsing_error("orders"))
    if errors := rules.count_error("orders", len(orders)):
        return _invalid(errors)
    for record in orders:
        if errors := rules.order_errors(record):
            _fake().drop("order", record, errors)
        else:
            _fake().deliver("order", record)
    return json_response(202, {"request_ids": [str(uuid.uuid4()) for _ in orders]})


def stats() -> Response:
    """Not Drip: the fake's counters, for a benchmark that runs it as its own process."""
    return json_response(200, _fake().stats())


def not_found(error: Exception) -> Response:
    return json_response(404, rules.NOT_FOUND)


ROUTES: list[tuple[str, str, Callable[..., Response]]] = [
    ("/v2/user", "GET", user),
    ("/v2/<acct>/subscribers", "POST", upsert_subscriber),
    ("/v2/<acct>/subscribers/batches", "POST", subscriber_batches),
    ("/v2/<acct>/subscribers/<who>", "GET", get_subscriber),
    ("/v2/<acct>/subscribers/<who>", "DELETE", delete_subscriber),
    ("/v2/<acct>/subscribers/<who>/unsubscribe_all", "POST", unsubscribe_all),
    ("/v2/<acct>/unsubscribes/batches", "POST", unsubscribe_batches),
    ("/v2/<acct>/events", "POST", record_event),
    ("/v2/<acct>/events/batches", "POST", event_batches),
    ("/v2/<acct>/campaigns/<campaign_id>", "GET", get_campaign),
    ("/v2/<acct>/campaigns/<campaign_id>/subscribers", "POST", subscribe_to_campaign),
    ("/v2/<acct>/tags", "POST", apply_tags),
    ("/v2/<acct>/subscribers/<who>/tags/<path:tag>", "DELETE", remove_tag),
    ("/v3/<acct>/shopper_activity/order", "POST", order),
    ("/v3/<acct>/shopper_activity/order/batch", "POST", order_batch),
    ("/_fake/stats", "GET", stats),
]


def register(app: Flask, fake: FakeDrip) -> None:
    app.extensions["fake_drip"] = fake
    for rule, method, view in ROUTES:
        app.add_url_rule(rule, view.__name__, view, methods=[method])
    app.register_error_handler(404, not_found)
