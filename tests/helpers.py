"""Small helpers shared by tests: signing, auth headers, store reads."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families
from werkzeug.test import TestResponse

from app.store.tables import outbox, received, skipped

IDENTIFY = {
    "type": "identify",
    "messageId": "m-identify-1",
    "userId": "u1",
    "traits": {"email": "ada@example.com", "plan": "pro"},
    "timestamp": "2026-11-26T10:00:00.000Z",
}
TRACK = {
    "type": "track",
    "messageId": "m-track-1",
    "userId": "u1",
    "event": "Signed Up",
    "properties": {"plan": "pro"},
    "timestamp": "2026-11-26T10:00:01.000Z",
}

# Drip's 422 for a record it refuses (rest/_errors.md), as the fake answers it.
INVALID_EMAIL = {
    "errors": [{"code": "email_error", "attribute": "email", "message": "Email is invalid"}]
}


def sign(secret: str, raw: bytes) -> str:
    return hmac.new(secret.encode(), raw, hashlib.sha1).hexdigest()


def basic(user: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:".encode()).decode()}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def dumps(body: Any) -> bytes:
    return json.dumps(body).encode()


def arrivals_over(app: Flask) -> None:
    """Date every kept Segment message an hour back, as if Segment's requests had stopped
    arriving then: the Drip scheduler waits for no more of them."""
    with app.extensions["engine"].begin() as conn:
        conn.execute(received.update().values(received_at=received.c.received_at - 3600))


def rows(app: Flask, table: sa.Table = outbox) -> list[sa.Row[Any]]:
    with app.extensions["engine"].connect() as conn:
        order = table.c.id if "id" in table.c else table.c.received_at
        return list(conn.execute(sa.select(table).order_by(order)))


__all__ = ["outbox", "received", "skipped"]


def answer(response: TestResponse) -> Any:
    """The JSON body of a response (it must have one)."""
    body = response.get_json()
    assert body is not None, response.data
    return body


def metrics(client: FlaskClient, **labels: str) -> dict[str, float]:
    """The samples of /metrics with exactly `labels` (or none), by name."""
    text = client.get("/metrics").get_data(as_text=True)
    return {
        s.name: s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.labels in ({}, labels)
    }
