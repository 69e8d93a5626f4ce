"""/healthz, /readyz and /metrics."""

from __future__ import annotations

from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from app.config import Config
from app.delivery.budget import dispose_budgets
from app.delivery.runner import create_worker
from app.delivery.worker import Worker
from app.factory import create_app
from tests.conftest import WRITE_KEY, drain, make_config
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
        "reason": "database unavailable: OperationalError",
    }


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
