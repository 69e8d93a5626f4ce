"""SQLite's writers take turns (app/store/engine.py `_WriterTurn`) without any process
waiting on itself: a gevent worker's greenlets, its delivery greenlet, other processes."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from app.store import GroupCommit, create_engine, upgrade, writing
from app.store.tables import inbox
from tests.processes import ROOT

COLUMNS = ("kind", "body", "received_at", "browser")

GEVENT = """
    from gevent import monkey
    monkey.patch_all()
    import importlib, sys, time
    import gevent
    import sqlalchemy as sa
    store_engine = importlib.import_module("app.store.engine")  # app.store.engine() shadows it
    from app.store.tables import inbox

    engine = store_engine.create_engine(sys.argv[1])
    row = ("track", "{}", 1.0, False)
    columns = ("kind", "body", "received_at", "browser")
    group = store_engine.GroupCommit(engine.dialect, inbox, columns)

    def count():
        with engine.connect() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(inbox)).scalar()
"""

# The delivery greenlet of `serve` holds the turn across a switch (it waits for a rate
# budget token inside its claim), while a request's greenlet wants to store its row.
HOLDER_SWITCHES = """
    def delivery():
        with store_engine.writing(engine) as conn:
            gevent.sleep(0.2)
            conn.execute(inbox.insert().values(kind="track", body="{}", received_at=1.0,
                                               browser=False))

    def request():
        group.insert(engine, row)

    holder = gevent.spawn(delivery)
    gevent.sleep(0.05)
    gevent.joinall([holder, gevent.spawn(request), gevent.spawn(request)], raise_error=True)
    print(count())
"""

# Another process holds the turn; this one waits for it meanwhile.
OTHER_PROCESS_HOLDS = """
    ticks = 0
    def ticker():
        global ticks
        while True:
            gevent.sleep(0.01)
            ticks += 1

    gevent.spawn(ticker)
    print("ready", flush=True)
    sys.stdin.readline()  # the other process holds the turn
    started = time.monotonic()
    group.insert(engine, row)
    print(f"{time.monotonic() - started:.1f}", ticks)
"""

HOLD_UNTIL_TOLD = """
    import importlib, sys
    store_engine = importlib.import_module("app.store.engine")
    engine = store_engine.create_engine(sys.argv[1])
    with store_engine.writing(engine):
        print("holding", flush=True)
        sys.stdin.readline()
"""


def _database(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'bridge.db'}"
    engine = create_engine(url)
    upgrade(engine)
    engine.dispose()
    return url


@pytest.fixture
def python() -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """Starts `python -c script url`; kills what is left at the end (a process that
    stood still on the old code would otherwise outlive the test)."""
    started: list[subprocess.Popen[str]] = []

    def start(script: str, url: str, **kwargs: object) -> subprocess.Popen[str]:
        started.append(_python(script, url, **kwargs))
        return started[-1]

    yield start
    for proc in started:
        proc.kill()
        proc.wait()


def _python(script: str, url: str, **kwargs: object) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script), url],
        cwd=ROOT, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs,  # type: ignore[call-overload]
    )  # fmt: skip


def test_a_greenlet_waiting_for_the_turn_lets_the_greenlet_holding_it_finish(
    tmp_path: Path, python: Callable[..., subprocess.Popen[str]]
) -> None:
    # Before: the second greenlet's flock blocked the event loop, so the holder never
    # ran to its release; the process stood still until gunicorn killed it.
    worker = python(GEVENT + HOLDER_SWITCHES, _database(tmp_path))
    out, err = worker.communicate(timeout=30)
    assert worker.returncode == 0, err
    assert out == "3\n"


def test_waiting_for_another_process_turn_leaves_the_event_loop_serving(
    tmp_path: Path, python: Callable[..., subprocess.Popen[str]]
) -> None:
    url = _database(tmp_path)
    holder = python(HOLD_UNTIL_TOLD, url, stdin=subprocess.PIPE)
    waiter = python(GEVENT + OTHER_PROCESS_HOLDS, url, stdin=subprocess.PIPE)
    assert holder.stdout is not None and holder.stdout.readline() == "holding\n"
    assert waiter.stdout is not None and waiter.stdout.readline() == "ready\n"
    assert waiter.stdin is not None and holder.stdin is not None
    waiter.stdin.write("go\n")
    waiter.stdin.flush()
    time.sleep(1.0)
    holder.communicate("release\n", timeout=30)
    out, err = waiter.communicate(timeout=30)
    assert holder.returncode == 0
    assert waiter.returncode == 0, err
    waited, ticks = out.split()
    # The ticker ran on while the row waited (100 ticks a second when nothing blocks).
    assert float(waited) >= 0.5
    assert int(ticks) >= 0.5 * 100 * float(waited)


def test_a_write_transaction_follows_a_group_commit_on_the_same_connection(
    tmp_path: Path,
) -> None:
    # Python 3.12 gave sqlite3's connections an `autocommit` attribute; setting it back
    # to False after a group opened a transaction, and the pool's next BEGIN failed.
    engine = create_engine(_database(tmp_path))
    group = GroupCommit(engine.dialect, inbox, COLUMNS)
    group.insert(engine, ("track", "{}", 1.0, False))
    with writing(engine) as conn:
        conn.execute(inbox.insert().values(kind="track", body="{}", received_at=2.0, browser=False))
    group.insert(engine, ("track", "{}", 3.0, False))
    with engine.connect() as conn:
        times = conn.execute(sa.select(inbox.c.received_at).order_by(inbox.c.id)).scalars()
        assert list(times) == [1.0, 2.0, 3.0]
    engine.dispose()
