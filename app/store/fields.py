"""The Segment trait name behind each Drip custom-field key (`plan_type` <- `planType`),
for the Identify calls built from Drip's webhooks. Not personal data: names only.

Each function takes an open connection inside the caller's transaction.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from app.store.tables import field_names


@functools.cache
def _upsert(dialect: str) -> Any:
    insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(field_names)
    return insert.on_conflict_do_update(
        index_elements=["drip_key"], set_={"segment_key": insert.excluded.segment_key}
    )


def remember(conn: sa.Connection, names: Mapping[str, str]) -> None:
    """Remember the trait name of each Drip key (the latest wins)."""
    if names:
        rows = [{"drip_key": k, "segment_key": v} for k, v in sorted(names.items())]
        conn.execute(_upsert(conn.dialect.name), rows)


def segment_names(conn: sa.Connection, keys: Iterable[str]) -> dict[str, str]:
    """The trait names known for `keys`; a key not in the result is its own name."""
    wanted = sorted(set(keys))
    if not wanted:
        return {}
    query = sa.select(field_names).where(field_names.c.drip_key.in_(wanted))
    return {row.drip_key: row.segment_key for row in conn.execute(query)}
