"""Faults of the store itself: a full SQLite disk, PostgreSQL restarted under load."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa
from flask import Flask

from app.simulators.drip import FakeDrip
from app.simulators.server import free_port, wait_until
from app.store.tables import inbox
from tests.conftest import WRITE_KEY
from tests.helpers import TRACK, answer, basic, dumps, rows
from tests.processes import BIN, Processes, processes
from tests.test_end_to_end import bridge_env

__all__ = ["processes"]  # the fixture

AUTH = {"Content-Type": "application/json"} | basic(WRITE_KEY)


@contextmanager
def disk_full_after(app: Flask, pages: int) -> Iterator[None]:
    """While inside, connections may grow the file to `pages` pages at most: SQLite then
    fails writes exactly as on a full disk (SQLITE_FULL)."""
    engine: sa.Engine = app.extensions["engine"]

    def cap(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.execute(f"PRAGMA max_page_count = {pages}")

    engine.dispose()
    sa.event.listen(engine, "connect", cap)
    try:
        yield
    finally:
        sa.event.remove(engine, "connect", cap)
        engine.dispose()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_full_sqlite_disk_is_a_clear_503_and_nothing_unstored_is_acknowledged(
    app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    client = app.test_client()
    with app.extensions["engine"].connect() as conn:
        pages = conn.exec_driver_sql("PRAGMA page_count").scalar_one()
    answers = []
    # Room for a few requests, then the disk is "full".
    with disk_full_after(app, pages + 2), caplog.at_level(logging.ERROR, "app.web.errors"):
        for n in range(40):
            big = TRACK | {"messageId": f"m-{n}", "properties": {"pad": "x" * 3000}}
            answers.append(client.post("/v1/track", data=dumps(big), headers=AUTH))
    stored = [r.body for r in rows(app, inbox)]
    acknowledged = [n for n, r in enumerate(answers) if r.status_code == 200]
    refused = [r for r in answers if r.status_code != 200]
    assert acknowledged and refused  # both happened
    assert len(stored) == len(acknowledged)  # every 200 was stored, nothing else
    assert all(f'"m-{n}"' in body for n, body in zip(acknowledged, stored, strict=True))
    for response in refused:
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "30"
        assert answer(response)["error"]["code"] == "store_unavailable"
    assert "database or disk is full" in caplog.text  # what to fix, in the log
    # Space again: a request is accepted.
    again = client.post("/v1/track", data=dumps(TRACK | {"messageId": "m-after"}), headers=AUTH)
    assert again.status_code == 200


class PrivatePostgres:
    """A PostgreSQL server of the test's own (the machine's binaries, a fresh data
    folder, its own port), so it can be restarted without disturbing anyone."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def pg(self, *argv: str) -> None:
        as_owner = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run([*as_owner, str(PG_BIN / argv[0]), *argv[1:]], check=True,
                       capture_output=True, timeout=60)  # fmt: skip

    def ctl(self, action: str) -> None:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1"
        self.pg("pg_ctl", "-D", f"{self.folder}/data", "-o", options, "-m", "fast", "-w",
                "-l", f"{self.folder}/server.log", action)  # fmt: skip


PG_BIN = max(Path("/usr/lib/postgresql").glob("*/bin"), default=Path("/nonexistent"))


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    if not (PG_BIN / "initdb").exists():
        if os.environ.get("CI") == "true":
            pytest.fail("PostgreSQL's server binaries are required under CI=true")
        pytest.skip("PostgreSQL's server binaries are not installed")
    # Outside pytest's own folder, which only root may enter: the server runs as postgres.
    folder = Path(tempfile.mkdtemp(prefix="drip-bridge-pg-"))
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
    server = PrivatePostgres(folder)
    try:
        server.pg("initdb", "-D", f"{folder}/data", "-A", "trust", "-U", "postgres")
        server.ctl("start")
        yield server
        server.ctl("stop")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.slow
def test_postgresql_restarted_under_load_loses_nothing_and_answers_only_503(
    private_postgres: PrivatePostgres,
    fake_drip: FakeDrip,
    processes: Callable[[dict[str, str]], Processes],
) -> None:
    procs = processes(bridge_env(private_postgres.url, fake_drip.url, DRIP_RATE_LIMIT="50/second"))
    url = procs.web()
    statuses: Counter[int] = Counter()
    acknowledged: list[int] = []

    def load() -> None:
        """A Segment library's behaviour: retry 5xx after Retry-After, until accepted."""
        for n in range(300):
            person = {"userId": f"u{n}", "properties": {"n": n, "email": f"p{n}@example.com"}}
            body = dumps(TRACK | person | {"messageId": f"m-{n}"})
            while True:
                try:
                    response = requests.post(f"{url}/v1/track", data=body, headers=AUTH, timeout=10)
                except requests.ConnectionError:
                    statuses[-1] += 1  # never expected: the web process stays up
                    continue
                statuses[response.status_code] += 1
                if response.status_code != 503:
                    break
                assert response.headers["Retry-After"] == "30"
                time.sleep(0.2)  # (a library waits Retry-After; the test need not)
            if response.status_code == 200:
                acknowledged.append(n)
            time.sleep(0.01)

    sender = threading.Thread(target=load)
    sender.start()
    wait_until("traffic under way", lambda: len(acknowledged) >= 40)
    private_postgres.ctl("restart")
    sender.join(timeout=120)
    assert set(statuses) <= {200, 503}, statuses
    assert acknowledged == list(range(300))
    print(f"answers while PostgreSQL restarted: {dict(statuses)}")

    procs.start(str(BIN / "drip-bridge"), "worker", name="worker")
    wait_until("every acknowledged message at Drip",
               lambda: len(fake_drip.records("event")) >= 300, timeout=90)  # fmt: skip
    delivered = Counter(r["properties"]["n"] for r in fake_drip.records("event"))
    assert delivered == Counter(range(300))  # each exactly once
