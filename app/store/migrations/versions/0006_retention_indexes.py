"""indexes for retention and for the dashboard's last-hour counts

Revision ID: 0006
Revises: 0005

The worker now prunes what is older than DATA_RETENTION, and /admin counts the
last hour's traffic: both find their rows by time. Without these indexes each
scanned whole tables (547 ms for /admin at a million received rows).
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

INDEXES = {
    "received_received_at": ("received", ["source", "received_at"]),
    "outbox_finished": ("outbox", ["state", "finished_at"]),
    "skipped_at": ("skipped", ["at"]),
    "identities_updated_at": ("identities", ["updated_at"]),
    "campaign_members_at": ("campaign_members", ["at"]),
}


def upgrade() -> None:
    for name, (table, columns) in INDEXES.items():
        op.create_index(name, table, columns)


def downgrade() -> None:
    for name, (table, _) in INDEXES.items():
        op.drop_index(name, table_name=table)
