"""Drip's rate budgets: one count for every process, and no thread gevent refuses."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

from pyrate_limiter import RateItem

from app.config import Rate
from app.delivery.budget import budget
from tests.processes import ROOT

# A gevent web worker's view: threads are greenlets on one loop, both budgets made.
GEVENT_WORKER = textwrap.dedent("""
    from gevent import monkey
    monkey.patch_all()
    import sys, time
    from app.config import Rate
    from app.delivery.budget import budget
    single, batch = (budget(name, Rate(3, 60), sys.argv[1]) for name in ("individual", "batch"))
    print([single.take() for _ in range(3)], batch.take())
    time.sleep(0.5)  # room for any background thread to fail
    single.dispose()
    batch.dispose()
""")


def test_a_gevent_worker_shares_the_budget_without_a_traceback(database_url: str) -> None:
    here = budget("individual", Rate(3, 60), database_url)
    try:
        assert here.take() is True
        worker = subprocess.run(
            [sys.executable, "-c", GEVENT_WORKER, database_url],
            cwd=ROOT, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert worker.stderr == ""
        assert worker.stdout == "[True, True, False] True\n"  # one of the 3 was taken here
        assert here.take() is False
        assert here.remaining() == 0
    finally:
        here.dispose()


def test_calls_older_than_the_window_are_deleted_by_the_budget_itself(database_url: str) -> None:
    spent = budget("individual", Rate(3, 60), database_url)
    try:
        an_hour_ago = int((time.time() - 3600) * 1000)
        assert spent.bucket.put(RateItem("individual", an_hour_ago)) is True
        assert spent.take() is True
        assert spent.bucket.count() == 1  # the old call is gone, the new one counts
        assert spent.remaining() == 2
    finally:
        spent.dispose()
