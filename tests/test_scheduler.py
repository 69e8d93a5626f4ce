"""The Drip scheduler: one by one at low volume, batches under backlog, within both budgets."""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from app.config import Rate
from app.dashboard import report
from app.delivery.budget import dispose_budgets
from app.delivery.drip_sender import DripSender
from app.delivery.runner import create_worker
from app.simulators.drip import FakeDrip
from app.simulators.drip_people import People
from app.store import claims, outbox
from tests.conftest import ACCOUNT_ID, WRITE_KEY, drain
from tests.helpers import arrivals_over, basic, bearer, dumps, metrics, rows

JSON = {"Content-Type": "application/json"}
HEADERS = JSON | bearer(WRITE_KEY)


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


def post_all(client: FlaskClient, messages: list[dict[str, Any]]) -> None:
    """Post to /segment; then nothing more arrives (the scheduler waits for no more)."""
    client.post("/segment", data=dumps(messages), headers=HEADERS)
    arrivals_over(client.application)


def test_a_small_backlog_goes_out_one_by_one(
    client: FlaskClient, app: Flask, fake_drip: FakeDrip
) -> None:
    post_all(client, identifies(3))
    drain(create_worker(app))
    assert paths(fake_drip) == ["subscribers"] * 3


def test_a_backlog_over_the_individual_budget_goes_through_the_batch_endpoint(
    client: FlaskClient, app: Flask, fake_drip: FakeDrip
) -> None:
    worker = create_worker(compressed(app, Rate(5, 60), Rate(2, 60)))  # batch when >= 3 due
    post_all(client, identifies(50))
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
    post_all(client, identifies(10))
    with app.extensions["engine"].begin() as conn:
        bad = {"email": "not-an-address"}
        outbox.enqueue(
            conn,
            [outbox.Pending("m-bad", "drip", "subscriber", "broken", "broken", bad)],
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
    post_all(client, identifies(5))
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
    post_all(client, identifies(3))
    worker.step()
    assert len(fake_drip.calls()) == 1  # the other two were not tried against a closed budget
    sender = worker.senders[0]
    assert isinstance(sender, DripSender)
    assert sender.single_budget.suspended_until > time.time() + 29
    assert worker.step() is False


def tracks(people: int, each: int) -> list[dict[str, Any]]:
    return [
        {"type": "track", "messageId": f"t{p}-{n}", "userId": f"u{p}", "event": "Viewed",
         "properties": {"email": f"p{p}@example.com", "n": n}}
        for n in range(each) for p in range(people)
    ]  # fmt: skip


def engage(people: int, audiences: list[tuple[str, bool]]) -> list[dict[str, Any]]:
    """Engage's audience identifies, audience by audience, as a sync sends them."""
    return [
        {"type": "identify", "messageId": f"{key}-{member}-{p}", "userId": f"u{p}",
         "traits": {"email": f"p{p}@example.com", key: member},
         "context": {"personas": {"computation_key": key, "computation_class": "audience"}}}
        for key, member in audiences for p in range(people)
    ]  # fmt: skip


def one_by_one(app: Flask) -> People:
    """What Drip holds once every stored subscriber record is applied on its own, in order."""
    people = People(ACCOUNT_ID)
    for row in rows(app):
        if row.kind == "subscriber":
            people.upsert(row.body)
    return people


def same_person(a: dict[str, Any] | None, b: dict[str, Any] | None) -> bool:
    drop = {"created_at", "id", "href"}  # a clock reading and the fake's id counter
    assert a is not None and b is not None
    return {k: v for k, v in a.items() if k not in drop} == {
        k: v for k, v in b.items() if k not in drop
    }


def test_a_token_is_in_hand_before_any_row_is_claimed(
    client: FlaskClient, app: Flask, fake_drip: FakeDrip
) -> None:
    worker = create_worker(compressed(app, Rate(1, 3600), Rate(1, 3600)))  # batch when >= 2
    post_all(client, identifies(3))
    worker.step()  # the only batch token
    post_all(client, identifies(3, start=10))
    worker.step()  # no batch token: nothing claimed for a batch; the only single token
    assert worker.step() is False
    assert paths(fake_drip) == ["subscribers/batches", "subscribers"]
    pending = [r for r in rows(app) if r.state == "pending"]
    assert [(r.attempts, r.available_at == r.received_at) for r in pending] == [(0, True)] * 2


def test_a_batch_carries_several_events_of_one_person_in_order(
    client: FlaskClient, app: Flask, fake_drip: FakeDrip
) -> None:
    worker = create_worker(compressed(app, Rate(5, 60), Rate(2, 60)))
    post_all(client, tracks(3, 20))
    worker.step()
    batch = [c for c in fake_drip.calls() if c.path.endswith("/events/batches")]
    (call,) = batch
    events = call.json["batches"][0]["events"]
    assert len(events) == 60
    for p in range(3):
        mine = [e["properties"]["n"] for e in events if e["email"] == f"p{p}@example.com"]
        assert mine == list(range(20))


def claim_runs(app: Flask, kind: str, now: float, *, people: int, rows: int) -> list[Any]:
    """Lease what a batch call of `kind` would carry, as the worker's batch claim does."""
    with app.extensions["engine"].begin() as conn:
        found = claims.run_candidates(conn, "drip", kind, now, people=people, rows=rows)
        return claims.lease(conn, [c.id for c in found], now, 60)


def test_a_batch_takes_whole_runs_so_a_batch_claimed_while_it_is_in_flight_is_full_too(
    client: FlaskClient, app: Flask
) -> None:
    post_all(client, tracks(4, 10))  # interleaved in time
    now = time.time()
    first = claim_runs(app, "event", now, people=1000, rows=20)
    second = claim_runs(app, "event", now, people=1000, rows=20)  # another process, meanwhile
    third = claim_runs(app, "event", now, people=1000, rows=20)
    assert [r.message_id for r in first] == [f"t{p}-{n}" for n in range(10) for p in (0, 1)]
    assert [r.message_id for r in second] == [f"t{p}-{n}" for n in range(10) for p in (2, 3)]
    assert third == []


def test_a_run_read_past_the_rows_scanned_stops_before_the_persons_next_other_kind(
    client: FlaskClient, app: Flask
) -> None:
    before, after = tracks(4, 6), tracks(4, 10)[24:]  # n 0-5, then n 6-9
    post_all(client, [*before, *identifies(1), *after])
    now = time.time()
    first = claim_runs(app, "event", now, people=1, rows=8)  # scans 16 rows: u0's first 4
    assert [r.message_id for r in first] == [f"t0-{n}" for n in range(6)]  # then u0's identify
    second = claim_runs(app, "event", now, people=1, rows=8)
    assert [r.message_id for r in second] == [f"t1-{n}" for n in range(8)]


def test_a_persons_subscriber_updates_are_never_split_across_two_calls_in_flight(
    client: FlaskClient, app: Flask
) -> None:
    post_all(client, engage(2, [("a", True), ("b", True), ("c", True)]))
    now = time.time()
    first = claim_runs(app, "subscriber", now, people=1, rows=2)
    assert [r.message_id for r in first] == ["a-True-0", "b-True-0"]  # u0's first two
    second = claim_runs(app, "subscriber", now, people=10, rows=100)  # while those are in flight
    with app.extensions["engine"].begin() as conn:
        single = claims.claim(conn, "drip", 10, now, admit=lambda candidates: True)
    assert [r.message_id for r in second] == ["a-True-1", "b-True-1", "c-True-1"]
    assert single == []  # u0's third update waits for the two in flight; u1's are claimed


def test_waiting_updates_of_a_person_go_as_one_record_with_the_same_end_state(
    client: FlaskClient, app: Flask, fake_drip: FakeDrip
) -> None:
    worker = create_worker(compressed(app, Rate(1, 60), Rate(1, 60)))
    audiences = [("vip", True), ("churn_risk", True), ("vip", False)]
    post_all(client, engage(40, audiences))
    before = metrics(client)
    worker.step()
    (batch,) = [c for c in fake_drip.calls() if c.path.endswith("/subscribers/batches")]
    records = batch.json["batches"][0]["subscribers"]
    assert len(records) == 40  # 120 identifies, one record a person
    assert records[0] == {"email": "p0@example.com", "user_id": "u0",
                          "custom_fields": {"vip": False, "churn_risk": True},
                          "tags": ["churn_risk"], "remove_tags": ["vip"]}  # fmt: skip
    expected = one_by_one(app)
    for p in range(40):
        email = f"p{p}@example.com"
        assert same_person(fake_drip.subscriber(email), expected.find(email))
    after = metrics(client)
    assert (
        after["bridge_messages_merged_total"] - before.get("bridge_messages_merged_total", 0) == 120
    )
    saved = after["bridge_drip_calls_saved_total"] - before.get("bridge_drip_calls_saved_total", 0)
    assert saved == 80
    with app.extensions["engine"].connect() as conn:
        assert report.gather(conn, time.time())["merged"] == 120
        assert report.gather(conn, time.time())["saved"] == 80


def test_a_campaign_subscription_still_follows_its_upsert(
    client: FlaskClient, app: Flask, fake_drip: FakeDrip
) -> None:
    app = compressed(app, Rate(200, 60), Rate(2, 60))  # batch when >= 50
    app.config["BRIDGE"] = app.config["BRIDGE"].with_overrides({"drip_campaign_id": "1111"})
    worker = create_worker(app)
    audiences = [("vip", True), ("churn_risk", True), ("vip", False)]
    post_all(client, engage(100, audiences))
    drain(worker)
    for p in range(100):
        email = f"p{p}@example.com"
        mine = [path for path, emails in sent(fake_drip) if email in emails]
        assert mine == [
            "subscribers/batches",  # entering "vip"
            "campaigns/1111/subscribers",  # then the campaign, after that upsert
            "subscribers/batches",  # then "churn_risk" and leaving "vip", merged
        ]
    expected = one_by_one(app)
    for p in range(100):
        email = f"p{p}@example.com"
        assert same_person(fake_drip.subscriber(email), expected.find(email))
    assert len(fake_drip.records("campaign")) == 100


def sent(fake: FakeDrip) -> list[tuple[str, set[str]]]:
    """Each call's path and the emails of its records."""
    out = []
    for call in fake.calls():
        body = call.json["batches"][0] if "batches" in call.json else call.json
        records = next(iter(body.values()))
        out.append((call.path.removeprefix(f"/v2/{ACCOUNT_ID}/"), {r["email"] for r in records}))
    return out


def test_with_drip_coalesce_off_every_update_is_its_own_record(
    client: FlaskClient, app: Flask, fake_drip: FakeDrip
) -> None:
    app = compressed(app, Rate(1, 60), Rate(1, 60))
    app.config["BRIDGE"] = app.config["BRIDGE"].with_overrides({"drip_coalesce": False})
    worker = create_worker(app)
    post_all(client, engage(10, [("vip", True), ("vip", False)]))
    worker.step()
    (batch,) = [c for c in fake_drip.calls() if c.path.endswith("/subscribers/batches")]
    records = batch.json["batches"][0]["subscribers"]
    assert len(records) == 20  # each person's two updates, in order, in one call
    mine = [r for r in records if r["email"] == "p0@example.com"]
    assert [(r.get("tags"), r.get("remove_tags")) for r in mine] == [
        (["vip"], None),
        (None, ["vip"]),
    ]
    expected = one_by_one(app)
    assert same_person(fake_drip.subscriber("p0@example.com"), expected.find("p0@example.com"))
    with app.extensions["engine"].connect() as conn:
        assert report.gather(conn, time.time())["merged"] == 0


def test_while_requests_arrive_every_process_holds_subscriber_updates_back(
    client: FlaskClient, app: Flask, fake_drip: FakeDrip
) -> None:
    app = compressed(app, Rate(5, 60), Rate(2, 60))  # a backlog from 3 rows
    mapping, other = create_worker(app), create_worker(app)
    batch = {"batch": engage(50, [("vip", True)])}
    client.post("/v1/batch", data=dumps(batch), headers=JSON | basic(WRITE_KEY))
    mapping.step()  # maps the request, then holds the updates back: more may come
    other.step()  # mapped nothing itself, and holds them back all the same
    assert fake_drip.calls() == []
    assert {(r.state, r.attempts) for r in rows(app)} == {("pending", 0)}
    arrivals_over(app)
    other.step()
    assert paths(fake_drip) == ["subscribers/batches"]
    assert len(fake_drip.records("subscriber")) == 50


def test_while_requests_arrive_a_waiting_subscriber_update_holds_back_no_one_else(
    client: FlaskClient, app: Flask, fake_drip: FakeDrip
) -> None:
    # The one-by-one lanes took the oldest row and, finding it a subscriber update that
    # waits for more, claimed nothing at all: under traffic that never stops they sent
    # one row a window of Drip's 60 (bench soak: 12 a window).
    app = compressed(app, Rate(5, 60), Rate(2, 60))  # a backlog from 3 rows
    tracks = [{"type": "track", "messageId": f"t{i}", "userId": f"t{i}", "event": "Viewed",
               "properties": {"email": f"t{i}@example.com"}} for i in range(3)]  # fmt: skip
    client.post("/segment", data=dumps([*identifies(1), *tracks]), headers=HEADERS)
    create_worker(app).step()
    assert paths(fake_drip) == ["events"] * 3
    assert [(r.kind, r.state) for r in rows(app)] == [("subscriber", "pending")] + [
        ("event", "done")
    ] * 3
    arrivals_over(app)
    create_worker(app).step()
    assert paths(fake_drip) == ["events"] * 3 + ["subscribers"]


def test_at_low_volume_nothing_waits_and_nothing_is_merged(
    client: FlaskClient, app: Flask, fake_drip: FakeDrip
) -> None:
    post_all(client, engage(1, [("vip", True), ("a", True), ("vip", False)]))
    drain(create_worker(app))
    assert paths(fake_drip) == ["subscribers"] * 3


def test_several_processes_make_one_decision_per_token(
    client: FlaskClient, app: Flask, fake_drip: FakeDrip
) -> None:
    app = compressed(app, Rate(1, 3600), Rate(1, 3600))
    workers = [create_worker(app) for _ in range(4)]
    post_all(client, identifies(1200))
    threads = [threading.Thread(target=w.step) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(paths(fake_drip)) == ["subscribers", "subscribers/batches"]  # one token each
    assert len(fake_drip.records("subscriber")) == 1001
    assert Counter((r.state, r.attempts) for r in rows(app)) == {
        ("done", 1): 1001,
        ("pending", 0): 199,
    }
