"""/healthz, /readyz and /metrics."""

from __future__ import annotations

from flask.testing import FlaskClient

from app.delivery.worker import Worker
from app.factory import create_app
from tests.conftest import WRITE_KEY, make_config
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
