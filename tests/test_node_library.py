"""Segment's analytics-node (from npm, tests/browser/package.json) posts to the bridge."""

from __future__ import annotations

import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

from flask import Flask

from app.delivery.worker import Worker
from app.simulators.drip import FakeDrip
from app.simulators.server import serve
from app.store.tables import inbox
from tests.conftest import WRITE_KEY, drain, required
from tests.helpers import rows

PACKAGES = Path(__file__).parent / "browser"
SCRIPT = PACKAGES / "send-with-analytics-node.js"


def test_analytics_node_delivers_through_the_bridge(
    app: Flask, worker: Worker, fake_drip: FakeDrip
) -> None:
    node = shutil.which("node")
    if node is None or not (PACKAGES / "node_modules" / "@segment" / "analytics-node").is_dir():
        required("node and analytics-node from npm", "`make test` runs npm ci in tests/browser")
    assert node is not None
    with serve(app) as bridge:
        before = datetime.now(UTC).replace(microsecond=0)
        sent = subprocess.run([node, str(SCRIPT), bridge.url, WRITE_KEY], cwd=PACKAGES,
                              capture_output=True, text=True, timeout=60)  # fmt: skip
        after = datetime.now(UTC)
    assert (sent.returncode, sent.stdout, sent.stderr) == (0, "flushed\n", "")
    assert [r.kind for r in rows(app, inbox)] == ["batch"]  # analytics-node posts /v1/batch
    drain(worker)
    assert fake_drip.records("subscriber") == [
        {"email": "node@example.com", "user_id": "u-node", "custom_fields": {"plan": "pro"}}
    ]
    (event,) = fake_drip.records("event")
    occurred = datetime.fromisoformat(event.pop("occurred_at"))
    assert before <= occurred <= after
    assert event == {
        "email": "node@example.com",
        "action": "Deployed",
        "properties": {"value": 450},
    }
