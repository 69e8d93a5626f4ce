"""POST /drip/webhook and delivery to Segment: auth, bad input, de-duplication, loop guard."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app import __version__
from app.delivery.segment_client import SegmentClient
from app.delivery.segment_sender import SegmentSender
from app.delivery.worker import Worker
from app.factory import create_app
from app.simulators.drip import FakeDrip
from app.simulators.segment import FakeSegment
from tests.conftest import ACCOUNT_ID, WEBHOOK_TOKEN, WRITE_KEY, drain, make_config
from tests.helpers import answer, bearer, rows, skipped

URL = f"/drip/webhook?token={WEBHOOK_TOKEN}"
CLICK: dict[str, Any] = {
    "event": "subscriber.clicked_email",
    "data": {
        "account_id": ACCOUNT_ID,
        "subscriber": {"id": "z1togz2hcjrkpp5treip", "email": "john@acme.com", "user_id": "123"},
        "properties": {
            "delivery_id": "99999",
            "email_id": "88888",
            "url": "http://www.example.com",
            "ip_address": "111.111.111.11",
            "user_agent": "Mozilla/5.0",
            "email_subject": "Email Course: Day 1",
        },
    },
    "occurred_at": "2013-06-21T10:31:58Z",
}


def webhook(event: str, **changes: Any) -> dict[str, Any]:
    body = copy.deepcopy(CLICK)
    body["event"] = event
    body.update(changes)
    return body


def make_due(app: Flask) -> None:
    from app.store.tables import outbox

    with app.extensions["engine"].begin() as conn:
        conn.execute(outbox.update().where(outbox.c.state == "pending").values(available_at=0))


def test_a_click_reaches_segment_as_email_link_clicked_with_the_exact_message(
    client: FlaskClient, app: Flask, worker: Worker, fake_segment: FakeSegment
) -> None:
    response = client.post(URL, json=CLICK)
    assert response.status_code == 200
    assert answer(response)["success"] is True
    (stored,) = rows(app)
    drain(worker)
    (message,) = fake_segment.messages()
    assert message == stored.body  # mapped once, on arrival: the row is what leaves
    assert message["context"].pop("library")["name"] == "analytics-python"
    assert message == {
        "type": "track",
        "event": "Email Link Clicked",
        "userId": "123",
        "anonymousId": None,  # the library sends the unused id as null
        "messageId": answer(response)["id"],
        "timestamp": "2013-06-21T10:31:58.000+00:00",
        "properties": {
            "delivery_id": "99999",
            "email_id": "88888",
            "link_url": "http://www.example.com",
            "email_subject": "Email Course: Day 1",
            "drip_subscriber_id": "z1togz2hcjrkpp5treip",
        },
        "context": {
            "traits": {"email": "john@acme.com"},
            "integration": {"name": "drip-bridge", "version": __version__},
            "ip": "111.111.111.11",
            "userAgent": "Mozilla/5.0",
        },
        "integrations": {
            "Drip": False,
            "Drip (Actions)": False,
            "Webhooks": False,
            "Webhooks (Actions)": False,
        },
    }


def test_an_identical_webhook_posted_twice_is_forwarded_once(
    client: FlaskClient, worker: Worker, fake_segment: FakeSegment
) -> None:
    first = answer(client.post(URL, json=CLICK))
    second = answer(client.post(URL, json=CLICK))
    assert second == {"success": True, "id": first["id"], "duplicate": True}
    drain(worker)
    assert len(fake_segment.messages()) == 1


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (webhook("subscriber.performed_custom_event"), "not_forwarded"),
        (webhook("subscriber.did_a_new_thing"), "unknown_event"),
    ],
    ids=["custom events are off by default", "an unknown event name"],
)
def test_valid_events_that_are_not_forwarded_get_200_and_are_counted(
    client: FlaskClient, app: Flask, body: dict[str, Any], reason: str
) -> None:
    response = client.post(URL, json=body)
    assert response.status_code == 200
    assert answer(response)["skipped"] == reason
    assert [r.reason for r in rows(app, skipped)] == [reason]
    assert f'bridge_messages_skipped_total{{reason="{reason}",source="drip"}}' in client.get(
        "/metrics"
    ).get_data(as_text=True)


@pytest.mark.parametrize(
    ("url", "body", "status", "code"),
    [
        ("/drip/webhook", CLICK, 401, "unauthorized"),
        ("/drip/webhook?token=wrong", CLICK, 401, "unauthorized"),
        (URL, "not json", 400, "invalid_json"),
        (
            URL,
            {"data": CLICK["data"], "occurred_at": "2013-06-21T10:31:58Z"},
            400,
            "invalid_webhook",
        ),
        (URL, webhook("subscriber.opened_email", occurred_at="yesterday"), 400, "invalid_webhook"),
    ],
    ids=["no token", "wrong token", "not json", "no event", "bad occurred_at"],
)
def test_bad_webhooks_get_a_clear_4xx(
    client: FlaskClient, url: str, body: Any, status: int, code: str
) -> None:
    data = body if isinstance(body, str) else None
    response = client.post(url, json=None if data else body, data=data,
                           content_type="application/json")  # fmt: skip
    assert response.status_code == status
    assert answer(response)["error"]["code"] == code


def test_a_webhook_for_another_account_is_403_naming_both(client: FlaskClient) -> None:
    other = copy.deepcopy(CLICK)
    other["data"]["account_id"] = "1234567"
    response = client.post(URL, json=other)
    assert response.status_code == 403
    assert answer(response)["error"]["message"] == (
        f"This webhook is for Drip account 1234567, but the bridge serves account {ACCOUNT_ID} "
        "(DRIP_ACCOUNT_ID)."
    )


def test_when_the_store_is_down_drip_gets_429_so_it_retries() -> None:
    config = make_config("postgresql+psycopg://postgres@127.0.0.1:1/none", "http://127.0.0.1:9")
    response = create_app(config).test_client().post(URL, json=CLICK)
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "60"


def test_the_loop_guard_round_trip_never_reaches_drip(
    client: FlaskClient, worker: Worker, fake_segment: FakeSegment, fake_drip: FakeDrip
) -> None:
    client.post(URL, json=CLICK)
    drain(worker)
    (echo,) = fake_segment.messages()  # as Segment would send it on to its destinations
    response = client.post("/segment", json=echo, headers=bearer(WRITE_KEY))
    assert answer(response)["skipped"] == [{"messageId": echo["messageId"], "reason": "loop_guard",
        "detail": "sent to Segment by drip-bridge itself; not sent back to Drip"}]  # fmt: skip
    drain(worker)
    assert fake_drip.calls() == []


def test_a_failed_segment_batch_is_retried_from_the_store(
    client: FlaskClient, app: Flask, worker: Worker, fake_segment: FakeSegment
) -> None:
    fake_segment.fail_next(1, status=500)  # one request per attempt: the store retries
    client.post(URL, json=CLICK)
    drain(worker)
    assert rows(app)[0].state == "pending"
    assert "Segment refused the batch" in rows(app)[0].error
    make_due(app)
    drain(worker)
    assert rows(app)[0].state == "done"
    assert len(fake_segment.unique_messages()) == 1


def test_a_track_over_32_kb_is_skipped_when_it_arrives_not_raised(
    client: FlaskClient, app: Flask, worker: Worker, fake_segment: FakeSegment
) -> None:
    big = webhook("subscriber.applied_tag")
    big["data"]["properties"] = {"tag": "x" * 40_000}
    response = client.post(URL, json=big)
    assert (response.status_code, answer(response)["skipped"]) == (200, "too_large")
    assert rows(app) == []
    assert [(r.reason, r.detail) for r in rows(app, skipped)] == [
        ("too_large", "subscriber.applied_tag")
    ]
    drain(worker)
    assert fake_segment.messages() == []


def test_a_segment_that_hangs_times_out_and_the_rows_are_retried(
    client: FlaskClient, app: Flask, fake_segment: FakeSegment, config: Any
) -> None:
    client_to_segment = SegmentClient(config.segment_write_key, config.segment_api_host, 1)
    worker = Worker(app.extensions["engine"], [SegmentSender(client_to_segment)])
    fake_segment.hang()
    try:
        client.post(URL, json=CLICK)
        drain(worker)
    finally:
        fake_segment.release()
    (row,) = rows(app)
    assert (row.state, row.error) == ("pending", "Segment did not answer within 1s")
