"""Alembic environment: runs against the connection `app.store.upgrade` hands in."""

from alembic import context

from app.store.tables import metadata

connection = context.config.attributes["connection"]
# A connection already in a transaction (SQLite, app/store/migrate.py) runs every
# migration in it; one that is not (PostgreSQL), each migration in its own.
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=True,
    transaction_per_migration=True,
)
with context.begin_transaction():
    context.run_migrations()
