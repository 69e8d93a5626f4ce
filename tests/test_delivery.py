"""The worker against the fake Drip: exact bodies, retries, dead letters, pauses, order."""

from __future__ import annotations

import base64
import threading
import time
from typing import Any

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from app import __version__
from app.config import Config
from app.delivery.budget import shared_budgets
from app.delivery.drip_client import DripClient
from app.delivery.drip_sender import DripSender
from app.delivery.runner import create_worker
from app.delivery.worker import Worker
from app.simulators.drip import FakeDrip
from app.store.tables import outbox
from tests.conftest import ACCOUNT_ID, DRIP_TOKEN, WRITE_KEY, drain
from tests.helpers import (
    IDENTIFY,
    INVALID_EMAIL,
    TRACK,
    answer,
    arrivals_over,
    bearer,
    dumps,
    metrics,
    rows,
)

HEADERS = {"Content-Type": "application/json"} | bearer(WRITE_KEY)


def post(client: FlaskClient, *messages: dict[str, Any]) -> None:
    response = client.post("/segment", data=dumps(list(messages)), headers=HEADERS)
    assert response.status_code == 200, response.json


def make_due(app: Flask) -> None:
    """Skip the backoff: every pending row becomes due now."""
    with app.extensions["engine"].begin() as conn:
        conn.execute(outbox.update().where(outbox.c.state == "pending").values(available_at=0))


def posts(fake: FakeDrip) -> list[tuple[str, Any]]:
    return [(c.path, c.json) for c in fake.calls() if c.method == "POST" and c.status < 300]


def test_identify_and_track_reach_drip_with_the_exact_bodies(
    client: FlaskClient, worker: Worker, fake_drip: FakeDrip
) -> None:
    post(client, IDENTIFY, TRACK | {"userId": "u1"})
    drain(worker)
    assert posts(fake_drip) == [
        (
            f"/v2/{ACCOUNT_ID}/subscribers",
            {
                "subscribers": [
                    {"email": "ada@example.com", "user_id": "u1", "custom_fields": {"plan": "pro"}}
                ]
            },
        ),
        (
            f"/v2/{ACCOUNT_ID}/events",
            {
                "events": [
                    {
                        "email": "ada@example.com",
                        "action": "Signed Up",
                        "occurred_at": "2026-11-26T10:00:01Z",
                        "properties": {"plan": "pro"},
                    }
                ]
            },
        ),
    ]


def test_every_call_carries_basic_auth_json_and_a_user_agent(
    client: FlaskClient, worker: Worker, fake_drip: FakeDrip
) -> None:
    post(client, IDENTIFY)
    drain(worker)
    (call,) = fake_drip.calls()
    token = base64.b64encode(f"{DRIP_TOKEN}:".encode()).decode()
    assert call.headers["Authorization"] == f"Basic {token}"
    assert call.headers["Content-Type"] == "application/json"
    assert call.headers["User-Agent"].startswith(f"drip-bridge/{__version__}")


def test_a_5xx_is_retried_later_and_then_delivered(
    client: FlaskClient, app: Flask, worker: Worker, fake_drip: FakeDrip
) -> None:
    fake_drip.fail_next(1, status=503)
    post(client, IDENTIFY)
    drain(worker)
    (row,) = rows(app)
    assert (row.state, row.attempts) == ("pending", 1)
    assert row.available_at > time.time()
    make_due(app)
    drain(worker)
    assert rows(app)[0].state == "done"
    assert [c.status for c in fake_drip.calls()] == [503, 200]


def test_retry_after_from_a_429_is_honoured(
    client: FlaskClient, app: Flask, worker: Worker, fake_drip: FakeDrip
) -> None:
    fake_drip.fail_next(1, status=429, retry_after=120)
    post(client, IDENTIFY)
    before = time.time()
    drain(worker)
    (row,) = rows(app)
    assert row.state == "pending"
    assert before + 119 <= row.available_at <= time.time() + 121


def test_a_422_is_dead_lettered_with_drips_code_and_message(
    client: FlaskClient, app: Flask, worker: Worker, fake_drip: FakeDrip
) -> None:
    fake_drip.fail_next(1, status=422, body=INVALID_EMAIL)
    post(client, IDENTIFY)
    drain(worker)
    (row,) = rows(app)
    assert (row.state, row.error_code, row.error) == (
        "dead",
        "email_error",
        "Email is invalid (email)",
    )


def test_a_timeout_is_retried(
    client: FlaskClient, app: Flask, fake_drip: FakeDrip, config: Config
) -> None:
    drip = DripClient(config.drip_api_url, config.drip_account_id, config.drip_api_token, 0.5)
    worker = Worker(app.extensions["engine"], [DripSender(drip, *shared_budgets(app))])
    fake_drip.hang()
    try:
        post(client, IDENTIFY)
        drain(worker)
    finally:
        fake_drip.release()
    (row,) = rows(app)
    assert (row.state, row.error) == ("pending", "Drip did not answer within 0.5s")


