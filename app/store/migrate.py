"""The schema's migrations (Alembic) and `drip-bridge db upgrade` (the release process)."""

from __future__ import annotations

from pathlib import Path

import click
import sqlalchemy as sa
from alembic import command
from alembic.config import Config as AlembicConfig
from flask import current_app
from flask.cli import with_appcontext

from app.store.engine import writing

MIGRATIONS = Path(__file__).parent / "migrations"


def upgrade(engine: sa.Engine, revision: str = "head") -> None:
    """Create or migrate the schema to `revision` (default: the newest).

    On SQLite all in one transaction, in the writers' turn. On PostgreSQL each migration
    in its own (migrations/env.py), so that one may build an index CONCURRENTLY (0012),
    which no transaction can hold.
    """
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with writing(engine) if engine.dialect.name == "sqlite" else engine.connect() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


@click.group(help="Manage the database schema.")
def db() -> None:
    pass


@db.command("upgrade", help="Create or migrate the schema (the release process).")
@with_appcontext
def db_upgrade() -> None:
    upgrade(current_app.extensions["engine"])
    click.echo("database schema is up to date")
