"""/healthz, /readyz and /metrics."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from app.config import Config
from app.delivery.budget import dispose_budgets
from app.delivery.runner import create_worker, start_in_thread
from app.delivery.worker import Trouble, Worker
from app.factory import create_app
from app.simulators.server import wait_until
from tests.conftest import WRITE_KEY, drain, make_config, running
from tests.helpers import IDENTIFY, bearer


def test_healthz_answers_while_the_process_serves(client: FlaskClient) -> None:
    assert client.get("/healthz").json == {"status": "ok"}


def test_readyz_waits_for_a_worker_to_report(client: FlaskClient, worker: Worker) -> None:
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json == {
        "status": "not_ready",
        "reason": "no delivery worker has reported in the last minute; start `drip-bridge worker`",
    }
    worker.step()
    assert client.get("/readyz").json == {"status": "ready", "workers": 1}


def test_readyz_says_when_the_database_is_down() -> None:
    config = make_config("postgresql+psycopg://postgres@127.0.0.1:1/none", "http://127.0.0.1:9")
    response = create_app(config).test_client().get("/readyz")
    assert response.status_code == 503
    assert response.json == {
        "status": "not_ready",
        "reason": "database unavailable: OperationalError",  # the driver's words name hosts
    }


def test_readyz_and_the_dashboard_say_why_the_delivery_thread_of_serve_fails(
    tmp_path: Path,
) -> None:
    config = make_config(f"sqlite:///{tmp_path}/bridge.sqlite3", "http://127.0.0.1:9",
                         admin_password="admin-test-password")  # fmt: skip
    with running(config) as app:
        engine = app.extensions["engine"]
        with engine.begin() as conn:
            conn.exec_driver_sql("ALTER TABLE outbox RENAME TO away")  # no step can do without
        thread, stop = start_in_thread(app)
        worker = app.extensions["delivery"]
        wait_until("three failed steps", lambda: worker.trouble.count >= 3)
        stop.set()
        thread.join(timeout=10)
        with engine.begin() as conn:
            conn.exec_driver_sql("ALTER TABLE away RENAME TO outbox")  # the page reads it
        client = app.test_client()
        tries = worker.trouble.count
        assert client.get("/readyz").json == {
            "status": "not_ready",
            "reason": f"delivery fails ({tries} tries): OperationalError (see /admin or the log)",
        }
        page = client.get("/admin", auth=("admin", "admin-test-password")).get_data(as_text=True)
        assert f"delivery fails ({tries} tries): OperationalError: no such table: outbox" in page


def test_a_step_error_is_logged_once_with_its_message_then_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def error(message: str) -> sa.exc.DBAPIError:
        cause = sqlite3.OperationalError(message)
        return sa.exc.OperationalError("SELECT 1", {"email": "ada@example.com"}, cause)

    trouble = Trouble()
    caplog.set_level(logging.INFO, logger="app.delivery.worker")
    for n in range(50):  # ten steps a second, for five seconds
        trouble.failed(error("database is locked"), 1000.0 + n / 10)
    trouble.failed(error("database is locked"), 1061.0)
    trouble.failed(error("disk I/O error"), 1062.0)
    trouble.failed(KeyError("email"), 1063.0)  # a bug: logged with its traceback
    trouble.recovered()
    assert [r.getMessage() for r in caplog.records] == [
        "store unavailable, retrying: OperationalError: database is locked",
        "store unavailable still (51 times in 61 s), retrying: "
        "OperationalError: database is locked",
        "error ended after 51 times: OperationalError: database is locked",
        "store unavailable, retrying: OperationalError: disk I/O error",
        "error ended after 1 times: OperationalError: disk I/O error",
        "step failed, retrying: KeyError: 'email'",
        "error ended after 1 times: KeyError: 'email'",
    ]
    assert [bool(r.exc_info) for r in caplog.records] == [False] * 5 + [True, False]


def test_metrics_show_the_backlog_and_never_a_secret(client: FlaskClient) -> None:
    client.post("/segment", json=IDENTIFY, headers=bearer(WRITE_KEY))
    text = client.get("/metrics").get_data(as_text=True)
    assert 'bridge_backlog{destination="drip"} 1.0' in text
    for secret in ("drip-test-token", "bridge-test-write-key", "segment-test-shared-secret"):
        assert secret not in text


def test_what_a_worker_elsewhere_counts_shows_in_the_webs_metrics(
    client: FlaskClient, config: Config
) -> None:
    """The Procfile split: the worker is another process; /metrics reads its counts
    from the store, whichever process serves it."""
    client.post("/segment", json=IDENTIFY, headers=bearer(WRITE_KEY))
    elsewhere = create_app(config)
    drain(create_worker(elsewhere))
    dispose_budgets(elsewhere)
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(client.get("/metrics").get_data(as_text=True))
        for s in family.samples
    }
    drip = (("destination", "drip"),)
    assert samples[("bridge_deliveries_total", drip)] == 1
    assert samples[("bridge_messages_accepted_total", (("source", "segment"),))] == 1
    assert samples[("bridge_delivery_latency_seconds_count", drip)] == 1
    assert samples[("bridge_delivery_latency_seconds_bucket", (*drip, ("le", "+Inf")))] == 1
    assert 0 < samples[("bridge_delivery_latency_seconds_sum", drip)] < 60
