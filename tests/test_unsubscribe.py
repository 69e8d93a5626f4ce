"""Unsubscribes from Segment: `unsubscribed: true` unsubscribes in Drip; nothing resubscribes."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from app.config import Config, Rate
from app.delivery.budget import dispose_budgets
from app.delivery.runner import create_worker
from app.delivery.worker import Worker
from app.factory import create_app
from app.mapping.to_drip import map_message
from app.mapping.types import DripCall, Options, Problem
from app.simulators.drip import FakeDrip
from app.store import upgrade
from tests.conftest import ACCOUNT_ID, WEBHOOK_TOKEN, WRITE_KEY, drain
from tests.helpers import answer, arrivals_over, bearer, dumps

HEADERS = {"Content-Type": "application/json"} | bearer(WRITE_KEY)
CAMPAIGN = "1111"  # a campaign the fake Drip has
KEPT = "ignored: the person unsubscribed from all mailings and the bridge never resubscribes"


def identify(n: int, **traits: Any) -> dict[str, Any]:
    return {"type": "identify", "messageId": f"m-{n}", "userId": "u-ada",
            "traits": {"email": "ada@example.com", **traits}}  # fmt: skip


def post(client: FlaskClient, body: Any) -> Any:
    response = client.post("/segment", data=dumps(body), headers=HEADERS)
    assert response.status_code == 200, response.data
    return answer(response)


def with_campaign(config: Config) -> Flask:
    app = create_app(config.with_overrides({"drip_campaign_id": CAMPAIGN}))
    upgrade(app.extensions["engine"])
    return app


def test_an_unsubscribe_reaches_drip_and_a_later_identify_does_not_resubscribe(
    config: Config, fake_drip: FakeDrip
) -> None:
    app = with_campaign(config)
    client, worker = app.test_client(), create_worker(app)
    try:
        post(client, identify(1, unsubscribed=True))
        drain(worker)
        assert [(c.method, c.path, c.json) for c in fake_drip.calls()] == [
            ("POST", f"/v2/{ACCOUNT_ID}/subscribers",
             {"subscribers": [{"email": "ada@example.com", "user_id": "u-ada"}]}),
            ("POST", f"/v2/{ACCOUNT_ID}/subscribers/ada@example.com/unsubscribe_all", None),
        ]  # fmt: skip
        assert fake_drip.subscriber("ada@example.com")["status"] == "unsubscribed"  # type: ignore[index]

        later = post(client, identify(2, status="active", plan="pro"))
        assert later["problems"] == [
            {"messageId": "m-2", "field": "traits.status", "reason": KEPT},
            {"messageId": "m-2", "field": f"campaign {CAMPAIGN}", "reason": KEPT},
        ]
        drain(worker)
        assert fake_drip.calls()[-1].json == {"subscribers": [
            {"email": "ada@example.com", "user_id": "u-ada", "custom_fields": {"plan": "pro"}}
        ]}  # fmt: skip
        assert fake_drip.records("campaign") == []
        assert fake_drip.subscriber("ada@example.com")["status"] == "unsubscribed"  # type: ignore[index]
    finally:
        dispose_budgets(app)
        app.extensions["engine"].dispose()


def test_an_unsubscribe_in_drip_is_remembered_too(
    client: FlaskClient, worker: Worker, fake_drip: FakeDrip
) -> None:
    envelope = {
        "event": "subscriber.unsubscribed_all",
        "data": {"account_id": ACCOUNT_ID, "properties": {},
                 "subscriber": {"id": "z1", "email": "Ada@Example.com", "status": "unsubscribed"}},
        "occurred_at": "2026-11-26T10:00:00Z",
    }  # fmt: skip
    assert client.post(f"/drip/webhook?token={WEBHOOK_TOKEN}", json=envelope).status_code == 200
    later = post(client, identify(3, status="active"))
    assert later["problems"] == [{"messageId": "m-3", "field": "traits.status", "reason": KEPT}]
    drain(worker)
    assert fake_drip.records("subscriber") == [{"email": "ada@example.com", "user_id": "u-ada"}]


def test_under_backlog_unsubscribes_go_through_drips_batch_endpoint(
    client: FlaskClient, app: Flask, fake_drip: FakeDrip
) -> None:
    dispose_budgets(app)
    app.config["BRIDGE"] = app.config["BRIDGE"].with_overrides(
        {"drip_rate_limit": Rate(5, 60), "drip_batch_rate_limit": Rate(2, 60)}
    )  # a batch as soon as 3 rows of a kind are due
    people = [
        {"type": "identify", "messageId": f"m{i}", "userId": f"u{i}",
         "traits": {"email": f"p{i}@example.com", "unsubscribed": "true"}}
        for i in range(10)
    ]  # fmt: skip
    post(client, people)
    arrivals_over(app)
    drain(create_worker(app))
    batches = [c for c in fake_drip.calls() if c.path.endswith("/unsubscribes/batches")]
    alone = [
        c.path.split("/")[-2] for c in fake_drip.calls() if c.path.endswith("/unsubscribe_all")
    ]
    (batch,) = batches  # the backlog went through Drip's batch endpoint, beside single calls
    assert (batch.method, batch.status, list(batch.json)) == ("POST", 204, ["batches"])
    in_batch = [s["email"] for s in batch.json["batches"][0]["subscribers"]]
    assert len(in_batch) >= 3
    assert sorted(in_batch + alone) == sorted(f"p{i}@example.com" for i in range(10))  # once each
    statuses = {fake_drip.subscriber(f"p{i}@example.com")["status"] for i in range(10)}  # type: ignore[index]
    assert statuses == {"unsubscribed"}


def test_the_mapping_unsubscribes_and_a_page_may_not() -> None:
    message = identify(4, unsubscribed=True, status="active")
    server = map_message(message, {}, Options(campaign_id=CAMPAIGN))
    assert server.calls == [
        DripCall("subscriber", "ada@example.com", {"email": "ada@example.com", "user_id": "u-ada"}),
        DripCall("unsubscribe", "ada@example.com", {"email": "ada@example.com"}),
    ]
    page = map_message(message, {}, Options(campaign_id=CAMPAIGN, browser=True))
    assert [c.kind for c in page.calls] == ["subscriber", "campaign"]
    assert Problem("traits.unsubscribed", "ignored: BROWSER_WRITE_KEY is public, so a page "
                   "may not unsubscribe anyone") in page.problems  # fmt: skip
    stays = map_message(identify(5, unsubscribed=False), {}, Options())
    assert stays.calls == [
        DripCall("subscriber", "ada@example.com", {"email": "ada@example.com", "user_id": "u-ada"})
    ]
