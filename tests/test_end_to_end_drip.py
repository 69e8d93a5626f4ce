"""Drip -> Segment as deployed: gunicorn, separate or in-process workers, failures, SIGKILL."""

from __future__ import annotations

import signal
from collections.abc import Callable
from typing import Any

import pytest
import requests

from app.mapping.to_segment import PROFILE_EVENTS
from app.simulators.drip import FakeDrip
from app.simulators.segment import FakeSegment
from app.simulators.server import free_port, wait_until
from tests.conftest import ACCOUNT_ID, DRIP_TOKEN, SEGMENT_KEY, WEBHOOK_TOKEN, WRITE_KEY
from tests.processes import BIN, Processes, processes

__all__ = ["processes"]
pytestmark = pytest.mark.slow

# Each of Drip's 29 webhook events and the Track event it becomes (None: counted skip).
EXPECTED = {
    "subscriber.created": "Created",
    "subscriber.deleted": "Deleted",
    "subscriber.marked_as_deliverable": "Marked As Deliverable",
    "subscriber.marked_as_undeliverable": "Marked As Undeliverable",
    "subscriber.subscribed_to_email_marketing": "Subscribed To Email Marketing",
    "subscriber.subscribed_to_campaign": "Subscribed To Campaign",
    "subscriber.removed_from_campaign": "Removed From Campaign",
    "subscriber.unsubscribed_from_campaign": "Unsubscribed",
    "subscriber.unsubscribed_all": "Unsubscribed",
    "subscriber.reactivated": "Reactivated",
    "subscriber.completed_campaign": "Completed Campaign",
    "subscriber.applied_tag": "Applied Tag",
    "subscriber.removed_tag": "Removed Tag",
    "subscriber.updated_custom_field": "Updated Custom Field",
    "subscriber.updated_email_address": "Updated Email Address",
    "subscriber.updated_lifetime_value": "Updated Lifetime Value",
    "subscriber.updated_time_zone": "Updated Time Zone",
    "subscriber.received_email": "Email Delivered",
    "subscriber.opened_email": "Email Opened",
    "subscriber.clicked_email": "Email Link Clicked",
    "subscriber.bounced": "Email Bounced",
    "subscriber.complained": "Email Marked as Spam",
    "subscriber.clicked_trigger_link": "Clicked Trigger Link",
    "subscriber.visited_page": "Visited Page",
    "subscriber.became_lead": "Became Lead",
    "subscriber.became_non_prospect": "Became Non Prospect",
    "subscriber.updated_lead_score": "Updated Lead Score",
    "subscriber.performed_custom_event": None,
    "subscriber.updated_alias": "Updated Alias",
}


def envelope(event: str, n: int = 0) -> dict[str, Any]:
    return {
        "event": event,
        "data": {
            "account_id": ACCOUNT_ID,
            "subscriber": {"id": f"sub{n}", "email": f"p{n}@example.com"},
            "properties": {"n": n},
        },
        "occurred_at": "2026-11-26T10:00:00Z",
    }


def env(database_url: str, fake_drip: FakeDrip, fake_segment: FakeSegment) -> dict[str, str]:
    return {
        "DRIP_ACCOUNT_ID": ACCOUNT_ID,
        "DRIP_API_TOKEN": DRIP_TOKEN,
        "DRIP_API_URL": fake_drip.url,
        "BRIDGE_WRITE_KEY": WRITE_KEY,
        "SEGMENT_WRITE_KEY": SEGMENT_KEY,
        "SEGMENT_API_HOST": fake_segment.url,
        "DRIP_WEBHOOK_TOKEN": WEBHOOK_TOKEN,
        "DATABASE_URL": database_url,
        "WEB_CONCURRENCY": "3",
    }


