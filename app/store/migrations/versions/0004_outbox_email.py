"""outbox rows say whom they are about; Segment rows hold the Track message itself

Revision ID: 0004
Revises: 0003

Every message is now mapped before it is stored, so an outbox body is always the
exact payload that leaves. Segment rows used to hold Drip's webhook envelope,
mapped at send time: the Segment rows still waiting (pending or dead) are mapped
here, with the same code as ingest. A row that cannot be mapped any more is
dead-lettered with the reason. The new `email` column is filled for waiting rows.
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

outbox = sa.table(
    "outbox",
    sa.column("id", sa.Integer),
    sa.column("destination", sa.String),
    sa.column("state", sa.String),
    sa.column("body", sa.JSON),
    sa.column("email", sa.String),
    sa.column("error_code", sa.String),
    sa.column("error", sa.Text),
)
WAITING = ("pending", "dead")


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("email", sa.String(320), nullable=True))
    conn = op.get_bind()
    rows = conn.execute(
        sa.select(outbox.c.id, outbox.c.destination, outbox.c.body).where(
            outbox.c.state.in_(WAITING)
        )
    )
    for row in rows.all():
        conn.execute(outbox.update().where(outbox.c.id == row.id).values(**_migrated(row)))


def _migrated(row: sa.Row) -> dict:
    if row.destination == "drip":
        return {"email": row.body.get("email")}
    from app import __version__
    from app.mapping.to_segment import to_track
    from app.segment_api import track_message

    envelope = row.body
    email = envelope.get("data", {}).get("subscriber", {}).get("email")
    try:
        return {"email": email, "body": track_message(**to_track(envelope, __version__))}
    except (ValueError, RuntimeError) as exc:
        return {"email": email, "state": "dead", "error_code": "unmappable", "error": str(exc)}


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("email")
