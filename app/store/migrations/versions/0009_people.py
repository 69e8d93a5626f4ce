"""people both ways: deletions done, unsubscribes remembered, custom-field names

Revision ID: 0009
Revises: 0008

A Segment deletion request leaves one row of ids and times as proof; a person
unsubscribed from all mailings is remembered so that no later upsert resubscribes
them; and each Drip custom-field key keeps the Segment trait name it came from, for
the Identify calls built from Drip's webhooks.
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "deletions",
        sa.Column("message_id", sa.String(200), primary_key=True),
        sa.Column("user_id", sa.String(200), nullable=False),
        sa.Column("subscribers", sa.Integer, nullable=False),
        sa.Column("requested_at", sa.Float, nullable=False),
    )
    op.create_index("deletions_requested_at", "deletions", ["requested_at"])
    op.create_table(
        "unsubscribes",
        sa.Column("email", sa.String(320), primary_key=True),
        sa.Column("at", sa.Float, nullable=False),
    )
    op.create_table(
        "field_names",
        sa.Column("drip_key", sa.String(200), primary_key=True),
        sa.Column("segment_key", sa.String(200), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("field_names")
    op.drop_table("unsubscribes")
    op.drop_index("deletions_requested_at", "deletions")
    op.drop_table("deletions")
