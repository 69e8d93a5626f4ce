"""Migrations carry waiting work across versions."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from segment.analytics.version import VERSION as LIBRARY_VERSION

from app import __version__
from app.store import create_engine, received, upgrade
from app.store.tables import metadata, outbox
from tests.conftest import ACCOUNT_ID

ENVELOPE = {
    "event": "subscriber.opened_email",
    "data": {
        "account_id": ACCOUNT_ID,
        "subscriber": {"id": "s1", "email": "Ada@Example.com"},
        "properties": {"email_id": "e1"},
    },
    "occurred_at": "2026-11-26T10:00:00Z",
}
RECORD = {"email": "grace@example.com", "action": "Signed Up"}


def _empty(engine: sa.Engine) -> None:
    """No schema at all (the fixture's PostgreSQL database comes migrated)."""
    with engine.begin() as conn:
        for table in (*reversed(metadata.sorted_tables), "alembic_version"):
            conn.execute(sa.text(f"DROP TABLE IF EXISTS {table}"))


def _row(destination: str, body: object, state: str = "pending") -> dict[str, object]:
    return {"destination": destination, "kind": "track" if destination == "segment" else "event",
            "person": "p", "body": body, "message_id": f"m-{destination}-{state}",
            "state": state, "received_at": 1.0, "available_at": 1.0}  # fmt: skip


def test_0004_maps_waiting_segment_rows_and_names_each_rows_person(database_url: str) -> None:
    engine = create_engine(database_url)
    _empty(engine)
    upgrade(engine, "0003")
    unmappable = {"event": "subscriber.opened_email", "data": {"subscriber": {}}}
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO outbox (destination, kind, person, body, message_id, state, "
                "received_at, available_at) VALUES (:destination, :kind, :person, :body, "
                ":message_id, :state, :received_at, :available_at)"
            ).bindparams(sa.bindparam("body", type_=sa.JSON)),
            [
                _row("segment", ENVELOPE),
                _row("segment", unmappable, "dead"),
                _row("drip", RECORD),
                _row("segment", ENVELOPE, "done"),
            ],
        )
    upgrade(engine)
    with engine.connect() as conn:
        rows = list(conn.execute(sa.select(outbox).order_by(outbox.c.id)))
    engine.dispose()
    mapped = rows[0].body
    assert mapped["context"]["library"] == {"name": "analytics-python", "version": LIBRARY_VERSION}
    assert {k: mapped[k] for k in ("type", "event", "anonymousId", "timestamp")} == {
        "type": "track",
        "event": "Email Opened",
        "anonymousId": "Ada@Example.com",
        "timestamp": "2026-11-26T10:00:00.000+00:00",
    }
    assert mapped["context"]["integration"] == {"name": "drip-bridge", "version": __version__}
    assert (rows[0].state, rows[0].email) == ("pending", "Ada@Example.com")
    assert (rows[1].state, rows[1].error_code) == ("dead", "unmappable")
    assert (rows[2].body, rows[2].email) == (RECORD, "grace@example.com")
    assert (rows[3].body, rows[3].email) == (ENVELOPE, None)  # delivered: left as it was


def test_0005_keeps_received_ids_and_keys_them_by_source(database_url: str) -> None:
    engine = create_engine(database_url)
    _empty(engine)
    upgrade(engine, "0004")
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO received (message_id, source, payload, received_at) "
                "VALUES ('drip-abc', 'segment', '{}', 1.0)"
            )
        )
    upgrade(engine)
    with engine.begin() as conn:
        fresh = received.accept(conn, "drip", [("drip-abc", {}), ("m-2", {})], 2.0)
        again = received.accept(conn, "segment", [("drip-abc", {})], 3.0)
    engine.dispose()
    assert (fresh, again) == ({"drip-abc", "m-2"}, set())  # each source its own ids


def test_0011_compresses_waiting_requests_with_lz4_on_postgresql(postgres_url: str) -> None:
    engine = create_engine(postgres_url)
    upgrade(engine)
    with engine.connect() as conn:
        offered = conn.execute(
            sa.text("SELECT enumvals FROM pg_settings WHERE name = 'default_toast_compression'")
        ).scalar()
        column = conn.execute(
            sa.text(
                "SELECT attcompression FROM pg_attribute"
                " WHERE attrelid = 'inbox'::regclass AND attname = 'body'"
            )
        ).scalar_one()
    engine.dispose()
    if not offered or "lz4" not in offered:
        pytest.skip("this PostgreSQL server offers no lz4")
    assert column == "l"  # set on the column itself, whatever the server's default


def test_0012_indexes_outbox_message_id_and_rebuilds_an_invalid_one(database_url: str) -> None:
    """On PostgreSQL CONCURRENTLY, outside any transaction: a build that failed left an
    invalid index and the revision at 0011; the next upgrade builds it again."""
    engine = create_engine(database_url)
    _empty(engine)
    upgrade(engine, "0011")
    postgres = engine.dialect.name == "postgresql"
    if postgres:  # what a cancelled CREATE INDEX CONCURRENTLY leaves: an invalid index
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE INDEX outbox_message_id ON outbox (message_id)"))
            conn.execute(
                sa.text(
                    "UPDATE pg_index SET indisvalid = false"
                    " WHERE indexrelid = 'outbox_message_id'::regclass"
                )
            )
    upgrade(engine)
    with engine.connect() as conn:
        revision = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one()
        indexes = {i["name"]: i["column_names"] for i in sa.inspect(conn).get_indexes("outbox")}
        validity = (
            "SELECT indisvalid FROM pg_index WHERE indexrelid = 'outbox_message_id'::regclass"
        )
        valid = not postgres or conn.execute(sa.text(validity)).scalar_one()
    engine.dispose()
    assert (revision, indexes["outbox_message_id"], valid) == ("0012", ["message_id"], True)
