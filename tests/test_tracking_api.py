"""POST /v1/*: each request stored whole in the inbox, then mapped by the worker's intake."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app import store
from app.delivery.worker import Worker
from app.factory import create_app
from app.pipeline import intake
from app.store import inbox as inbox_store
from app.store.tables import inbox
from tests.conftest import WRITE_KEY, drain, make_config
from tests.helpers import IDENTIFY, TRACK, answer, basic, dumps, metrics, received, rows, skipped

JSON = {"Content-Type": "application/json"}
AUTH = JSON | basic(WRITE_KEY)


def post(client: FlaskClient, call: str, body: Any, headers: dict[str, str] = AUTH) -> Any:
    return client.post(f"/v1/{call}", data=dumps(body), headers=headers)


def take(app: Flask) -> bool:
    return intake.map_waiting(app.extensions["engine"], app.config["BRIDGE"])


def test_a_call_is_stored_as_sent_and_answered_as_segment_does(
    client: FlaskClient, app: Flask
) -> None:
    response = post(client, "identify", IDENTIFY)
    assert response.status_code == 200
    assert response.json == {"success": True}
    (row,) = rows(app, inbox)
    assert (row.kind, row.body) == ("identify", dumps(IDENTIFY).decode())  # byte for byte
    assert rows(app) == []  # nothing mapped yet

    assert take(app) is True
    (call,) = rows(app)
    assert (call.kind, call.person, call.message_id) == ("subscriber", "user:u1", "m-identify-1")
    assert call.received_at == row.received_at  # the request's time, not the intake's
    assert rows(app, inbox) == []
    assert take(app) is False


def test_a_single_call_takes_its_type_from_the_path(client: FlaskClient, app: Flask) -> None:
    body = {k: v for k, v in TRACK.items() if k != "type"} | {
        "properties": {"email": "ada@example.com"}
    }
    assert post(client, "track", body).status_code == 200
    take(app)
    assert [r.kind for r in rows(app)] == ["event"]


def test_an_invalid_call_is_answered_200_as_segment_does_and_skipped_with_the_reason(
    client: FlaskClient, app: Flask
) -> None:
    response = post(client, "track", {"userId": "u1", "messageId": "m-1"})
    assert response.json == {"success": True}
    take(app)
    assert rows(app) == []
    (skip,) = rows(app, skipped)
    assert (skip.message_id, skip.reason) == ("m-1", "invalid_message")
    assert skip.detail == "event a track call needs a non-empty event name"


def test_a_single_call_over_32_kb_is_413(client: FlaskClient, app: Flask) -> None:
    big = IDENTIFY | {"traits": {"email": "a@b.co", "blob": "x" * 40_000}}
    response = post(client, "identify", big)
    assert response.status_code == 413
    assert rows(app, inbox) == []


def test_a_body_that_is_not_json_is_400(client: FlaskClient, app: Flask) -> None:
    response = client.post("/v1/track", data=b'{"type": "track",', headers=AUTH)
    assert response.status_code == 400
    assert answer(response)["error"]["code"] == "invalid_json"
    assert rows(app, inbox) == []


def test_a_batch_is_answered_at_once_and_its_bad_messages_are_skipped_at_intake(
    client: FlaskClient, app: Flask
) -> None:
    bad = {"type": "track", "messageId": "m-bad", "userId": "u1"}
    response = post(client, "batch", {"batch": [IDENTIFY, bad, TRACK]})
    assert response.json == {"success": True}
    take(app)
    assert [r.message_id for r in rows(app)] == ["m-identify-1", "m-track-1"]
    (skip,) = rows(app, skipped)
    assert (skip.message_id, skip.reason, skip.payload) == ("m-bad", "invalid_message", bad)
    assert skip.detail == "event a track call needs a non-empty event name"


def test_a_message_over_32_kb_in_a_batch_is_skipped_and_the_rest_kept(
    client: FlaskClient, app: Flask
) -> None:
    big = IDENTIFY | {"messageId": "m-big", "traits": {"email": "a@b.co", "blob": "x" * 40_000}}
    post(client, "batch", {"batch": [big, TRACK | {"properties": {"email": "a@b.co"}}]})
    take(app)
    assert [r.message_id for r in rows(app)] == ["m-track-1"]
    assert [(r.message_id, r.reason) for r in rows(app, skipped)] == [("m-big", "too_large")]


def test_write_keys_are_never_stored(client: FlaskClient, app: Flask) -> None:
    body = {
        "batch": [IDENTIFY | {"writeKey": WRITE_KEY}],
        "writeKey": WRITE_KEY,
        "context": {"ip": "10.0.0.1"},
    }
    assert post(client, "batch", body, JSON).status_code == 200
    (row,) = rows(app, inbox)
    assert WRITE_KEY not in row.body
    take(app)
    (stored,) = rows(app, received)
    assert "writeKey" not in json.dumps(stored.payload)
    assert stored.payload["context"] == {"ip": "10.0.0.1"}  # the batch's context, merged


def test_requests_are_mapped_in_the_order_they_arrived(client: FlaskClient, app: Flask) -> None:
    post(client, "identify", IDENTIFY)
    post(client, "track", TRACK)  # no email: known from the identify before it
    take(app)
    assert [(r.kind, r.body.get("email")) for r in rows(app)] == [
        ("subscriber", "ada@example.com"),
        ("event", "ada@example.com"),
    ]


def test_a_message_sent_again_in_another_request_is_mapped_once(
    client: FlaskClient, app: Flask
) -> None:
    post(client, "identify", IDENTIFY)
    take(app)
    post(client, "batch", {"batch": [IDENTIFY]})
    take(app)
    assert len(rows(app)) == 1
    assert len(rows(app, received)) == 1


def test_an_intake_maps_a_bounded_slice_of_messages_in_arrival_order(
    client: FlaskClient, app: Flask
) -> None:
    part = intake.MESSAGES * 3 // 4  # 150: the slices cut across requests
    for n in range(3):
        batch = [IDENTIFY | {"messageId": f"m-{n}-{i}", "userId": f"u{i}"} for i in range(part)]
        post(client, "batch", {"batch": batch})
    waiting = []
    for _ in range(3):
        take(app)
        waiting.append([(r.id, r.mapped) for r in rows(app, inbox)])
    assert waiting == [[(2, 50), (3, 0)], [(3, 100)], []]
    mapped = [r.message_id for r in rows(app)]
    assert mapped == [f"m-{n}-{i}" for n in range(3) for i in range(part)]


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_on_postgres_one_intake_works_at_a_time(client: FlaskClient, app: Flask) -> None:
    # (On SQLite the write lock already lets one intake in at a time.)
    post(client, "identify", IDENTIFY)
    engine = app.extensions["engine"]
    with store.writing(engine) as first:
        assert len(inbox_store.oldest(first, 10)) == 1
        with store.writing(engine) as second:
            assert inbox_store.oldest(second, 10) == []
    with store.writing(engine) as later:
        assert len(inbox_store.oldest(later, 10)) == 1


def test_the_worker_maps_the_inbox_then_delivers(
    client: FlaskClient, app: Flask, worker: Worker, fake_drip: Any
) -> None:
    post(client, "identify", IDENTIFY)
    drain(worker)
    assert [r["email"] for r in fake_drip.records("subscriber")] == ["ada@example.com"]


def test_a_store_that_fails_answers_503_and_acknowledges_nothing(tmp_path: Path) -> None:
    # No schema: the insert itself fails, on the driver's own connection.
    config = make_config(f"sqlite:///{tmp_path}/empty.sqlite3", "http://127.0.0.1:9")
    client = create_app(config).test_client()
    response = post(client, "track", TRACK)
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "30"
    assert answer(response)["error"]["code"] == "store_unavailable"


def test_an_unreachable_store_answers_503() -> None:
    config = make_config("postgresql+psycopg://postgres@127.0.0.1:1/none", "http://127.0.0.1:9")
    response = post(create_app(config).test_client(), "batch", {"batch": [IDENTIFY]})
    assert response.status_code == 503


def test_a_wrong_write_key_is_401(client: FlaskClient) -> None:
    response = post(client, "batch", {"batch": [], "writeKey": "nope"}, JSON)
    assert response.status_code == 401


def test_a_batch_that_is_not_an_array_is_400(client: FlaskClient) -> None:
    response = post(client, "batch", {"batch": {"type": "track"}})
    assert response.status_code == 400
    assert answer(response)["error"]["message"] == '"batch" must be an array of Segment messages.'


def test_an_unknown_call_is_404(client: FlaskClient) -> None:
    response = post(client, "fly", {})
    assert response.status_code == 404
    assert answer(response)["error"]["code"] == "not_found"


def test_metrics_show_the_requests_waiting_to_be_mapped(client: FlaskClient, app: Flask) -> None:
    before = metrics(client, source="segment")
    post(client, "identify", IDENTIFY)
    post(client, "batch", {"batch": [TRACK, TRACK | {"messageId": "m-track-2"}]})
    during = metrics(client, source="segment")
    assert during["bridge_inbox_waiting"] == 2
    received = "bridge_messages_received_total"
    assert during[received] - before.get(received, 0) == 3  # counted as they arrive
    take(app)
    after = metrics(client, source="segment")
    assert after["bridge_inbox_waiting"] == 0
    accepted = "bridge_messages_accepted_total"
    assert after[accepted] - before.get(accepted, 0) == 3  # counted once mapped


def test_a_request_that_cannot_be_mapped_is_set_aside_and_the_rest_flow(
    client: FlaskClient, app: Flask
) -> None:
    engine = app.extensions["engine"]
    with engine.begin() as conn:  # a row this version cannot read
        conn.execute(inbox.insert().values(kind="track", body="{not json", received_at=1.0))
    post(client, "identify", IDENTIFY)
    assert take(app) is True  # the bad row goes aside
    (skip,) = rows(app, skipped)
    assert (skip.reason, skip.payload) == ("mapping_failed", {"kind": "track", "body": "{not json"})
    assert skip.detail.startswith("JSONDecodeError: Expecting property name")
    assert take(app) is True
    assert [r.message_id for r in rows(app)] == ["m-identify-1"]
    assert rows(app, inbox) == []


def test_a_gzipped_batch_is_stored_as_the_json_it_carries(client: FlaskClient, app: Flask) -> None:
    raw = dumps({"batch": [IDENTIFY]})
    headers = AUTH | {"Content-Encoding": "gzip"}
    response = client.post("/v1/batch", data=gzip.compress(raw), headers=headers)
    assert response.json == {"success": True}
    assert [r.body for r in rows(app, inbox)] == [raw.decode()]


def test_a_text_plain_body_is_taken_as_json_as_analytics_js_sends_it(
    client: FlaskClient, app: Flask
) -> None:
    headers = basic(WRITE_KEY) | {"Content-Type": "text/plain"}
    response = client.post("/v1/track", data=dumps(TRACK), headers=headers)
    assert response.json == {"success": True}
    assert len(rows(app, inbox)) == 1