def post_webhook(url: str, body: dict[str, Any]) -> dict[str, Any]:
    response = requests.post(f"{url}/drip/webhook?token={WEBHOOK_TOKEN}", json=body, timeout=10)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def test_each_of_the_29_drip_events_gets_its_documented_result(
    database_url: str,
    fake_drip: FakeDrip,
    fake_segment: FakeSegment,
    processes: Callable[[dict[str, str]], Processes],
) -> None:
    procs = processes(env(database_url, fake_drip, fake_segment))
    url = procs.web()
    procs.start(str(BIN / "drip-bridge"), "worker", name="worker")

    answers = {event: post_webhook(url, envelope(event)) for event in EXPECTED}
    repeat = post_webhook(url, envelope("subscriber.opened_email"))
    assert repeat["duplicate"] is True
    assert answers["subscriber.performed_custom_event"]["skipped"] == "not_forwarded"

    forwarded = {e: name for e, name in EXPECTED.items() if name}
    profiles = {answers[e]["id"] + "-identify" for e in forwarded if e in PROFILE_EVENTS}
    expected = len(forwarded) + len(profiles)  # 28 tracks and 12 identifies
    wait_until("40 messages at Segment", lambda: len(fake_segment.messages()) >= expected)
    tracks = [m for m in fake_segment.messages() if m["type"] == "track"]
    by_id = {m["messageId"]: m["event"] for m in tracks}
    assert by_id == {answers[e]["id"]: name for e, name in forwarded.items()}
    assert len(tracks) == 28  # the repeat was not forwarded again
    identifies = {m["messageId"] for m in fake_segment.messages() if m["type"] == "identify"}
    assert identifies == profiles
    assert len(fake_segment.messages()) == expected
    metrics = requests.get(f"{url}/metrics", timeout=5).text
    assert 'bridge_messages_duplicate_total{source="drip"} 1.0' in metrics


def test_with_30_percent_failures_and_a_sigkill_every_webhook_reaches_segment(
    database_url: str,
    fake_drip: FakeDrip,
    fake_segment: FakeSegment,
    processes: Callable[[dict[str, str]], Processes],
) -> None:
    procs = processes(env(database_url, fake_drip, fake_segment))
    url = procs.web()
    ids = {post_webhook(url, envelope("subscriber.opened_email", n))["id"] for n in range(400)}

    fake_segment.failure_rate = 0.3
    fake_segment.latency = 0.2
    worker = procs.start(str(BIN / "drip-bridge"), "worker", "--lease", "2", name="worker-1")
    wait_until("some tracks", lambda: len(fake_segment.messages()) >= 1)
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    procs.start(str(BIN / "drip-bridge"), "worker", "--lease", "2", name="worker-2")

    def all_arrived() -> bool:
        return {m["messageId"] for m in fake_segment.messages()} >= ids

    wait_until("every accepted webhook at Segment", all_arrived, timeout=120)
    failed = sum(1 for c in fake_segment.calls() if c.status >= 500)
    print(f"segment answered 5xx {failed} times; {len(fake_segment.messages())} messages for 400")
    assert failed > 0


def test_serve_runs_web_and_delivery_in_one_command(
    database_url: str,
    fake_drip: FakeDrip,
    fake_segment: FakeSegment,
    processes: Callable[[dict[str, str]], Processes],
) -> None:
    procs = processes(env(database_url, fake_drip, fake_segment))
    port = free_port()
    procs.start(str(BIN / "drip-bridge"), "serve", "--port", str(port), name="serve")
    url = f"http://127.0.0.1:{port}"
    wait_until("serve to answer", lambda: _ready(url), timeout=30)
    answer = post_webhook(url, envelope("subscriber.bounced", 7))
    identify = {"type": "identify", "userId": "u7", "traits": {"email": "p7@example.com"}}
    requests.post(f"{url}/v1/identify", json=identify, auth=(WRITE_KEY, ""), timeout=5)
    wait_until("the bounce at Segment", lambda: bool(fake_segment.messages()))
    wait_until("the identify at Drip", lambda: bool(fake_drip.records("subscriber")))
    assert fake_segment.messages()[0]["messageId"] == answer["id"]
    assert fake_drip.records("subscriber") == [{"email": "p7@example.com", "user_id": "u7"}]
    assert "Traceback" not in procs.log("serve")  # e.g. from a thread gevent's workers refuse


def test_preloaded_gunicorn_with_delivery_in_its_workers_still_sends(
    database_url: str,
    fake_drip: FakeDrip,
    fake_segment: FakeSegment,
    processes: Callable[[dict[str, str]], Processes],
) -> None:
    """--preload builds the app before the fork: the Segment client must be made after it."""
    procs = processes(env(database_url, fake_drip, fake_segment) | {"BRIDGE_DELIVERY_IN_WEB": "1"})
    url = procs.web("--preload")
    ids = {post_webhook(url, envelope("subscriber.opened_email", n))["id"] for n in range(12)}
    wait_until("12 tracks", lambda: {m["messageId"] for m in fake_segment.messages()} >= ids)


def _ready(url: str) -> bool:
    try:
        return requests.get(f"{url}/readyz", timeout=1).status_code == 200
    except requests.RequestException:
        return False
