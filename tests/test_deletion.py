"""Segment deletion requests: the person's subscribers deleted in Drip, their data purged."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from app.config import Config
from app.delivery.runner import create_worker
from app.delivery.worker import Worker
from app.simulators.drip import FakeDrip
from app.simulators.segment import FakeSegment
from app.store import deletions, tables
from tests.conftest import ACCOUNT_ID, WEBHOOK_TOKEN, WRITE_KEY, drain, running
from tests.helpers import answer, basic, bearer, dumps

PAGE_KEY = "browser-test-write-key"
JSON = {"Content-Type": "application/json"}
PAGE = {"Content-Type": "text/plain"} | basic(PAGE_KEY)
OLD, NEW = "ada@old.example", "Ada@New.example"
# What must not be left anywhere once the person is deleted.
PERSONAL = ("ada@old.example", "ada@new.example", "lovelace", "analytical engine")
DELETE = {"type": "delete", "userId": "u-ada", "messageId": "del-1"}


@pytest.fixture
def bridge(config: Config) -> Iterator[Flask]:
    with running(config.with_overrides({"browser_origins": ("*",),
                                        "browser_write_key": PAGE_KEY})) as app:  # fmt: skip
        yield app


@pytest.fixture
def web(bridge: Flask) -> FlaskClient:
    return bridge.test_client()


@pytest.fixture
def steps(bridge: Flask) -> Worker:
    return create_worker(bridge)


def segment(web: FlaskClient, body: Any) -> Any:
    headers = {"Content-Type": "application/json"} | bearer(WRITE_KEY)
    response = web.post("/segment", data=dumps(body), headers=headers)
    assert response.status_code == 200, response.data
    return answer(response)


def webhook(web: FlaskClient, event: str, email: str, subscriber_id: str) -> Any:
    envelope = {
        "event": event,
        "data": {
            "account_id": ACCOUNT_ID,
            "subscriber": {"id": subscriber_id, "email": email, "user_id": "u-ada",
                           "custom_fields": {"book": "Analytical Engine"}},
            "properties": {},
        },
        "occurred_at": "2026-11-26T11:00:00Z",
    }  # fmt: skip
    response = web.post(f"/drip/webhook?token={WEBHOOK_TOKEN}", json=envelope)
    assert response.status_code == 200, response.data
    return answer(response)


def everything_stored(app: Flask) -> str:
    """The proof: every row of every table of the store, as one lowercased text."""
    with app.extensions["engine"].connect() as conn:
        dump = {
            table.name: [list(row) for row in conn.execute(sa.select(table))]
            for table in tables.metadata.sorted_tables
        }
    return json.dumps(dump, default=str).lower()


def known_by_two_emails(web: FlaskClient, steps: Worker, fake_drip: FakeDrip) -> None:
    """A page knew Ada as OLD (it never renames anyone), the server as NEW: two subscribers."""
    page = {"userId": "u-ada", "anonymousId": "anon-ada",
            "traits": {"email": OLD, "name": "Ada Lovelace"}}  # fmt: skip
    assert web.post("/v1/i", data=dumps(page), headers=PAGE).status_code == 200
    drain(steps)
    server = {"type": "identify", "messageId": "m-new", "userId": "u-ada",
              "traits": {"email": NEW, "book": "Analytical Engine"}}  # fmt: skip
    segment(web, [server, {"type": "page", "userId": "u-ada", "name": "Lovelace notes"}])
    webhook(web, "subscriber.opened_email", NEW, "z2")
    drain(steps)
    assert fake_drip.subscriber(OLD) is not None
    assert fake_drip.subscriber(NEW) is not None


def test_a_delete_for_a_userid_known_by_two_emails_deletes_both_and_keeps_no_personal_data(
    web: FlaskClient,
    bridge: Flask,
    steps: Worker,
    fake_drip: FakeDrip,
    fake_segment: FakeSegment,
) -> None:
    known_by_two_emails(web, steps, fake_drip)
    assert "lovelace" in everything_stored(bridge)

    assert segment(web, DELETE) == {"success": True, "accepted": 1, "duplicates": 0,
                                    "skipped": []}  # fmt: skip
    with bridge.extensions["engine"].connect() as conn:
        (pending,) = deletions.recent(conn, 10)
    assert (pending.state, pending.subscribers, pending.waiting) == ("pending", 2, 2)
    drain(steps)

    assert fake_drip.records("delete") == [{"email": OLD}, {"email": NEW.lower()}]
    deleted = fake_drip.calls()[-2:]
    assert [(c.method, c.path, c.status) for c in deleted] == [
        ("DELETE", f"/v2/{ACCOUNT_ID}/subscribers/ada@old.example", 204),
        ("DELETE", f"/v2/{ACCOUNT_ID}/subscribers/ada@new.example", 204),
    ]
    assert fake_drip.subscriber(OLD) is None and fake_drip.subscriber(NEW) is None
    stored = everything_stored(bridge)
    assert [p for p in PERSONAL if p in stored] == []
    with bridge.extensions["engine"].connect() as conn:
        (done,) = deletions.recent(conn, 10)
        proof = conn.execute(sa.select(tables.deletions)).one()
    assert done.state == "done"
    assert (proof.message_id, proof.user_id, proof.subscribers) == ("del-1", "u-ada", 2)

    # Drip then fires subscriber.deleted for each: forwarded to Segment, nothing to Drip.
    drip_calls = len(fake_drip.calls())
    for n, email in enumerate((OLD, NEW)):
        webhook(web, "subscriber.deleted", email, f"z{n + 1}")
    drain(steps)
    tracks = [m for m in fake_segment.messages() if m.get("event") == "Deleted"]
    assert [(m["type"], m["userId"], m["context"]["traits"]["email"]) for m in tracks] == [
        ("track", "u-ada", OLD),
        ("track", "u-ada", NEW),
    ]
    assert segment(web, tracks)["skipped"] == [
        {"messageId": m["messageId"], "reason": "loop_guard",
         "detail": "sent to Segment by drip-bridge itself; not sent back to Drip"}
        for m in tracks
    ]  # fmt: skip
    drain(steps)
    assert len(fake_drip.calls()) == drip_calls
    stored = everything_stored(bridge)
    assert [p for p in PERSONAL if p in stored] == []


def test_a_delete_for_an_unknown_userid_on_v1_is_recorded_and_answered(
    web: FlaskClient, bridge: Flask, steps: Worker, fake_drip: FakeDrip
) -> None:
    batch = {"batch": [DELETE | {"userId": "u-nobody"}]}
    response = web.post("/v1/batch", data=dumps(batch), headers=JSON | basic(WRITE_KEY))
    assert (response.status_code, answer(response)) == (200, {"success": True})
    drain(steps)
    with bridge.extensions["engine"].connect() as conn:
        (done,) = deletions.recent(conn, 10)
    assert (done.message_id, done.user_id, done.subscribers, done.state) == (
        "del-1",
        "u-nobody",
        0,
        "done",
    )
    assert fake_drip.calls() == []


def test_a_delete_without_a_userid_is_invalid(web: FlaskClient) -> None:
    headers = {"Content-Type": "application/json"} | bearer(WRITE_KEY)
    body = {"type": "delete", "anonymousId": "a1", "messageId": "del-2"}
    response = web.post("/segment", data=dumps(body), headers=headers)
    assert response.status_code == 400
    assert "a deletion request needs the userId" in answer(response)["error"]["message"]


def test_a_page_may_not_delete_anyone(
    web: FlaskClient, bridge: Flask, steps: Worker, fake_drip: FakeDrip
) -> None:
    known_by_two_emails(web, steps, fake_drip)
    batch = {"batch": [DELETE]}
    assert web.post("/v1/b", data=dumps(batch), headers=PAGE).status_code == 200
    drain(steps)
    assert fake_drip.records("delete") == []
    with bridge.extensions["engine"].connect() as conn:
        assert deletions.recent(conn, 10) == []
        reasons = conn.execute(sa.select(tables.skipped.c.reason)).scalars().all()
    assert "browser_key" in reasons
    assert "lovelace" in everything_stored(bridge)
