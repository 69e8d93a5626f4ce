"""No message, client or caller can stop, stall or steer the bridge (RELIABILITY.md)."""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import logging
import socket
import threading
import time
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from app.config import Config
from app.delivery.drip_client import DripClient
from app.delivery.errors import DeliveryError
from app.delivery.worker import SET_ASIDE_AFTER, Worker
from app.mapping.to_segment import event_id
from app.simulators.drip import FakeDrip
from app.simulators.segment import FakeSegment
from app.store import outbox as store_outbox
from app.store.tables import inbox, outbox
from tests.conftest import ACCOUNT_ID, SHARED_SECRET, WEBHOOK_TOKEN, WRITE_KEY, drain
from tests.helpers import IDENTIFY, TRACK, answer, basic, bearer, received, rows, sign, skipped

JSON = {"Content-Type": "application/json"}
V1 = JSON | basic(WRITE_KEY)
GOOD = IDENTIFY | {"messageId": "m-good", "userId": "u-good", "traits": {"email": "g@x.io"}}


def v1(client: FlaskClient, body: Any, headers: dict[str, str] = V1, call: str = "batch") -> Any:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post(f"/v1/{call}", data=data, headers=headers)


def skips(app: Flask) -> list[tuple[str | None, str]]:
    return [(r.message_id, r.reason) for r in rows(app, skipped)]


@pytest.mark.parametrize(
    ("bad", "detail"),
    [
        ({"userId": "u" * 201}, "userId Longer than maximum length 200."),
        ({"anonymousId": "a" * 201, "userId": None}, "anonymousId Longer than maximum length 200."),
        ({"userId": "u\ud800"}, "holds text that is not valid Unicode (a lone surrogate)"),
    ],
)
def test_a_message_no_column_can_hold_is_skipped_and_the_rest_delivered(
    client: FlaskClient,
    app: Flask,
    worker: Worker,
    fake_drip: FakeDrip,
    bad: dict[str, Any],
    detail: str,
) -> None:
    message = IDENTIFY | {"messageId": "m-bad"} | bad
    assert v1(client, {"batch": [message, GOOD]}).status_code == 200
    drain(worker)
    assert rows(app, inbox) == []
    assert [(r.message_id, r.reason, r.detail) for r in rows(app, skipped)] == [
        ("m-bad", "invalid_message", detail)
    ]
    assert [r["email"] for r in fake_drip.records("subscriber")] == ["g@x.io"]


def test_on_segment_a_bad_message_is_skipped_and_its_good_neighbours_stored(
    client: FlaskClient, app: Flask
) -> None:
    batch = [IDENTIFY | {"messageId": "m-long", "userId": "u" * 201}, GOOD]
    response = client.post("/segment", json=batch, headers=bearer(WRITE_KEY))
    assert (response.status_code, answer(response)["accepted"]) == (200, 1)
    assert skips(app) == [("m-long", "invalid_message")]
    surrogate = b'[{"type":"identify","messageId":"m-s","userId":"\\ud800"}]'
    response = client.post("/segment", data=surrogate, headers=JSON | bearer(WRITE_KEY))
    assert response.status_code == 200  # was a 500
    assert skips(app)[-1] == ("m-s", "invalid_message")


def test_an_email_or_campaign_no_column_can_hold_is_a_problem_not_a_failure(
    client: FlaskClient, app: Flask, worker: Worker, fake_drip: FakeDrip
) -> None:
    long_email = IDENTIFY | {"messageId": "m-mail", "traits": {"email": "a" * 320 + "@x.io"}}
    long_campaign = GOOD | {"integrations": {"Drip": {"campaignId": "1" * 33}}}
    assert v1(client, {"batch": [long_email, long_campaign]}).status_code == 200
    drain(worker)
    assert skips(app) == [("m-mail", "missing_email")]
    assert [c.path for c in fake_drip.calls()] == [f"/v2/{ACCOUNT_ID}/subscribers"]


