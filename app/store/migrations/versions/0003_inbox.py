"""inbox: /v1 requests stored whole and mapped later by the worker

Revision ID: 0003
Revises: 0002

Validating, de-duplicating and mapping every message inside the HTTP request
held ingest to a quarter of a no-op handler's rate (bench/ingest); the tracking
API now stores each request as one row and answers, as Segment's own API does.
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "inbox",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("received_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("inbox")
