"""Slow clients (issue 10, item 3): the Procfile's web process keeps answering while
unauthenticated clients trickle their requests a byte at a time.

A functional check with a generous deadline, not a speed measure (`python -m bench
slowclients` measures it).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from bench.slowclients import SlowClients, probe
from tests.conftest import ACCOUNT_ID, DRIP_TOKEN, WRITE_KEY
from tests.processes import Processes, processes

__all__ = ["processes"]  # the fixture
pytestmark = pytest.mark.slow

SLOW_CLIENTS = 20
DEADLINE = 5.0


def test_healthz_answers_while_20_clients_trickle_requests_a_byte_at_a_time(
    tmp_path: object, processes: Callable[[dict[str, str]], Processes]
) -> None:
    procs = processes({
        "DRIP_ACCOUNT_ID": ACCOUNT_ID,
        "DRIP_API_TOKEN": DRIP_TOKEN,
        "DRIP_API_URL": "http://127.0.0.1:9",
        "BRIDGE_WRITE_KEY": WRITE_KEY,
        "DATABASE_URL": f"sqlite:///{tmp_path}/bridge.sqlite3",
        "WEB_CONCURRENCY": "2",  # fewer processes than slow clients on any machine
    })  # fmt: skip
    url = procs.web()
    slow = SlowClients(url, SLOW_CLIENTS, interval=0.5)
    try:
        # Every slow client has sent its first bytes, so each one's request is under way.
        time.sleep(1.5)
        answered = [probe(url, DEADLINE) for _ in range(10)]
        still_open = slow.waiting()
        finished = slow.finish()
    finally:
        slow.close()

    assert [latency is not None for latency in answered] == [True] * 10, answered
    assert still_open == SLOW_CLIENTS  # the slow requests were still being sent
    assert finished == [401] * SLOW_CLIENTS  # and each is answered once complete