def test_a_revoked_token_pauses_delivery_without_dead_letters_and_resumes(
    client: FlaskClient, app: Flask, worker: Worker, fake_drip: FakeDrip
) -> None:
    fake_drip.revoke_token()
    post(client, IDENTIFY, TRACK)
    drain(worker)
    assert {r.state for r in rows(app)} == {"pending"}
    assert "drip" in worker.paused
    assert answer(client.get("/readyz"))["reason"] == (
        "delivery paused: drip refused the credentials (see /admin)"
    )  # Drip's own words stay off this unauthenticated page
    fake_drip.restore_token()
    worker.paused["drip"].until = 0  # the pause is over: the next step probes GET /v2/user
    make_due(app)
    drain(worker)
    assert [r.state for r in rows(app)] == ["done", "done"]
    assert "drip" not in worker.paused
    assert any(c.path == "/v2/user" and c.status == 200 for c in fake_drip.calls())


def test_a_persons_later_update_waits_for_the_earlier_one(
    client: FlaskClient, app: Flask, worker: Worker, fake_drip: FakeDrip
) -> None:
    fake_drip.fail_next(1, status=500)
    post(client, IDENTIFY, TRACK)
    drain(worker)
    assert [r.state for r in rows(app)] == ["pending", "pending"]
    assert len(fake_drip.calls()) == 1  # the track did not overtake the failed identify
    make_due(app)
    drain(worker)
    assert [c.path.rsplit("/", 1)[1] for c in fake_drip.calls()] == [
        "subscribers",
        "subscribers",
        "events",
    ]


def test_work_held_by_a_dead_worker_is_taken_up_after_the_lease(
    client: FlaskClient, app: Flask, fake_drip: FakeDrip
) -> None:
    from app.store import claims

    post(client, IDENTIFY)
    with app.extensions["engine"].begin() as conn:
        assert len(claims.claim(conn, "drip", 10, time.time(), lease=60)) == 1  # then it "dies"
    worker = create_worker(app)
    assert not worker.step()  # still leased
    with app.extensions["engine"].begin() as conn:
        conn.execute(outbox.update().values(available_at=sa.literal(time.time() - 1)))
    drain(worker)
    assert rows(app)[0].state == "done"
    assert rows(app)[0].attempts == 2


def test_several_workers_never_send_a_row_twice(
    client: FlaskClient, app: Flask, fake_drip: FakeDrip
) -> None:
    messages = [
        IDENTIFY
        | {"messageId": f"m{i}", "userId": f"u{i}", "traits": {"email": f"p{i}@example.com"}}
        for i in range(120)
    ]
    post(client, *messages)
    arrivals_over(app)
    workers = [create_worker(app) for _ in range(4)]
    threads = [threading.Thread(target=drain, args=(w, 500)) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    emails = [r["email"] for r in fake_drip.records("subscriber")]
    assert sorted(emails) == sorted(f"p{i}@example.com" for i in range(120))
    assert {r.state for r in rows(app)} == {"done"}


def test_metrics_show_backlog_dead_letters_and_the_budget_left(
    client: FlaskClient, app: Flask, worker: Worker, fake_drip: FakeDrip
) -> None:
    fake_drip.fail_next(1, status=422, body=INVALID_EMAIL)
    before = metrics(client, source="segment")
    post(client, IDENTIFY, TRACK | {"userId": "u2", "properties": {"email": "b@example.com"}})
    post(client, IDENTIFY | {"messageId": "m-later", "userId": "u3", "traits": {"email": "c@x.io"}})
    worker.step()  # the first call is refused, the other two go out
    text = client.get("/metrics").get_data(as_text=True)
    assert 'bridge_dead_letters_waiting{destination="drip"} 1.0' in text
    assert 'bridge_rate_budget_remaining{budget="individual"} 3597.0' in text
    assert 'bridge_rate_budget_remaining{budget="batch"} 50.0' in text
    accepted = "bridge_messages_accepted_total"
    assert metrics(client, source="segment")[accepted] - before.get(accepted, 0) == 3


def test_a_change_of_email_stays_in_order_with_the_persons_other_updates(
    client: FlaskClient, app: Flask, worker: Worker, fake_drip: FakeDrip
) -> None:
    renamed = IDENTIFY | {"messageId": "m-rename", "traits": {"email": "ada@lovelace.io"}}
    fake_drip.fail_next(1, status=500)
    post(client, IDENTIFY, renamed, TRACK)
    drain(worker)
    make_due(app)
    drain(worker)
    sent = [(c.path.rsplit("/", 1)[1], c.json) for c in fake_drip.calls() if c.status < 300]
    assert [(path, next(iter(body.values()))[0]["email"]) for path, body in sent] == [
        ("subscribers", "ada@example.com"),
        ("subscribers", "ada@example.com"),  # renamed by new_email, after the first upsert
        ("events", "ada@lovelace.io"),
    ]
    assert sent[1][1]["subscribers"][0]["new_email"] == "ada@lovelace.io"
