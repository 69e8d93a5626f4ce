"""The bridge as deployed: gunicorn (Procfile web), `drip-bridge worker`, a real Segment client."""

from __future__ import annotations

import signal
from collections import Counter
from collections.abc import Callable

import pytest
from segment.analytics import Client

from app.simulators.drip import FakeDrip
from app.simulators.server import wait_until
from tests.conftest import ACCOUNT_ID, DRIP_TOKEN, WRITE_KEY
from tests.processes import BIN, Processes, processes

__all__ = ["processes"]  # the fixture
pytestmark = pytest.mark.slow


def bridge_env(database_url: str, drip_url: str, **extra: str) -> dict[str, str]:
    return {
        "DRIP_ACCOUNT_ID": ACCOUNT_ID,
        "DRIP_API_TOKEN": DRIP_TOKEN,
        "DRIP_API_URL": drip_url,
        "BRIDGE_WRITE_KEY": WRITE_KEY,
        "DATABASE_URL": database_url,
        "WEB_CONCURRENCY": "2",
        **extra,
    }


def identify_people(url: str, count: int) -> list[str]:
    """`count` people identified through a real Segment client; their emails."""
    client = Client(WRITE_KEY, host=url, sync_mode=True)
    emails = [f"p{i}@example.com" for i in range(count)]
    for i, email in enumerate(emails):
        client.identify(f"u{i}", {"email": email})
    return emails


def test_a_segment_client_delivers_through_gunicorn_and_the_worker(
    database_url: str, fake_drip: FakeDrip, processes: Callable[[dict[str, str]], Processes]
) -> None:
    procs = processes(bridge_env(database_url, fake_drip.url))
    url = procs.web()
    procs.start(str(BIN / "drip-bridge"), "worker", name="worker")

    client = Client(WRITE_KEY, host=url, sync_mode=True)
    client.identify("u-42", {"email": "grace@example.com", "firstName": "Grace", "rank": "admiral"})
    client.track("u-42", "Compiled Program", {"language": "COBOL", "revenue": 12.5},
                 timestamp=None, message_id="m-track-42")  # fmt: skip

    wait_until("both records at Drip", lambda: len(fake_drip.records("event")) == 1)
    assert fake_drip.records("subscriber") == [
        {
            "email": "grace@example.com",
            "user_id": "u-42",
            "first_name": "Grace",
            "custom_fields": {"rank": "admiral"},
        }
    ]
    (event,) = fake_drip.records("event")
    assert event.pop("occurred_at").endswith("Z")
    assert event == {
        "email": "grace@example.com",
        "action": "Compiled Program",
        "properties": {"language": "COBOL", "value": 1250},
    }


def test_a_worker_killed_mid_delivery_loses_nothing(
    database_url: str, fake_drip: FakeDrip, processes: Callable[[dict[str, str]], Processes]
) -> None:
    procs = processes(bridge_env(database_url, fake_drip.url))
    emails = identify_people(procs.web(), 40)

    fake_drip.latency = 0.05  # slow enough that the kill lands mid-delivery
    worker = procs.start(str(BIN / "drip-bridge"), "worker", "--lease", "2", name="worker-1")
    wait_until("some deliveries", lambda: len(fake_drip.records("subscriber")) >= 5)
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    delivered_before = len(fake_drip.records("subscriber"))
    assert delivered_before < len(emails)

    procs.start(str(BIN / "drip-bridge"), "worker", "--lease", "2", name="worker-2")
    wait_until(
        "every accepted message at Drip",
        lambda: {r["email"] for r in fake_drip.records("subscriber")} == set(emails),
        timeout=60,
    )
    received = Counter(r["email"] for r in fake_drip.records("subscriber"))
    duplicates = sum(n - 1 for n in received.values())
    print(f"delivered before kill: {delivered_before}, duplicates after restart: {duplicates}")
    assert duplicates <= 1  # at most the one call in flight when the worker died


def test_sigterm_with_drip_answering_in_10_s_stops_within_the_platforms_grace(
    database_url: str, fake_drip: FakeDrip, processes: Callable[[dict[str, str]], Processes]
) -> None:
    """A platform stops a dyno with SIGTERM and kills it 30 s later: the call in flight
    finishes, the rest of the claim is given back at once, nothing is sent twice."""
    procs = processes(bridge_env(database_url, fake_drip.url))
    emails = identify_people(procs.web(), 5)
    fake_drip.latency = 10.0
    worker = procs.start(str(BIN / "drip-bridge"), "worker", name="worker-1")
    wait_until("a call in flight", lambda: len(fake_drip.calls()) >= 1, timeout=30)
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=30) == 0  # inside the grace, not killed

    fake_drip.latency = 0.0
    procs.start(str(BIN / "drip-bridge"), "worker", name="worker-2")  # default 60 s lease
    wait_until(
        "every accepted message at Drip, without waiting for a lease",
        lambda: len(fake_drip.records("subscriber")) == len(emails),
        timeout=20,
    )
    assert sorted(r["email"] for r in fake_drip.records("subscriber")) == emails  # once each
