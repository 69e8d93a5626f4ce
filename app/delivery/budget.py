"""Drip's rate budgets, shared by every process that talks to Drip.

The counting is pyrate-limiter's, kept in the bridge's own database: a SQLite
bucket (with a file lock across processes) next to the SQLite store, a PostgreSQL
bucket in the PostgreSQL store. Taking waits a moment at most: a worker that finds
the budget spent leaves the work for later instead of sleeping on it.

pyrate-limiter's background Leaker (a thread running `asyncio.run`) is not started:
gunicorn's gevent workers refuse it ("asyncio.run() cannot be called from a running
event loop"), and it is not needed. A bucket counts the calls whose time falls in the
window, so leaking only deletes calls older than it; each budget does that itself,
once a window, in the process that takes.
"""

from __future__ import annotations

import time

import sqlalchemy as sa
from flask import Flask
from pyrate_limiter import Duration, Limiter, RateItem, SingleBucketFactory
from pyrate_limiter import Rate as LimiterRate
from pyrate_limiter.abstracts import AbstractBucket
from pyrate_limiter.buckets import PostgresBucket, SQLiteBucket

from app.config import Rate

LOCK_WAIT = 0.1  # seconds a take may wait for the bucket (and for a token)
MIN_WAIT = 0.02  # seconds before a process tries a spent budget again, at least


class Budget:
    """`rate.count` calls per `rate.period` seconds, for all processes together."""

    def __init__(self, name: str, rate: Rate, bucket: AbstractBucket) -> None:
        self.name = name
        self.rate = rate
        self.bucket = bucket
        self.limiter = Limiter(SingleBucketFactory(bucket, schedule_leak=False))
        self.suspended_until = 0.0
        self._leaked_at = float("-inf")

    @property
    def interval(self) -> float:
        """Seconds between calls when the budget is spread evenly."""
        return self.rate.period / self.rate.count

    @property
    def available(self) -> bool:
        """False while the budget is known to be spent: no point claiming work for it."""
        return time.time() >= self.suspended_until

    def take(self) -> bool:
        """Spend one call if the budget has one now (take it right before the call)."""
        if not self.available:
            return False
        self._leak_now_and_then()
        # Blocking for at most a moment: the bucket's lock is shared with other
        # processes, so a non-blocking try would fail now and then while the budget
        # still has room.
        if self.limiter.try_acquire(self.name, blocking=True, timeout=LOCK_WAIT):
            return True
        self.suspend_for(self._until_next())
        return False

    def _until_next(self) -> float:
        """Seconds until the window frees a call, as the bucket reckons it (at least a
        moment, at most an interval): a token is tried again as soon as it is there."""
        wait_ms = self.bucket.waiting(RateItem(self.name, int(time.time() * 1000)))
        seconds = wait_ms / 1000 if isinstance(wait_ms, int | float) else self.interval
        return min(max(seconds, MIN_WAIT), self.rate.period)

    def remaining(self) -> int:
        """Calls left in the current window (for /metrics)."""
        self.bucket.leak(int(time.time() * 1000))
        return max(0, self.rate.count - int(self.bucket.count()))  # type: ignore[arg-type]

    def _leak_now_and_then(self) -> None:
        """Delete the calls older than the window, once a window (they no longer count)."""
        now = time.time()
        if now - self._leaked_at >= self.rate.period:
            self._leaked_at = now
            self.bucket.leak(int(now * 1000))

    def dispose(self) -> None:
        """Release the bucket's connections."""
        pool = getattr(self.bucket, "pool", None)  # the PostgreSQL bucket's own pool
        if pool is not None:
            pool.close()
        else:
            self.bucket.close()

    def suspend_for(self, seconds: float) -> None:
        """Drip answered 429: spend nothing more until its window turns."""
        self.suspended_until = max(self.suspended_until, time.time() + seconds)


def limiter_rate(rate: Rate) -> LimiterRate:
    """The window a little longer than Drip's (5%, at most a second): the margin covers
    the time between taking a call and Drip counting it (the token is taken before its
    rows are claimed), so Drip never sees one too many."""
    margin = min(1.0, 0.05 * rate.period)
    return LimiterRate(rate.count, int((rate.period + margin) * Duration.SECOND))


def budget(name: str, rate: Rate, database_url: str) -> Budget:
    """A budget kept in the store's database (`database_url`, SQLAlchemy form)."""
    url = sa.make_url(database_url)
    rates = [limiter_rate(rate)]
    table = f"drip_budget_{name}"
    bucket: AbstractBucket
    if url.get_backend_name() == "sqlite":
        path = f"{url.database}.budget"  # beside the store: its own file, its own lock
        bucket = SQLiteBucket.init_from_file(rates, table=table, db_path=path, use_file_lock=True)
    else:
        from psycopg_pool import ConnectionPool

        conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
        pool = ConnectionPool(conninfo, min_size=1, max_size=2, open=True)
        bucket = PostgresBucket(pool, table, rates)
    return Budget(name, rate, bucket)


def shared_budgets(app: Flask) -> tuple[Budget, Budget]:
    """This process's handles on the (single-call, batch-call) budgets, made once and
    shared by its threads."""
    if "budgets" not in app.extensions:
        cfg = app.config["BRIDGE"]
        app.extensions["budgets"] = (
            budget("individual", cfg.drip_rate_limit, cfg.database_url),
            budget("batch", cfg.drip_batch_rate_limit, cfg.database_url),
        )
    pair: tuple[Budget, Budget] = app.extensions["budgets"]
    return pair


def dispose_budgets(app: Flask) -> None:
    """Release the budgets' connections (an app that is done: tests, shutdown)."""
    for held in app.extensions.pop("budgets", ()):
        held.dispose()
