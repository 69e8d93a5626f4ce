"""Drip's profile changes as Segment Identify calls, and the loop guard that keeps them there."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from flask.testing import FlaskClient

from app import __version__
from app.delivery.worker import Worker
from app.mapping.to_segment import PROFILE_EVENTS
from app.simulators.drip import FakeDrip
from app.simulators.segment import FakeSegment
from tests.conftest import ACCOUNT_ID, WEBHOOK_TOKEN, WRITE_KEY, drain
from tests.helpers import answer, bearer, dumps

HEADERS = {"Content-Type": "application/json"} | bearer(WRITE_KEY)
LOOP_GUARD = {"Drip": False, "Drip (Actions)": False, "Webhooks": False,
              "Webhooks (Actions)": False}  # fmt: skip
SUBSCRIBER: dict[str, Any] = {
    "id": "z1togz2hcjrkpp5treip",
    "status": "active",
    "email": "john@acme.com",
    "user_id": "123",
    "custom_fields": {"plan_type": "pro", "shirt_size": "Medium"},
    "tags": ["Customer", "SEO"],
    "time_zone": "America/Los_Angeles",
}
# Each subscriber webhook named in the issue, with the properties Drip's docs give it.
EVENTS: dict[str, dict[str, Any]] = {
    "subscriber.created": {},
    "subscriber.updated_email_address": {"value": "john@acme.com",
                                         "previous_value": "j@acme.com"},
    "subscriber.updated_custom_field": {"identifier": "plan_type", "value": "pro",
                                        "previous_value": "free"},
    "subscriber.applied_tag": {"tag": "SEO"},
    "subscriber.removed_tag": {"tag": "Lead"},
    "subscriber.unsubscribed_all": {},
    "subscriber.subscribed_to_campaign": {"campaign_id": "1111", "campaign_name": "Course"},
}  # fmt: skip


def envelope(event: str, **subscriber: Any) -> dict[str, Any]:
    data = {"account_id": ACCOUNT_ID, "subscriber": {**copy.deepcopy(SUBSCRIBER), **subscriber},
            "properties": EVENTS.get(event, {})}  # fmt: skip
    return {"event": event, "data": data, "occurred_at": "2013-06-21T10:31:58Z"}


def post_webhook(client: FlaskClient, body: dict[str, Any]) -> str:
    response = client.post(f"/drip/webhook?token={WEBHOOK_TOKEN}", json=body)
    assert response.status_code == 200, response.data
    track_id: str = answer(response)["id"]
    return track_id


@pytest.mark.parametrize("event", list(EVENTS))
def test_each_subscriber_webhook_gives_the_exact_identify_that_never_echoes_to_drip(
    client: FlaskClient,
    worker: Worker,
    fake_drip: FakeDrip,
    fake_segment: FakeSegment,
    event: str,
) -> None:
    # Segment sent the field as `planType`: Drip knows it as `plan_type`.
    teach = {"type": "identify", "userId": "123", "messageId": "m-1",
             "traits": {"email": "john@acme.com", "planType": "free"}}  # fmt: skip
    client.post("/segment", data=dumps(teach), headers=HEADERS)
    drain(worker)
    to_drip = len(fake_drip.calls())
    unsubscribed = event == "subscriber.unsubscribed_all"
    body = envelope(event, status="unsubscribed" if unsubscribed else "active")
    track_id = post_webhook(client, body)
    drain(worker)

    track, identify = fake_segment.messages()
    assert (track["type"], track["messageId"]) == ("track", track_id)
    assert identify["context"].pop("library")["name"] == "analytics-python"
    assert identify == {
        "type": "identify",
        "userId": "123",
        "anonymousId": None,
        "messageId": f"{track_id}-identify",
        "timestamp": "2013-06-21T10:31:58.000+00:00",
        "traits": {
            "planType": "pro",
            "shirt_size": "Medium",
            "email": "john@acme.com",
            "tags": ["Customer", "SEO"],
            "unsubscribed": unsubscribed,
        },
        "context": {"integration": {"name": "drip-bridge", "version": __version__}},
        "integrations": LOOP_GUARD,
    }

    # Segment hands both back (a Webhooks destination left on): nothing reaches Drip.
    echo = client.post("/segment", data=dumps(fake_segment.messages()), headers=HEADERS)
    assert [s["reason"] for s in answer(echo)["skipped"]] == ["loop_guard", "loop_guard"]
    assert answer(echo)["accepted"] == 0
    drain(worker)
    assert len(fake_drip.calls()) == to_drip


@pytest.mark.parametrize("event", ["subscriber.opened_email", "subscriber.deleted"])
def test_email_events_and_deletions_give_a_track_only(
    client: FlaskClient, worker: Worker, fake_segment: FakeSegment, event: str
) -> None:
    assert event not in PROFILE_EVENTS
    post_webhook(client, envelope(event))
    drain(worker)
    assert [m["type"] for m in fake_segment.messages()] == ["track"]


def test_an_identify_without_a_drip_user_id_is_anonymous_by_email(
    client: FlaskClient, worker: Worker, fake_segment: FakeSegment
) -> None:
    post_webhook(client, envelope("subscriber.created", user_id=None, custom_fields={}, tags=[]))
    drain(worker)
    identify = fake_segment.messages()[1]
    assert (identify["userId"], identify["anonymousId"]) == (None, "john@acme.com")
    assert identify["traits"] == {"email": "john@acme.com", "tags": [], "unsubscribed": False}
