"""rows delivered merged into one Drip record remember which record

Revision ID: 0010
Revises: 0009

`outbox.merged_into` is the id of the first row of the merged record a row went out
in (DRIP_COALESCE), so /admin can show the messages merged and the records saved.
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(
            sa.Column("merged_into", sa.BigInteger().with_variant(sa.Integer, "sqlite"))
        )


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("merged_into")
