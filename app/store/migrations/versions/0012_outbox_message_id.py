"""an index on outbox.message_id, for retention

Revision ID: 0012
Revises: 0011

Retention keeps the received payload of every message with a pending or dead outbox
row: without an index each old received row scanned the whole outbox (0.84 s for 400
rows against 20,000 pending ones; minutes against a million), inside the write
transaction. With it, one index probe a row (bench/results/retention.md).

On PostgreSQL the index is built CONCURRENTLY: outbox keeps taking inserts while it
builds (seconds a million rows), where a plain CREATE INDEX would block them all that
time. CONCURRENTLY cannot run in a transaction, so the migration commits what precedes
it (app/store/migrate.py runs each migration in its own transaction on PostgreSQL).
A build that fails (cancelled, the connection lost) leaves an invalid index behind
and the revision at 0011: the next run drops it and builds it again. It waits for
transactions already running on outbox to end, but blocks none, so no lock_timeout.
"""

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        op.create_index("outbox_message_id", "outbox", ["message_id"])
        return
    with op.get_context().autocommit_block():
        op.execute("DROP INDEX CONCURRENTLY IF EXISTS outbox_message_id")
        op.execute("CREATE INDEX CONCURRENTLY outbox_message_id ON outbox (message_id)")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        op.drop_index("outbox_message_id", table_name="outbox")
        return
    with op.get_context().autocommit_block():
        op.execute("DROP INDEX CONCURRENTLY IF EXISTS outbox_message_id")