@pytest.mark.parametrize("text", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_not_json_and_nothing_is_stored(
    client: FlaskClient, app: Flask, text: str
) -> None:
    body = json.dumps({"batch": [GOOD | {"properties": {}}]}).replace("{}", f'{{"v": {text}}}')
    response = v1(client, body.encode())
    assert (response.status_code, answer(response)["error"]["code"]) == (400, "invalid_json")
    assert f"{text} is not a JSON number" in answer(response)["error"]["message"]
    assert rows(app, inbox) == []


@pytest.mark.parametrize("campaign", ["../workflows/4242", "1/pause#", "../../../v2/9999999/x"])
def test_a_campaign_id_from_a_message_never_steers_the_drip_path(
    client: FlaskClient, app: Flask, worker: Worker, fake_drip: FakeDrip, campaign: str
) -> None:
    message = GOOD | {"integrations": {"Drip": {"campaignId": campaign}}}
    response = client.post("/segment", json=message, headers=bearer(WRITE_KEY))
    assert answer(response)["problems"] == [
        {
            "messageId": "m-good",
            "field": "integrations.Drip.campaignId",
            "reason": "not a Drip campaign id (digits only)",
        }
    ]
    drain(worker)
    assert [c.path for c in fake_drip.calls()] == [f"/v2/{ACCOUNT_ID}/subscribers"]


def test_the_drip_client_refuses_a_campaign_id_that_is_not_digits(
    fake_drip: FakeDrip, config: Config
) -> None:
    client = DripClient(fake_drip.url, ACCOUNT_ID, config.drip_api_token)
    with pytest.raises(DeliveryError) as caught:
        client.send("campaign", {"email": "g@x.io"}, "1/pause#")
    assert (caught.value.permanent, caught.value.code) == (True, "bad_id")
    assert fake_drip.calls() == []


def test_a_row_no_sender_can_send_is_set_aside_and_the_rest_flow(
    client: FlaskClient, app: Flask, worker: Worker, fake_drip: FakeDrip
) -> None:
    with app.extensions["engine"].begin() as conn:
        odd = store_outbox.Pending("m-odd", "drip", "mystery", "odd", "odd@x.io", {})
        store_outbox.enqueue(conn, [odd], time.time())
    client.post("/segment", json=GOOD, headers=bearer(WRITE_KEY))
    for _ in range(SET_ASIDE_AFTER + 1):
        drain(worker)
        with app.extensions["engine"].begin() as conn:  # its backoff is over: due again
            conn.execute(outbox.update().values(available_at=0))
    (dead,) = [r for r in rows(app) if r.state == "dead"]
    assert (dead.message_id, dead.error_code, dead.attempts) == (
        "m-odd",
        "internal_error",
        SET_ASIDE_AFTER,
    )
    assert dead.error == "unexpected KeyError: 'mystery'"
    assert [r["email"] for r in fake_drip.records("subscriber")] == ["g@x.io"]


def test_a_small_compressed_flood_is_refused_and_nothing_is_stored(
    client: FlaskClient, app: Flask
) -> None:
    flood = gzip.compress(json.dumps({"batch": [{}] * 100_000}).encode())
    assert len(flood) < 1000
    response = v1(client, flood, V1 | {"Content-Encoding": "gzip"})
    assert response.status_code == 400
    assert answer(response)["error"] == {
        "code": "too_many_messages",
        "message": "A request may carry at most 2,500 messages, got 100,000; send smaller batches.",
        "details": {},
    }
    assert rows(app, inbox) == []


def test_repeated_skips_are_logged_as_one_line_with_a_count(
    client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    bad = [{"type": "identify", "messageId": f"m{i}"} for i in range(50)]
    with caplog.at_level(logging.INFO, logger="app.pipeline.segment"):
        client.post("/segment", json=bad, headers=bearer(WRITE_KEY))
    assert [r.getMessage() for r in caplog.records] == [
        "skipped 50 segment message(s): invalid_message "
        "(first: m0, userId needs a userId or an anonymousId)"
    ]


def test_a_deep_body_from_a_stranger_is_refused_before_it_is_parsed(client: FlaskClient) -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    stranger = JSON | basic("not-the-key")
    assert v1(client, deep, stranger).status_code == 401
    response = v1(client, deep, JSON)  # no key in the headers: the body must be read
    assert (response.status_code, answer(response)["error"]["message"]) == (
        400,
        "The body is nested too deeply to read.",
    )
    signed = JSON | {"X-Signature": "0" * 40}
    assert client.post("/segment", data=deep, headers=signed).status_code == 401
    not_utf8 = b'[{"a": "\xff"}]'
    assert client.post("/segment", data=not_utf8, headers=signed).status_code == 401
    assert v1(client, not_utf8, JSON).status_code == 400


def test_a_write_key_anywhere_in_a_message_is_never_kept(client: FlaskClient, app: Flask) -> None:
    nested = TRACK | {
        "context": {"writeKey": "k1", "traits": {"writeKey": "k2"}},
        "properties": {"list": [{"writeKey": "k3"}]},
    }
    v1(client, {"batch": [nested]})
    (row,) = rows(app, inbox)
    assert "writeKey" not in row.body and "k1" not in row.body
    client.post("/segment", json=nested | {"messageId": "m-2"}, headers=bearer(WRITE_KEY))
    payloads = json.dumps([r.payload for r in rows(app, received)])
    assert "writeKey" not in payloads


def test_a_segment_message_cannot_pre_empt_a_drip_webhook_by_its_id(
    client: FlaskClient, app: Flask, worker: Worker, fake_segment: FakeSegment
) -> None:
    webhook = {
        "event": "subscriber.opened_email",
        "data": {"account_id": ACCOUNT_ID, "subscriber": {"id": "s1", "email": "g@x.io"}},
        "occurred_at": "2026-11-26T10:00:00Z",
    }
    squatter = GOOD | {"messageId": event_id(webhook)}
    client.post("/segment", json=squatter, headers=bearer(WRITE_KEY))
    response = client.post(f"/drip/webhook?token={WEBHOOK_TOKEN}", json=webhook)
    assert "duplicate" not in answer(response)
    drain(worker)
    assert [m["event"] for m in fake_segment.messages()] == ["Email Opened"]


def test_signed_arrays_of_several_messages_are_counted(client: FlaskClient) -> None:
    def count() -> float:
        text = client.get("/metrics").get_data(as_text=True)
        line = next(x for x in text.splitlines() if x.startswith("bridge_signed_arrays_total"))
        return float(line.split()[-1])

    before = count()
    for batch in ([GOOD], [GOOD | {"messageId": "a"}, GOOD | {"messageId": "b"}]):
        raw = json.dumps(batch).encode()
        first = json.dumps(batch[0]).encode()
        headers = JSON | {"X-Signature": sign(SHARED_SECRET, first)}
        assert client.post("/segment", data=raw, headers=headers).status_code == 200
    assert count() - before == 1


def test_metrics_want_the_token_when_one_is_set(app: Flask) -> None:
    app.config["BRIDGE"] = app.config["BRIDGE"].with_overrides({"metrics_token": "m-secret"})
    client = app.test_client()
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers=bearer("wrong")).status_code == 401
    assert client.get("/metrics", headers=bearer("m-secret")).status_code == 200


def test_the_store_keeps_the_row_that_a_failed_column_would_have_refused(app: Flask) -> None:
    """Every field that reaches a column is checked first: the longest values the
    checks let through fit the columns (PostgreSQL enforces the lengths)."""
    longest = IDENTIFY | {
        "messageId": "m" * 200,
        "userId": "u" * 200,
        "anonymousId": "a" * 200,
        "traits": {"email": "e" * 300 + "@example.com"},
        "integrations": {"Drip": {"campaignId": "9" * 32}},
    }
    response = app.test_client().post("/segment", json=longest, headers=bearer(WRITE_KEY))
    assert (response.status_code, answer(response)["accepted"]) == (200, 1)
    with app.extensions["engine"].connect() as conn:
        kinds = conn.execute(sa.select(outbox.c.kind).order_by(outbox.c.id)).scalars().all()
    assert kinds == ["subscriber", "campaign"]


def _admin(app: Flask, **overrides: object) -> FlaskClient:
    settings = {"admin_password": "pw"} | overrides
    app.config["BRIDGE"] = app.config["BRIDGE"].with_overrides(settings)
    return app.test_client()


def test_the_dashboard_cannot_be_framed_by_another_site(app: Flask) -> None:
    response = _admin(app).get("/admin", auth=("admin", "pw"))
    assert response.status_code == 200
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Content-Security-Policy"] == "frame-ancestors 'none'"


@pytest.mark.parametrize(
    ("origin", "status"),
    [
        ("https://bridge.example.com", 404),  # ours: then the id is looked up (none here)
        ("http://bridge.example.com", 403),  # another scheme
        ("https://bridge.example.com:8443", 403),  # another port
        ("https://evil.example.com", 403),
    ],
)
def test_dashboard_actions_want_the_bridges_whole_origin(
    app: Flask, origin: str, status: int
) -> None:
    client = _admin(app, public_url="https://bridge.example.com")
    response = client.post(
        "/admin/dead-letters/7/replay",
        auth=("admin", "pw"),
        headers={"Origin": origin, "Host": "bridge.example.com"},
    )
    assert response.status_code == status


def test_an_unknown_dead_letter_is_404_even_past_the_id_range(app: Flask) -> None:
    client = _admin(app)
    for row_id in (7, 2**70):
        response = client.post(
            f"/admin/dead-letters/{row_id}/discard",
            auth=("admin", "pw"),
            headers={"Origin": "http://localhost"},
        )
        assert (response.status_code, answer(response)["error"]["code"]) == (404, "not_found")


@pytest.mark.parametrize("given", ["new-key", "old-key"])
def test_during_a_rotation_both_values_of_a_secret_are_accepted(app: Flask, given: str) -> None:
    rotating = {
        "bridge_write_key": "new-key, old-key",
        "segment_shared_secret": "new-secret,old-secret",
        "drip_webhook_token": "new-key,old-key",
    }
    app.config["BRIDGE"] = app.config["BRIDGE"].with_overrides(rotating)
    client = app.test_client()
    assert v1(client, {"batch": [GOOD]}, JSON | basic(given)).status_code == 200
    raw = json.dumps(GOOD | {"messageId": f"m-{given}"}).encode()
    secret = given.replace("key", "secret")
    signed = JSON | {"X-Signature": sign(secret, raw)}
    assert client.post("/segment", data=raw, headers=signed).status_code == 200
    subscriber = {"id": "s", "email": "g@x.io"}
    webhook = {"event": "subscriber.opened_email", "occurred_at": "2026-11-26T10:00:00Z",
               "data": {"account_id": ACCOUNT_ID, "subscriber": subscriber}}  # fmt: skip
    assert client.post(f"/drip/webhook?token={given}", json=webhook).status_code == 200
    assert v1(client, {"batch": [GOOD]}, JSON | basic("new-key,old-key")).status_code == 401


@pytest.mark.parametrize("path", ["/v1/batch", "/segment"])
def test_a_chunked_body_over_the_limit_is_refused_not_cut(
    client: FlaskClient, app: Flask, path: str
) -> None:
    """A chunked request has no Content-Length: its size is known only as it is read."""
    message = TRACK | {"properties": {"pad": "x" * 1000}}
    body = json.dumps({"batch": [message] * 600}).encode()  # about 640 KB
    response = client.post(
        path,
        input_stream=io.BytesIO(body),
        headers=V1 | bearer(WRITE_KEY) | {"Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert (response.status_code, answer(response)["error"]["code"]) == (413, "payload_too_large")
    assert rows(app, inbox) == [] and rows(app, received) == []


def test_a_drip_that_trickles_its_answer_is_cut_off_at_the_calls_timeout() -> None:
    """requests' timeout is per read: a server sending a byte every 0.2 s never trips it."""
    server = socket.create_server(("127.0.0.1", 0))
    sent = threading.Event()

    def trickle() -> None:
        conn, _ = server.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 100\r\n\r\n")  # fmt: skip
            with contextlib.suppress(OSError):
                for _ in range(100):  # 20 s in all, were it read to the end
                    conn.sendall(b" ")
                    time.sleep(0.2)
            sent.set()

    threading.Thread(target=trickle, daemon=True).start()
    client = DripClient(f"http://127.0.0.1:{server.getsockname()[1]}", ACCOUNT_ID, "t", 1.0)
    with pytest.raises(DeliveryError) as caught:
        client.send("subscriber", {"email": "g@x.io"})
    assert (caught.value.code, caught.value.message) == ("timeout", "Drip did not answer within 1s")
    assert not sent.is_set()  # cut off long before the server was done
    server.close()
