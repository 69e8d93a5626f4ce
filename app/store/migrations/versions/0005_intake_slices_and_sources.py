"""large tracking-API requests are mapped in slices; ids are de-duplicated per source

Revision ID: 0005
Revises: 0004

`inbox.mapped` counts the messages of a request already mapped, so a request of
thousands of messages no longer holds SQLite's write lock for seconds. The key of
`received` becomes (source, message_id): a Segment message can no longer claim the
id of a Drip webhook before it arrives, nor the other way round.
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("inbox") as batch:
        batch.add_column(sa.Column("mapped", sa.Integer, nullable=False, server_default="0"))
    _rekey_received(("source", "message_id"))


def downgrade() -> None:
    _rekey_received(("message_id",))
    with op.batch_alter_table("inbox") as batch:
        batch.drop_column("mapped")


def _rekey_received(key: tuple[str, ...]) -> None:
    """A new `received` with primary key `key`, the rows copied (works on both stores)."""
    op.create_table(
        "received_new",
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("message_id", sa.String(200), nullable=False),
        sa.Column("payload", sa.JSON, nullable=False),
        sa.Column("received_at", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint(*key),
    )
    columns = "source, message_id, payload, received_at"
    op.execute(f"INSERT INTO received_new ({columns}) SELECT {columns} FROM received")
    op.drop_table("received")
    op.rename_table("received_new", "received")
