"""The Drip scheduler: one by one at low volume, batches under backlog, within both budgets."""

from __future__ import annotations

import time
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from app.config import Rate
from app.delivery.budget import dispose_budgets
from app.delivery.drip_sender import DripSender
from app.delivery.runner import create_worker
from app.simulators.drip import FakeDrip
from app.store import outbox as store
from tests.conftest import ACCOUNT_ID, WRITE_KEY, drain
from tests.helpers import bearer, dumps, rows

HEADERS = {"Content-Type": "application/json"} | bearer(WRITE_KEY)


def identifies(n: int, start: int = 0) -> list[dict[str, Any]]:
    return [
        {"type": "identify", "messageId": f"m{i}", "userId": f"u{i}",
         "traits": {"email": f"p{i}@example.com"}}
        for i in range(start, start + n)
    ]  # fmt: skip


def compressed(app: Flask, individual: Rate, batch: Rate) -> Flask:
    dispose_budgets(app)  # budgets are made once per app: make them again with these rates
    app.config["BRIDGE"] = app.config["BRIDGE"].with_overrides(
        {"drip_rate_limit": individual, "drip_batch_rate_limit": batch}
    )
    return app


def paths(fake: FakeDrip) -> list[str]:
    return [c.path.removeprefix(f"/v2/{ACCOUNT_ID}/") for c in fake.calls()]


def test_a_small_backlog_goes_out_one_by_one(
    client: FlaskClient, app: Flask, fake_drip: FakeDrip
) -> None:
    client.post("/segment", data=dumps(identifies(3)), headers=HEADERS)
    drain(create_worker(app))
    assert paths(fake_drip) == ["subscribers"] * 3


def test_a_backlog_over_the_individual_budget_goes_through_the_batch_endpoint(
    client: FlaskClient, app: Flask, fake_drip: FakeDrip
) -> None:
    worker = create_worker(compressed(app, Rate(5, 60), Rate(2, 60)))  # batch when >= 3 due
    client.post("/segment", data=dumps(identifies(50)), headers=HEADERS)
    worker.step()
    assert paths(fake_drip) == ["subscribers/batches"]
    (call,) = fake_drip.calls()
    assert call.json["batches"][0]["subscribers"][:2] == [
        {"email": "p0@example.com", "user_id": "u0"},
        {"email": "p1@example.com", "user_id": "u1"},
    ]
    assert len(fake_drip.records("subscriber")) == 50
    assert {r.state for r in rows(app)} == {"done"}


def test_a_record_drip_would_refuse_is_dead_lettered_instead_of_vanishing_in_a_batch(
    client: FlaskClient, app: Flask, fake_drip: FakeDrip
) -> None:
    worker = create_worker(compressed(app, Rate(5, 60), Rate(2, 60)))
    client.post("/segment", data=dumps(identifies(10)), headers=HEADERS)
    with app.extensions["engine"].begin() as conn:
        bad = {"email": "not-an-address"}
        store.enqueue(
            conn,
            [store.Pending("m-bad", "drip", "subscriber", "broken", "broken", bad)],
            time.time(),
        )
    worker.step()
    dead = [r for r in rows(app) if r.state == "dead"]
    assert [(r.person, r.error_code, r.error) for r in dead] == [
        ("broken", "invalid_record", "email is missing or is not an email address")
    ]
    assert len(fake_drip.records("subscriber")) == 10
    assert fake_drip.stats()["dropped"] == 0


def test_when_the_individual_budget_is_spent_the_worker_waits_without_calls(
    client: FlaskClient, app: Flask, fake_drip: FakeDrip
) -> None:
    worker = create_worker(compressed(app, Rate(2, 60), Rate(1, 3600)))  # batch when >= 30
    client.post("/segment", data=dumps(identifies(5)), headers=HEADERS)
    assert worker.step() is True
    assert worker.step() is False  # budget spent: nothing claimed, the loop may sleep
    assert len(fake_drip.calls()) == 2
    assert [r.state for r in rows(app)].count("pending") == 3
    assert {r.attempts for r in rows(app) if r.state == "pending"} == {0}


def test_a_429_over_the_budget_closes_it_until_the_window_turns(
    client: FlaskClient, app: Flask, fake_drip: FakeDrip
) -> None:
    worker = create_worker(app)
    fake_drip.fail_next(1, status=429, retry_after=30)
    client.post("/segment", data=dumps(identifies(3)), headers=HEADERS)
    worker.step()
    assert len(fake_drip.calls()) == 1  # the other two were not tried against a closed budget
    sender = worker.senders[0]
    assert isinstance(sender, DripSender)
    assert sender.single_budget.suspended_until > time.time() + 29
    assert worker.step() is False
