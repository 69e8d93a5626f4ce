"""The engine and its transactions: SQLite (WAL) on one machine, PostgreSQL to scale out."""

from __future__ import annotations

import fcntl
import functools
import json
import os
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.pool import PoolProxiedConnection


def create_engine(url: str) -> sa.Engine:
    """An engine tuned for the outbox: WAL and a busy timeout on SQLite."""
    if not url.startswith("sqlite"):
        # JIT compilation costs ~10 ms a query once the outbox is large (its cost
        # estimate passes jit_above_cost) and never pays off for short OLTP queries.
        # No pre-ping: it cost a round trip and a third of a request's CPU; after a
        # restart of PostgreSQL the first use of a stale connection fails instead
        # (SQLAlchemy then renews the pool), a 503 the client retries, and
        # `GroupCommit` tries again on a fresh connection itself.
        return sa.create_engine(
            url,
            pool_size=5,
            max_overflow=5,
            connect_args={"options": "-c jit=off"},
        )
    engine = sa.create_engine(url, connect_args={"timeout": 30})

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
        # pysqlite's own transaction handling would defer BEGIN past our first
        # SELECT; taking the write lock up front (BEGIN IMMEDIATE) makes every
        # claim atomic across processes.
        dbapi_conn.isolation_level = None
        dbapi_conn.execute("PRAGMA journal_mode=WAL")
        dbapi_conn.execute("PRAGMA synchronous=NORMAL")
        dbapi_conn.execute("PRAGMA busy_timeout=30000")

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        read_only = conn.get_execution_options().get("read_only", False)
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

    return engine


class _WriterTurn:
    """One writer at a time on a SQLite file, among the threads of a process and
    among processes.

    Within a process writers wait on a lock, which gevent's workers make a greenlet
    lock: a greenlet waiting for it lets the holder run on to its release. Only the
    holder then takes the OS file lock (flock on `<database>.writers`) that orders
    processes, so no process ever waits on a lock one of its own greenlets holds.
    When another process holds it, the wait leaves the event loop (gevent's
    threadpool) and the process serves its other requests meanwhile. flock wakes the
    next writer as soon as the lock is free; SQLite's own busy handler would poll
    with sleeps of up to tens of milliseconds, holding the event loop as it sleeps.

    Each turn opens the file anew and closing it gives the lock back: a greenlet
    killed while its wait goes on in the threadpool closes its descriptor, so the
    lock the thread then takes goes with the thread's last use of it.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()

    @contextmanager
    def held(self) -> Iterator[None]:
        with self._lock, open(self.path, "a") as file:
            try:
                fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:  # another process writes: wait off the event loop
                _off_the_loop(fcntl.flock, file, fcntl.LOCK_EX)
            yield


def _off_the_loop(call: Callable[..., Any], *args: Any) -> Any:
    """`call(*args)` in gevent's threadpool when this thread runs gevent's loop (it
    blocks), else here."""
    monkey = sys.modules.get("gevent.monkey")
    if monkey is not None and monkey.is_module_patched("threading"):
        import gevent

        return gevent.get_hub().threadpool.apply(call, args)
    return call(*args)


@functools.cache
def _turn(path: str, pid: int) -> _WriterTurn:
    """The process's turn (by pid: a forked child makes its own lock)."""
    return _WriterTurn(path)


@contextmanager
def _writers_turn(engine: sa.Engine) -> Iterator[None]:
    """On a SQLite file, wait for this writer's turn; elsewhere, go ahead."""
    if engine.dialect.name != "sqlite" or not engine.url.database:
        yield
        return
    with _turn(f"{engine.url.database}.writers", os.getpid()).held():
        yield


@contextmanager
def writing(engine: sa.Engine) -> Iterator[sa.Connection]:
    """A write transaction, committed at the end (on SQLite, writers take turns)."""
    with _writers_turn(engine), engine.begin() as conn:
        yield conn


@dataclass(eq=False)
class _Row:
    params: tuple[Any, ...]
    settled: bool = False
    error: sa.exc.DBAPIError | None = None


