"""DATA_RETENTION: what is older is pruned, in slices; what waits or is dead stays."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from app.config import Config, ConfigError
from app.delivery import worker as worker_module
from app.delivery.runner import create_worker
from app.simulators.drip import FakeDrip
from app.store import dead_letters, outbox, people, received, retention, workers
from app.store.tables import campaign_members, identities
from app.store.tables import outbox as outbox_table
from app.store.tables import received as received_table
from app.store.tables import skipped as skipped_table
from app.store.tables import workers as workers_table
from tests.conftest import WRITE_KEY, drain
from tests.helpers import IDENTIFY, INVALID_EMAIL, bearer, rows


@pytest.mark.parametrize(
    ("value", "seconds"), [("30d", 2_592_000.0), ("12h", 43_200.0), ("90m", 5400.0), ("20s", 20.0)]
)
def test_data_retention_reads_days_hours_minutes_and_seconds(value: str, seconds: float) -> None:
    env = {"DRIP_ACCOUNT_ID": "1234567", "DRIP_API_TOKEN": "t", "DATA_RETENTION": value}
    assert Config.from_env(env).data_retention == seconds


@pytest.mark.parametrize("value", ["30", "0d", "1w", "-5h", "2.5h"])
def test_a_bad_retention_names_the_variable(value: str) -> None:
    env = {"DRIP_ACCOUNT_ID": "1234567", "DRIP_API_TOKEN": "t", "DATA_RETENTION": value}
    with pytest.raises(ConfigError, match="DATA_RETENTION must look like"):
        Config.from_env(env)


def _counts(app: Flask) -> dict[str, int]:
    tables = (outbox_table, received_table, skipped_table, identities, campaign_members,
              workers_table)  # fmt: skip
    with app.extensions["engine"].connect() as conn:
        return {
            t.name: conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
            for t in tables
        }


def test_only_what_waits_and_the_dead_letters_outlive_the_retention(
    client: FlaskClient, app: Flask, fake_drip: FakeDrip
) -> None:
    """Traffic, then time passes: the tables keep what is pending and the dead letters."""
    worker = create_worker(app)
    fake_drip.fail_next(1, status=422, body=INVALID_EMAIL)  # the first call dies
    grace = IDENTIFY | {"messageId": "m-2", "userId": "u2", "traits": {"email": "g@x.io"}}
    client.post("/segment", json=[IDENTIFY, grace, {"type": "page"}], headers=bearer(WRITE_KEY))
    drain(worker)
    pending = IDENTIFY | {"messageId": "m-3", "userId": "u3", "traits": {"email": "p@x.io"}}
    client.post("/segment", json=pending, headers=bearer(WRITE_KEY))
    assert _counts(app) == {"outbox": 3, "received": 3, "skipped": 1, "identities": 3,
                            "campaign_members": 0, "workers": 1}  # fmt: skip
    later = time.time() + 3600
    assert retention.prune(app.extensions["engine"], later, 60) == 7
    assert _counts(app) == {"outbox": 2, "received": 2, "skipped": 0, "identities": 0,
                            "campaign_members": 0, "workers": 0}  # fmt: skip
    assert sorted(r.state for r in rows(app)) == ["dead", "pending"]
    with app.extensions["engine"].connect() as conn:
        (dead,) = dead_letters.read(conn)
    assert dead.message == IDENTIFY  # the original message stays beside its dead letter


def test_pruning_goes_in_slices_and_keeps_what_is_recent(app: Flask) -> None:
    engine = app.extensions["engine"]
    now = time.time()
    with engine.begin() as conn:
        received.accept(conn, "segment", [(f"old-{i}", {}) for i in range(25)], now - 100)
        received.accept(conn, "segment", [("new", {})], now)
        people.learn(conn, {"u-old": "o@x.io"}, now - 100)
        people.join_campaign(conn, "o@x.io", "555", now - 100)
        workers.heartbeat(conn, "gone", now - 100, None)
    assert retention.prune(engine, now, 20, limit=10) == 28  # 3 slices, then one each
    with engine.connect() as conn:
        ids = conn.execute(sa.select(received_table.c.message_id)).scalars().all()
    assert ids == ["new"]


def test_one_call_deletes_at_most_its_budget_and_the_next_goes_on(app: Flask) -> None:
    engine = app.extensions["engine"]
    now = time.time()
    with engine.begin() as conn:
        received.accept(conn, "segment", [(f"old-{i}", {}) for i in range(63)], now - 100)
    budget = retention.ROUNDS * 10
    assert retention.prune(engine, now, 20, limit=10) == budget
    assert retention.prune(engine, now, 20, limit=10) == 63 - budget
    assert retention.prune(engine, now, 20, limit=10) == 0


def test_an_old_message_still_waiting_keeps_its_payload(app: Flask) -> None:
    """The received row of a pending (or dead) outbox row stays however old, while old
    rows around it go; once the row is delivered, it goes too."""
    engine = app.extensions["engine"]
    now = time.time()
    call = outbox.Pending("m-wait", "drip", "event", "p@x.io", "p@x.io", {"email": "p@x.io"})
    with engine.begin() as conn:
        received.accept(conn, "segment", [(f"old-{i}", {}) for i in range(15)], now - 200)
        received.accept(conn, "segment", [("m-wait", {"hello": "world"})], now - 100)
        outbox.enqueue(conn, [call], now - 100)
    assert retention.prune(engine, now, 20, limit=10) == 15
    (kept,) = rows(app, received_table)
    assert (kept.message_id, kept.payload) == ("m-wait", {"hello": "world"})
    (row,) = rows(app)
    with engine.begin() as conn:
        outbox.finish(conn, [row.id], now - 50)
    assert retention.prune(engine, now, 20, limit=10) == 2  # the row, then its message
    assert rows(app, received_table) == []


def test_a_message_needed_again_between_the_read_and_the_delete_stays(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The keys are read outside the write transaction; the delete checks them again."""
    engine = app.extensions["engine"]
    now = time.time()
    with engine.begin() as conn:
        received.accept(conn, "segment", [("m-1", {"a": 1}), ("m-2", {"a": 2})], now - 100)
    real = retention.writing
    call = outbox.Pending("m-1", "drip", "event", "p@x.io", "p@x.io", {"email": "p@x.io"})

    @contextlib.contextmanager
    def meanwhile(engine: sa.Engine) -> Iterator[sa.Connection]:
        with real(engine) as conn:  # a replay, say, just before the delete
            outbox.enqueue(conn, [call], now)
            yield conn

    monkeypatch.setattr(retention, "writing", meanwhile)
    assert retention.prune(engine, now, 20) == 1
    assert [r.message_id for r in rows(app, received_table)] == ["m-1"]


def test_the_worker_prunes_every_few_minutes_not_at_every_heartbeat(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    app.config["BRIDGE"] = app.config["BRIDGE"].with_overrides({"data_retention": 20.0})
    worker = create_worker(app)
    calls: list[float] = []
    monkeypatch.setattr(retention, "prune", lambda engine, now, keep: calls.append(now))
    clock = [1_000_000.0]
    monkeypatch.setattr(worker_module.time, "time", lambda: clock[0])
    for _ in range(60):  # ten minutes of steps, one every 10 s: a heartbeat each
        worker.step()
        clock[0] += worker_module.HEARTBEAT_EVERY
    assert worker_module.PRUNE_EVERY >= 10 * worker_module.HEARTBEAT_EVERY
    assert len(calls) == 600 // worker_module.PRUNE_EVERY


def test_the_worker_prunes_as_it_reports_in(app: Flask, client: FlaskClient) -> None:
    app.config["BRIDGE"] = app.config["BRIDGE"].with_overrides({"data_retention": 20.0})
    worker = create_worker(app)
    with app.extensions["engine"].begin() as conn:
        received.accept(conn, "drip", [("drip-old", {})], time.time() - 100)
    worker.step()
    assert rows(app, received_table) == []
