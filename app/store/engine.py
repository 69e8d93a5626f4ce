"""The engine and its transactions: SQLite (WAL) on one machine, PostgreSQL to scale out."""

from __future__ import annotations

import fcntl
import functools
import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa


def create_engine(url: str) -> sa.Engine:
    """An engine tuned for the outbox: WAL and a busy timeout on SQLite."""
    if not url.startswith("sqlite"):
        # JIT compilation costs ~10 ms a query once the outbox is large (its cost
        # estimate passes jit_above_cost) and never pays off for short OLTP queries.
        # No pre-ping: it cost a round trip and a third of a request's CPU; after a
        # restart of PostgreSQL the first use of a stale connection fails instead
        # (SQLAlchemy then renews the pool), a 503 the client retries, and
        # `execute_alone` tries again on a fresh connection itself.
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


class _WriterQueue:
    """SQLite writers queue on an OS file lock before BEGIN IMMEDIATE.

    SQLite's own busy handler polls with sleeps of up to tens of milliseconds, so
    under concurrent ingest most of a writer's wait was sleep; flock() wakes the
    next writer as soon as the lock is free. One descriptor per thread, because
    flock() does not exclude threads sharing a descriptor. (filelock's FileLock
    polls a non-blocking flock every `poll_interval`: the same sleeping again.)
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._local = threading.local()

    @contextmanager
    def held(self) -> Iterator[None]:
        if not hasattr(self._local, "file"):
            self._local.file = open(self.path, "a")  # noqa: SIM115 (kept for the thread)
        fcntl.flock(self._local.file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._local.file, fcntl.LOCK_UN)


@functools.cache
def _queue(path: str) -> _WriterQueue:
    return _WriterQueue(path)


@contextmanager
def _writers_turn(engine: sa.Engine) -> Iterator[None]:
    """On a SQLite file, wait for this writer's turn; elsewhere, go ahead."""
    if engine.dialect.name != "sqlite" or not engine.url.database:
        yield
        return
    path = f"{engine.url.database}.writers"
    with _queue(path).held():
        yield


@contextmanager
def writing(engine: sa.Engine) -> Iterator[sa.Connection]:
    """A write transaction, committed at the end (on SQLite, writers take turns)."""
    with _writers_turn(engine), engine.begin() as conn:
        yield conn


def execute_alone(engine: sa.Engine, statement: str, params: tuple[Any, ...]) -> None:
    """Run one statement as its own transaction, on the driver's connection.

    For the tracking API's single insert: SQLAlchemy's execution layer (events, an
    engine-issued BEGIN, result objects) cost more than the insert itself, and on
    PostgreSQL autocommit saves the BEGIN and COMMIT round trips (bench/ingest).
    Same turns and same errors (sa.exc.DBAPIError) as `writing`. `statement` uses
    the driver's placeholders (`engine.dialect.paramstyle`).
    """
    dbapi_error = engine.dialect.loaded_dbapi.Error
    for last_try in (False, True):
        try:
            _execute_once(engine, statement, params)
            return
        except _Disconnected:
            if last_try:
                raise
        except dbapi_error as exc:
            # Without the parameters: they carry people's data.
            raise sa.exc.DBAPIError.instance(statement, None, exc, dbapi_error) from exc


class _Disconnected(sa.exc.DBAPIError):
    """The server closed a pooled connection (a restart): worth one more try."""


def _execute_once(engine: sa.Engine, statement: str, params: tuple[Any, ...]) -> None:
    dbapi_error = engine.dialect.loaded_dbapi.Error
    conn = engine.raw_connection()  # a failure to connect is raised as the driver's error
    try:
        with _writers_turn(engine):  # as short as it can be: others wait for it
            _execute_alone(engine.dialect.name, conn.driver_connection, statement, params)
    except dbapi_error as exc:
        if not engine.dialect.is_disconnect(exc, conn.driver_connection, None):
            raise
        conn.invalidate()
        raise _Disconnected(statement, None, exc) from exc
    finally:
        conn.close()


def _execute_alone(dialect: str, driver: Any, statement: str, params: tuple[Any, ...]) -> None:
    if dialect != "postgresql":
        driver.execute(statement, params)  # pysqlite autocommits here (create_engine)
        return
    driver.autocommit = True
    try:
        driver.execute(statement, params)
    finally:
        driver.autocommit = False


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
