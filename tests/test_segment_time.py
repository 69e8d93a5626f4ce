"""Segment's corrected time: timestamp = receivedAt - (sentAt - originalTimestamp)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.delivery.worker import Worker
from app.pipeline.messages import messages_of, segment_time
from app.simulators.drip import FakeDrip
from app.store.tables import inbox
from tests.conftest import WRITE_KEY, drain
from tests.helpers import TRACK, basic, bearer, dumps, received, rows

ARRIVAL = datetime(2026, 11, 27, 12, 0, 0, 250000, tzinfo=UTC).timestamp()
JSON = {"Content-Type": "application/json"}


def iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def at(arrival: float) -> datetime:
    return datetime.fromtimestamp(arrival, UTC)


@pytest.mark.parametrize(
    ("message", "relayed", "timestamp"),
    [
        # A device a day behind: its event happened 2.5 s before it was sent.
        ({"timestamp": "2026-11-26T11:59:57.500Z", "sentAt": "2026-11-26T12:00:00.000Z"},
         False, "2026-11-27T11:59:57.750Z"),
        # originalTimestamp wins over timestamp when both are sent.
        ({"originalTimestamp": "2020-01-01T00:00:00Z", "timestamp": "2031-01-01T00:00:00Z",
          "sentAt": "2020-01-01T00:00:10Z"}, False, "2026-11-27T11:59:50.250Z"),
        # Relayed by Segment: its own receivedAt, so its own correction, exactly.
        ({"originalTimestamp": "2026-11-20T08:00:00.000+01:00", "sentAt": "2026-11-20T07:00:05Z",
          "receivedAt": "2026-11-25T10:00:00.000Z", "timestamp": "2026-11-25T09:59:55.000Z"},
         True, "2026-11-25T09:59:55.000Z"),
    ],
    ids=["day behind", "original wins", "relayed"],
)  # fmt: skip
def test_a_message_with_sent_at_is_dated_as_segment_dates_it(
    message: dict[str, Any], relayed: bool, timestamp: str
) -> None:
    corrected = segment_time(message, ARRIVAL, relayed)
    device = message.get("originalTimestamp", message.get("timestamp"))
    assert corrected == message | {"timestamp": timestamp, "originalTimestamp": device}


@pytest.mark.parametrize(
    "message",
    [{"timestamp": "2026-11-26T11:59:57Z"}, {"sentAt": "2026-11-26T12:00:00Z"},
     {"timestamp": "yesterday", "sentAt": "2026-11-26T12:00:00Z"},
     {"timestamp": "0001-01-01T00:00:00Z", "sentAt": "9999-12-31T00:00:00Z"}],
    ids=["no sentAt", "no device time", "unreadable", "beyond the calendar"],
)  # fmt: skip
def test_without_a_sent_at_and_a_device_time_the_message_is_left_as_sent(
    message: dict[str, Any],
) -> None:
    assert segment_time(message, ARRIVAL, relayed=False) is message


def test_a_batch_sent_at_dates_each_message_that_has_none() -> None:
    body = {"sentAt": "2026-11-26T12:00:00Z", "batch": [{"type": "track"},
            {"type": "track", "sentAt": "2026-11-26T13:00:00Z"}]}  # fmt: skip
    assert [m["sentAt"] for m in messages_of(body)] == [
        "2026-11-26T12:00:00Z",
        "2026-11-26T13:00:00Z",
    ]


def day_behind(now: datetime) -> dict[str, Any]:
    """A track from a device whose clock is a day behind, sent 3 s after it happened."""
    device = now - timedelta(days=1)
    happened = iso(device - timedelta(seconds=3))
    return TRACK | {"properties": {"email": "ada@example.com"}, "timestamp": happened,
                    "sentAt": iso(device)}  # fmt: skip


def test_a_track_sent_a_day_behind_reaches_drip_with_occurred_at_corrected_to_the_second(
    client: FlaskClient, app: Flask, worker: Worker, fake_drip: FakeDrip
) -> None:
    client.post(
        "/v1/track", data=dumps(day_behind(datetime.now(UTC))), headers=JSON | basic(WRITE_KEY)
    )
    (row,) = rows(app, inbox)
    drain(worker)
    expected = (at(row.received_at) - timedelta(seconds=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert fake_drip.records("event") == [
        {"email": "ada@example.com", "action": "Signed Up", "occurred_at": expected,
         "properties": {}}
    ]  # fmt: skip


def test_the_webhooks_endpoint_dates_messages_the_same_way(
    client: FlaskClient, app: Flask, worker: Worker, fake_drip: FakeDrip
) -> None:
    client.post("/segment", data=dumps(day_behind(datetime.now(UTC))),
                headers=JSON | bearer(WRITE_KEY))  # fmt: skip
    (arrived,) = rows(app, received)
    drain(worker)
    expected = (at(arrived.received_at) - timedelta(seconds=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert [e["occurred_at"] for e in fake_drip.records("event")] == [expected]
