"""POST /segment: auth, bad input, answers, and what is stored (/v1/*: test_tracking_api)."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.factory import create_app
from tests.conftest import SHARED_SECRET, WRITE_KEY, make_config
from tests.helpers import (
    IDENTIFY,
    TRACK,
    answer,
    basic,
    bearer,
    dumps,
    received,
    rows,
    sign,
    skipped,
)

JSON = {"Content-Type": "application/json"}


def post_segment(client: FlaskClient, body: Any, **headers: str) -> Any:
    return client.post("/segment", data=dumps(body), headers=JSON | bearer(WRITE_KEY) | headers)


def test_identify_then_track_are_stored_in_order_and_counted(
    client: FlaskClient, app: Flask
) -> None:
    response = post_segment(client, [IDENTIFY, TRACK])
    assert response.status_code == 200
    assert response.json == {"success": True, "accepted": 2, "duplicates": 0, "skipped": []}
    stored = rows(app)
    assert [(r.kind, r.person, r.message_id) for r in stored] == [
        ("subscriber", "user:u1", "m-identify-1"),  # ordered by userId, else by email
        ("event", "user:u1", "m-track-1"),
    ]


def test_a_repeated_message_id_is_a_duplicate_and_stored_once(
    client: FlaskClient, app: Flask
) -> None:
    post_segment(client, IDENTIFY)
    response = post_segment(client, IDENTIFY)
    assert response.json == {"success": True, "accepted": 0, "duplicates": 1, "skipped": []}
    assert len(rows(app)) == 1


def test_a_batch_with_one_bad_message_keeps_the_valid_ones(client: FlaskClient, app: Flask) -> None:
    bad = {"type": "track", "messageId": "m-bad", "userId": "u1"}
    response = post_segment(client, {"batch": [IDENTIFY, bad, TRACK]})
    assert response.status_code == 200
    assert answer(response)["accepted"] == 2
    assert answer(response)["skipped"] == [
        {
            "messageId": "m-bad",
            "reason": "invalid_message",
            "detail": "event a track call needs a non-empty event name",
        }
    ]
    assert [r.reason for r in rows(app, skipped)] == ["invalid_message"]
    assert rows(app, skipped)[0].payload == bad


def test_a_track_without_any_email_is_skipped_as_missing_email(client: FlaskClient) -> None:
    lonely = TRACK | {"userId": "nobody-knows", "messageId": "m-lonely"}
    response = post_segment(client, lonely)
    assert answer(response)["skipped"] == [{"messageId": "m-lonely", "reason": "missing_email"}]


@pytest.mark.parametrize("batched", [False, True])
def test_an_email_drip_would_refuse_is_skipped_alone_and_in_a_batch_alike(
    client: FlaskClient, app: Flask, batched: bool
) -> None:
    message = IDENTIFY | {"traits": {"email": "ada@example.com."}}  # a trailing dot
    response = post_segment(client, [message] if batched else message)
    assert answer(response)["skipped"] == [{"messageId": "m-identify-1", "reason": "missing_email"}]
    assert answer(response)["problems"] == [
        {"messageId": "m-identify-1", "field": "traits.email", "reason": "not an email address"}
    ]
    assert rows(app) == []


def test_a_message_sent_by_the_bridge_itself_is_skipped_by_the_loop_guard(
    client: FlaskClient,
) -> None:
    echo = TRACK | {"messageId": "m-echo", "context": {"integration": {"name": "drip-bridge"}}}
    response = post_segment(client, echo)
    assert answer(response)["skipped"][0]["reason"] == "loop_guard"


@pytest.mark.parametrize(
    ("body", "status", "code", "says"),
    [
        (b"{not json", 400, "invalid_json", "The body is not JSON: Expecting property name"),
        (b'"just a string"', 400, "invalid_body", "Send a Segment message"),
        (dumps({"userId": "u1"}), 400, "invalid_message", "type is missing"),
        (dumps({"type": "track", "userId": "u1"}), 400, "invalid_message", "non-empty event"),
        (dumps({"type": "identify"}), 400, "invalid_message", "needs a userId or an anonymousId"),
        (dumps({"type": "fly", "userId": "u"}), 400, "invalid_message", "type must be one of"),
    ],
    ids=["not json", "not an object", "no type", "track without event", "no id", "unknown type"],
)
def test_bad_bodies_get_400_saying_what_to_fix(
    client: FlaskClient, body: bytes, status: int, code: str, says: str
) -> None:
    response = client.post("/segment", data=body, headers=JSON | bearer(WRITE_KEY))
    assert response.status_code == status
    assert answer(response)["error"]["code"] == code
    assert says in answer(response)["error"]["message"]


def test_a_body_that_is_not_json_content_is_415(client: FlaskClient) -> None:
    response = client.post(
        "/segment", data="a=b", headers={"Content-Type": "text/csv"} | bearer(WRITE_KEY)
    )
    assert response.status_code == 415
    assert response.json == {
        "error": {
            "code": "unsupported_media_type",
            "message": "Send JSON with Content-Type: application/json (got text/csv).",
            "details": {},
        }
    }


def test_a_body_over_512_kb_is_413(client: FlaskClient) -> None:
    big = IDENTIFY | {"traits": {"email": "a@b.co", "blob": "x" * 600_000}}
    response = post_segment(client, big)
    assert response.status_code == 413
    assert answer(response)["error"]["code"] == "payload_too_large"


def test_a_valid_signature_over_the_raw_body_is_accepted(client: FlaskClient) -> None:
    raw = b'{ "type":"identify","userId":"u1", "traits":{"email":"ada@example.com"}}'
    response = client.post(
        "/segment", data=raw, headers=JSON | {"X-Signature": sign(SHARED_SECRET, raw)}
    )
    assert response.status_code == 200
    assert answer(response)["accepted"] == 1


def test_an_array_is_verified_over_its_first_element_exactly_as_sent(client: FlaskClient) -> None:
    first = b'{"type":"identify",  "userId":"u1","traits":{"email":"ada@example.com"}}'
    raw = b"[ " + first + b' ,\n{"type":"track","userId":"u1","event":"E"}]'
    response = client.post(
        "/segment", data=raw, headers=JSON | {"X-Signature": sign(SHARED_SECRET, first)}
    )
    assert response.status_code == 200
    assert answer(response)["accepted"] == 2


def test_a_wrong_signature_is_401_and_says_which_secret_to_check(
    client: FlaskClient, app: Flask
) -> None:
    raw = dumps(IDENTIFY)
    response = client.post("/segment", data=raw, headers=JSON | {"X-Signature": sign("wrong", raw)})
    assert response.status_code == 401
    assert answer(response)["error"]["code"] == "bad_signature"
    assert "SEGMENT_SHARED_SECRET" in answer(response)["error"]["message"]
    assert rows(app, received) == []


@pytest.mark.parametrize(
    "headers",
    [{}, bearer("nope"), basic("nope"), {"Authorization": "Basic !!"}],
    ids=["none", "wrong bearer", "wrong basic", "garbled basic"],
)
def test_missing_or_wrong_keys_are_401(client: FlaskClient, headers: dict[str, str]) -> None:
    response = client.post("/segment", data=dumps(IDENTIFY), headers=JSON | headers)
    assert response.status_code == 401
    assert answer(response)["error"]["code"] == "unauthorized"


def test_basic_auth_with_the_write_key_as_user_is_accepted(client: FlaskClient) -> None:
    response = client.post("/segment", data=dumps(IDENTIFY), headers=JSON | basic(WRITE_KEY))
    assert response.status_code == 200


def test_with_no_secret_configured_the_endpoint_fails_closed(database_url: str) -> None:
    config = make_config(
        database_url, "http://127.0.0.1:9", bridge_write_key=None, segment_shared_secret=None
    )
    client = create_app(config).test_client()
    response = client.post("/segment", data=dumps(IDENTIFY), headers=JSON)
    assert response.status_code == 503
    assert "SEGMENT_SHARED_SECRET" in answer(response)["error"]["message"]


def test_when_the_store_is_down_nothing_is_acknowledged() -> None:
    config = make_config("postgresql+psycopg://postgres@127.0.0.1:1/none", "http://127.0.0.1:9")
    client = create_app(config).test_client()
    response = client.post("/segment", data=dumps(IDENTIFY), headers=JSON | bearer(WRITE_KEY))
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "30"
    assert answer(response)["error"]["code"] == "store_unavailable"