class GroupCommit:
    """Rows that concurrent requests of one process insert, committed together.

    `insert` returns once the caller's row is committed, or raises its error. A caller
    first gives way once (`time.sleep(0)`), so that the requests already read by then
    reach `insert` too; the first caller to get the turn then commits every waiting
    row with one statement, and rows that arrive during that commit wait for the next.
    Under load that is one commit for many requests instead of one each (bench/ingest);
    when nothing else is ready, giving way costs one switch and the row is committed
    at once, without waiting. Callers may be threads or gevent's greenlets, which
    gunicorn's gevent worker makes of `threading`'s locks and `time.sleep`.

    The statement runs on the driver's connection: SQLAlchemy's execution layer
    (events, an engine-issued BEGIN, result objects) cost more than the insert itself.
    On PostgreSQL it is autocommitted, saving the BEGIN and COMMIT round trips. The
    connection passes from group to group while rows wait, and goes back to the pool
    when none do.
    """

    def __init__(self, dialect: sa.Dialect, table: sa.Table, columns: Sequence[str]) -> None:
        self.inserts = _inserts(dialect, table, columns)
        self._waiting: list[_Row] = []
        self._guard = threading.Lock()  # over _waiting
        self._turn = threading.Lock()  # one group at a time, on _connection
        self._connection: PoolProxiedConnection | None = None

    @property
    def waiting(self) -> int:
        """Rows no group has taken yet (their callers giving way, or waiting for the
        group in flight)."""
        return len(self._waiting)

    @property
    def committing(self) -> bool:
        """Whether a group is being committed."""
        return self._turn.locked()

    def insert(self, engine: sa.Engine, params: tuple[Any, ...]) -> None:
        row = _Row(params)
        with self._guard:
            self._waiting.append(row)
        time.sleep(0)  # give way: the other requests ready now join this group
        with self._turn:
            if not row.settled:
                with self._guard:
                    group, self._waiting = self._waiting, []
                self._commit(engine, group)
        if row.error is not None:
            raise row.error

    def _commit(self, engine: sa.Engine, group: list[_Row]) -> None:
        try:
            self._settle(engine, group)
        finally:
            if not self._waiting:
                self._give_back()
            # Interrupted (a stopping worker): no caller may take its row as stored.
            interrupted = ConnectionAbortedError("interrupted before its commit")
            for row in group:
                if not row.settled:
                    row.error = sa.exc.OperationalError(self.inserts[0], None, interrupted)
                    row.settled = True

    def _settle(self, engine: sa.Engine, group: list[_Row]) -> None:
        errors: list[sa.exc.DBAPIError | None]
        try:
            self._execute(engine, [row.params for row in group])
            errors = [None] * len(group)
        except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
            errors = [exc] * len(group)  # the store is unavailable, for every row
        except sa.exc.DBAPIError as exc:  # a row was refused: it alone must fail
            errors = [exc] if len(group) == 1 else [self._alone(engine, row) for row in group]
        for row, error in zip(group, errors, strict=True):
            row.error, row.settled = error, True

    def _alone(self, engine: sa.Engine, row: _Row) -> sa.exc.DBAPIError | None:
        try:
            self._execute(engine, [row.params])
        except sa.exc.DBAPIError as exc:
            return exc
        return None

    def _execute(self, engine: sa.Engine, rows: Sequence[tuple[Any, ...]]) -> None:
        """One statement for `rows`, committed; after a restart of the server, tried once
        more on a fresh connection. Errors as `writing`'s (sa.exc.DBAPIError), without
        the parameters: they carry people's data."""
        dbapi_error = engine.dialect.loaded_dbapi.Error
        for last_try in (False, True):
            try:
                driver = self._driver(engine)
                with _writers_turn(engine):  # as short as it can be: others wait for it
                    _execute(driver, self.inserts, rows)
                return
            except dbapi_error as exc:
                if self._connection is not None and engine.dialect.is_disconnect(
                    exc, self._connection.driver_connection, None
                ):
                    self._connection.invalidate()
                    self._connection = None
                    if not last_try:
                        continue
                raise sa.exc.DBAPIError.instance(self.inserts[0], None, exc, dbapi_error) from exc

    def _driver(self, engine: sa.Engine) -> Any:
        if self._connection is None:
            self._connection = engine.raw_connection()  # a failure is the driver's error
            _autocommit(self._connection.driver_connection, True)
        return self._connection.driver_connection

    def _give_back(self) -> None:
        if self._connection is not None:
            _autocommit(self._connection.driver_connection, False)
            self._connection.close()
            self._connection = None


def _autocommit(driver: Any, on: bool) -> None:
    """psycopg's switch. pysqlite's connections autocommit already (create_engine), and
    the `autocommit` attribute Python 3.12 gave them must stay unset: False would open
    a transaction on the pooled connection, and the next BEGIN would fail."""
    if not isinstance(driver, sqlite3.Connection):
        driver.autocommit = on


def _inserts(dialect: sa.Dialect, table: sa.Table, columns: Sequence[str]) -> tuple[str, str]:
    """The inserts of one row and of several, with the driver's placeholders. Several
    rows on PostgreSQL: one statement taking an array per column (binary: nothing to
    escape); on SQLite, the one row's statement run per row in one transaction."""
    one = f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES "
    if dialect.name != "postgresql":
        return one + f"({', '.join('?' for _ in columns)})", ""
    types = [table.c[c].type.compile(dialect=dialect) for c in columns]
    arrays = ", ".join(f"%b::{t}[]" for t in types)
    many = f"INSERT INTO {table.name} ({', '.join(columns)}) SELECT * FROM unnest({arrays})"
    return one + f"({', '.join('%s' for _ in columns)})", many


def _execute(driver: Any, inserts: tuple[str, str], rows: Sequence[tuple[Any, ...]]) -> None:
    """On a connection in autocommit (`_autocommit`)."""
    one, many = inserts
    if len(rows) == 1:
        driver.execute(one, rows[0])
    elif many:
        driver.execute(many, [list(column) for column in zip(*rows, strict=True)])
    else:
        driver.execute("BEGIN IMMEDIATE")
        try:
            driver.executemany(one, rows)
            driver.execute("COMMIT")
        except BaseException:
            if driver.in_transaction:
                driver.execute("ROLLBACK")
            raise


@contextmanager
def reading(engine: sa.Engine) -> Iterator[sa.Connection]:
    """A connection that only reads: on SQLite it takes no write lock, so it never
    waits behind ingest or the worker (WAL readers see the last commit)."""
    with engine.connect() as conn:
        yield conn.execution_options(read_only=True)


def mentions(column: sa.ColumnElement[Any], values: Iterable[str]) -> sa.ColumnElement[bool]:
    """True where the JSON stored in `column` holds one of `values` as a whole string,
    whatever its case (a full scan: for rare work such as a deletion)."""
    text = sa.func.lower(sa.cast(column, sa.Text))
    needles = [json.dumps(v).lower() for v in values if v]
    return sa.or_(sa.false(), *(text.contains(n, autoescape=True) for n in needles))
