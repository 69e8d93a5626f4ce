"""Shared fixtures: real databases (SQLite and PostgreSQL), real fake servers.

Every test that uses `app` runs twice, once per store. PostgreSQL is the machine's
(`TEST_POSTGRES_URL`, default the local trust-auth server); when it is unreachable
the Postgres half is skipped, except under CI=true, where it fails.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import NoReturn

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from playwright.sync_api import Browser, sync_playwright

from app.config import Config
from app.delivery.budget import dispose_budgets
from app.delivery.runner import create_worker
from app.delivery.worker import Worker
from app.factory import create_app
from app.simulators.drip import FakeDrip
from app.simulators.postgres import fresh_database
from app.simulators.segment import FakeSegment
from app.store import tables, upgrade

ACCOUNT_ID = "9999999"
DRIP_TOKEN = "drip-test-token"
WRITE_KEY = "bridge-test-write-key"
SHARED_SECRET = "segment-test-shared-secret"
SEGMENT_KEY = "segment-test-key"
WEBHOOK_TOKEN = "drip-webhook-test-token"
CHROMIUM = "/usr/bin/chromium"  # Debian's; Playwright downloads no browser of its own
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip
POSTGRES_ADMIN_URL = os.environ.get(
    "TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh database on the machine's PostgreSQL for this test session."""
    with postgres_database("drip_bridge_test") as database:
        url = database.render_as_string(hide_password=False)
        engine = sa.create_engine(url)
        upgrade(engine)
        engine.dispose()
        yield url


@contextmanager
def postgres_database(prefix: str) -> Iterator[sa.URL]:
    """A new, empty database on the machine's PostgreSQL, dropped afterwards; the test
    is skipped when PostgreSQL is unreachable (failed under CI=true)."""
    with ExitStack() as stack:
        try:
            database = stack.enter_context(fresh_database(POSTGRES_ADMIN_URL, prefix))
        except sa.exc.OperationalError as exc:
            required("PostgreSQL", f"unreachable: {type(exc).__name__}: {exc}")
        yield database


def required(what: str, how: str) -> NoReturn:
    """Skip a test that needs `what`, except under CI=true, where it fails."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} is required under CI=true ({how})")
    pytest.skip(f"no {what}")


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, driven by Playwright."""
    if not Path(CHROMIUM).exists():
        required(CHROMIUM, "`make services` installs it")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: os.PathLike[str]) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/bridge.sqlite3"
    url: str = request.getfixturevalue("postgres_url")
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        budgets = sa.inspect(conn).get_table_names()  # pyrate-limiter's rate buckets too
        names = [t.name for t in tables.metadata.sorted_tables]
        names += [n for n in budgets if n.startswith("ratelimit___")]
        conn.execute(sa.text(f"TRUNCATE {', '.join(names)} RESTART IDENTITY"))
    engine.dispose()
    return url


@pytest.fixture
def fake_drip() -> Iterator[FakeDrip]:
    fake = FakeDrip(token=DRIP_TOKEN, account_id=ACCOUNT_ID)
    with fake.serve():
        yield fake


@pytest.fixture
def fake_segment() -> Iterator[FakeSegment]:
    fake = FakeSegment(write_key=SEGMENT_KEY)
    with fake.serve():
        yield fake


def make_config(
    database_url: str, drip_url: str, segment_url: str = "http://127.0.0.1:9", **overrides: object
) -> Config:
    return Config(
        drip_account_id=ACCOUNT_ID,
        drip_api_token=DRIP_TOKEN,
        drip_api_url=drip_url,
        bridge_write_key=WRITE_KEY,
        segment_shared_secret=SHARED_SECRET,
        segment_write_key=SEGMENT_KEY,
        segment_api_host=segment_url,
        drip_webhook_token=WEBHOOK_TOKEN,
        database_url=database_url,
    ).with_overrides(overrides)


@pytest.fixture
def config(database_url: str, fake_drip: FakeDrip, fake_segment: FakeSegment) -> Config:
    return make_config(database_url, fake_drip.url, fake_segment.url)


@pytest.fixture
def app(config: Config) -> Iterator[Flask]:
    with running(config) as app:
        app.config["TESTING"] = True
        yield app


@contextmanager
def running(config: Config) -> Iterator[Flask]:
    """The bridge on a migrated store, its budgets and connections released after."""
    app = create_app(config)
    upgrade(app.extensions["engine"])
    try:
        yield app
    finally:
        dispose_budgets(app)
        app.extensions["engine"].dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def worker(app: Flask) -> Worker:
    return create_worker(app)


def drain(worker: Worker, limit: int = 50) -> int:
    """Run worker steps until one finds nothing; returns the steps that did work."""
    for steps in range(limit):
        if not worker.step():
            return steps
    raise AssertionError(f"the worker still had work after {limit} steps")
