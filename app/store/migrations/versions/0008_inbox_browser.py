"""the inbox remembers which requests came with the browser's key

Revision ID: 0008
Revises: 0007

BROWSER_WRITE_KEY is public (it sits in every page's source), so what a message
sent with it may do is restricted: it never renames a person nor chooses another
campaign. The worker maps the inbox later, so each request keeps the mark.
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("inbox") as batch:
        batch.add_column(
            sa.Column("browser", sa.Boolean, nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("inbox") as batch:
        batch.drop_column("browser")
