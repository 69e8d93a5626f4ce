"""A fresh PostgreSQL database, as a platform's add-on hands one out, for tests and benchmarks."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa


@contextmanager
def fresh_database(admin_url: str, prefix: str) -> Iterator[sa.URL]:
    """A new, empty database on the server of `admin_url`, dropped afterwards (connections
    still open included); sa.exc.OperationalError at once when the server is unreachable."""
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f"CREATE DATABASE {name}"))
        try:
            yield admin.url.set(database=name)
        finally:
            with admin.connect() as conn:
                conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    finally:
        admin.dispose()
