"""Four worker processes on one PostgreSQL share the work and both budgets."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from app.simulators.drip import FakeDrip
from app.simulators.server import wait_until
from tests.conftest import ACCOUNT_ID, DRIP_TOKEN, WRITE_KEY
from tests.processes import BIN, Processes, processes

__all__ = ["processes"]
pytestmark = pytest.mark.slow
PEOPLE = 400


@pytest.fixture
def budget_drip() -> Iterator[FakeDrip]:
    """A fake Drip enforcing compressed budgets: 50 calls / 2 s and 1 batch call / 2 s."""
    fake = FakeDrip(token=DRIP_TOKEN, account_id=ACCOUNT_ID, rate_limit=(50, 2.0),
                    batch_rate_limit=(1, 2.0), latency=0.005)  # fmt: skip
    with fake.serve():
        yield fake


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_four_workers_stay_within_both_budgets_and_never_send_a_row_twice(
    database_url: str, budget_drip: FakeDrip, processes: Callable[[dict[str, str]], Processes]
) -> None:
    procs = processes({
        "DRIP_ACCOUNT_ID": ACCOUNT_ID, "DRIP_API_TOKEN": DRIP_TOKEN,
        "DRIP_API_URL": budget_drip.url,
        "DRIP_RATE_LIMIT": "50/2s", "DRIP_BATCH_RATE_LIMIT": "1/2s", "DRIP_CAMPAIGN_ID": "1111",
        "BRIDGE_WRITE_KEY": WRITE_KEY, "DATABASE_URL": database_url,
    })  # fmt: skip
    url = procs.web()
    batch = []
    for i in range(PEOPLE):  # an identify (and campaign subscription), then an event, each
        user = {"userId": f"u{i}"}
        batch.append({"type": "identify", "messageId": f"i{i}", **user,
                      "traits": {"email": f"p{i}@example.com"}})  # fmt: skip
        batch.append({"type": "track", "messageId": f"t{i}", **user, "event": "Ping"})
    answer = requests.post(
        f"{url}/v1/batch", json={"batch": batch}, auth=(WRITE_KEY, ""), timeout=30
    )
    assert answer.json() == {"success": True}  # stored whole; the workers map it

    for n in range(4):
        procs.start(str(BIN / "drip-bridge"), "worker", name=f"worker-{n}")
    wait_until(
        "every record at Drip",
        lambda: len(budget_drip.records("event")) >= PEOPLE,
        timeout=120,
    )
    stats = budget_drip.stats()
    assert (stats["over_budget"], stats["concurrency_violations"], stats["dropped"]) == (0, 0, 0)
    sent = Counter(r["email"] for r in budget_drip.records("subscriber"))
    events = Counter(r["email"] for r in budget_drip.records("event"))
    assert set(sent.values()) == {1} and len(sent) == PEOPLE
    assert set(events.values()) == {1} and len(events) == PEOPLE
    joined = Counter(r["email"] for r in budget_drip.records("campaign"))
    assert set(joined.values()) == {1} and len(joined) == PEOPLE  # campaigns: one by one only
    # Each person's identify reached Drip before their event.
    order = [c for c in budget_drip.calls() if c.status < 300]
    first_event: dict[str, int] = {}
    for position, call in enumerate(order):
        for record in _records(call.json):
            if "action" in record:
                first_event.setdefault(record["email"], position)
    first_identify: dict[str, int] = {}
    for position, call in enumerate(order):
        for record in _records(call.json):
            if "action" not in record:
                first_identify.setdefault(record["email"], position)
    assert all(first_identify[e] < first_event[e] for e in first_event)
    batches = sum(1 for c in order if c.path.endswith("/batches"))
    print(f"calls: {len(order)} ({batches} batch calls), over budget: {stats['over_budget']}")


def _records(body: Any) -> list[dict[str, str]]:
    """The records of a Drip call: `{"<kind>s": [...]}` or `{"batches": [{"<kind>s": [...]}]}`."""
    if "batches" in body:
        (inner,) = body["batches"]
        body = inner
    records: list[dict[str, str]] = next(iter(body.values()))
    return records
