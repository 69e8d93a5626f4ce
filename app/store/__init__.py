"""The durable store, split by what it keeps: `received` (ids and skips), `people`
(identities, campaign members), `inbox`, `outbox` (with `claims`, `dead_letters` and
`recent` reading and leasing its rows), `workers`; `engine` holds the connections and
transactions, `migrate` the schema's history."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from flask import Flask, current_app

from app.store.engine import GroupCommit, create_engine, reading, writing
from app.store.migrate import db, upgrade

__all__ = ["GroupCommit", "create_engine", "engine", "init_app", "reading", "upgrade", "writing"]


def engine() -> sa.Engine:
    """The current app's engine."""
    eng: sa.Engine = current_app.extensions["engine"]
    return eng


def init_app(app: Flask) -> None:
    url = app.config["BRIDGE"].database_url
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    app.extensions["engine"] = create_engine(url)
    app.cli.add_command(db)
