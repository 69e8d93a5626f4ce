"""The tracking API's group commit (app/store/engine.py `GroupCommit`), on both stores."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from typing import Any

import sqlalchemy as sa
from flask import Flask

from app.simulators.server import wait_until
from app.store import GroupCommit
from app.store.tables import inbox
from tests.processes import ROOT

COLUMNS = ("kind", "body", "received_at", "browser")


def test_rows_arriving_during_a_commit_are_committed_together_and_a_refused_one_fails_alone(
    app: Flask,
) -> None:
    engine: sa.Engine = app.extensions["engine"]
    group = GroupCommit(engine.dialect, inbox, COLUMNS)
    outcomes: dict[str, Any] = {}

    def insert(body: str | None) -> None:
        try:
            group.insert(engine, ("track", body, 1.0, False))
            outcomes[str(body)] = "stored"
        except sa.exc.DBAPIError as exc:
            outcomes[str(body)] = exc

    threads: list[threading.Thread] = []

    def start(body: str | None) -> None:
        threads.append(threading.Thread(target=insert, args=(body,)))
        threads[-1].start()

    # Another writer holds the table, so the first row's commit waits in the store.
    with engine.begin() as blocker:  # SQLite: BEGIN IMMEDIATE takes the write lock
        if engine.dialect.name == "postgresql":
            blocker.execute(sa.text("LOCK TABLE inbox IN EXCLUSIVE MODE"))
        start('{"n":0}')
        wait_until("the first row's commit", lambda: group.committing and group.waiting == 0)
        for body in ['{"n":1}', '{"n":2}', None, '{"n":3}']:  # None: NOT NULL refuses it
            start(body)
        wait_until("four rows to wait for it", lambda: group.waiting == 4)
    for thread in threads:
        thread.join(timeout=30)

    assert {body: outcome for body, outcome in outcomes.items() if outcome == "stored"} == {
        '{"n":0}': "stored",
        '{"n":1}': "stored",
        '{"n":2}': "stored",
        '{"n":3}': "stored",
    }
    assert isinstance(outcomes["None"], sa.exc.IntegrityError)
    with engine.connect() as conn:
        stored = conn.execute(sa.select(inbox.c.body).order_by(inbox.c.id)).scalars().all()
    assert sorted(stored) == ['{"n":0}', '{"n":1}', '{"n":2}', '{"n":3}']
    assert stored[0] == '{"n":0}'


# Ten requests a gevent web worker has read at once, each inserting its row.
TEN_AT_ONCE = textwrap.dedent("""
    from gevent import monkey
    monkey.patch_all()
    import importlib, sys
    import gevent
    import sqlalchemy as sa
    store_engine = importlib.import_module("app.store.engine")  # app.store.engine() shadows it
    from app.store.tables import inbox

    statements = []
    execute = store_engine._execute
    def counted(driver, inserts, rows):
        statements.append(len(rows))
        execute(driver, inserts, rows)
    store_engine._execute = counted

    engine = store_engine.create_engine(sys.argv[1])
    columns = ("kind", "body", "received_at", "browser")
    group = store_engine.GroupCommit(engine.dialect, inbox, columns)
    rows = [("track", '{"n":%d}' % n, 1.0, False) for n in range(10)]
    gevent.joinall([gevent.spawn(group.insert, engine, row) for row in rows], raise_error=True)
    with engine.connect() as conn:
        print(statements, conn.execute(sa.select(sa.func.count()).select_from(inbox)).scalar())
""")


def test_requests_ready_together_in_a_gevent_worker_share_one_statement(app: Flask) -> None:
    url = app.extensions["engine"].url.render_as_string(hide_password=False)
    worker = subprocess.run(
        [sys.executable, "-c", TEN_AT_ONCE, url],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert worker.returncode == 0, worker.stderr
    # Without giving way first: [1, 9] on PostgreSQL, ten statements of one on SQLite.
    assert worker.stdout == "[10] 10\n"
