"""claim indexes that keep a claim fast under a large backlog

Revision ID: 0002
Revises: 0001

The first indexes made SQLite sort every due row for each claim (`ORDER BY id`
over an `available_at` range) and let it answer the per-person check from the
wrong index, so a claim grew with the backlog (bench/backlog: 16 ms at 10k rows,
2 s at 1M). Ordering the due index by id, and putting `state` into the person
index so that it covers the check, keeps it at 10-20 ms.
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_index("outbox_due")
        batch.drop_index("outbox_person")
        batch.create_index("outbox_due", ["destination", "state", "id"])
        batch.create_index("outbox_person", ["destination", "person", "state", "id"])


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_index("outbox_person")
        batch.drop_index("outbox_due")
        batch.create_index("outbox_person", ["destination", "person", "id"])
        batch.create_index("outbox_due", ["destination", "state", "available_at"])
