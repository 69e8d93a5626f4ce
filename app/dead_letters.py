"""`drip-bridge dead-letters list / replay / discard`: act on what could not be delivered.

The store work is in `app.store.dead_letters`; these commands parse, call and print.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import click
import sqlalchemy as sa
from flask import Flask
from flask.cli import AppGroup

from app import store
from app.store import dead_letters, outbox

Action = Callable[[sa.Connection, Sequence[int] | None, str | None, float], list[int]]
COLUMNS = ("id", "destination", "kind", "person", "attempts", "dead_at", "error_code", "error")

group = AppGroup("dead-letters", help="Inspect and act on what could not be delivered.")
destination_option = click.option(
    "--destination", type=click.Choice(["drip", "segment"]), help="Only this destination."
)


def iso(seconds: float | None) -> str | None:
    """Unix seconds as ISO-8601 UTC, to the second."""
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def as_dict(row: sa.Row[Any]) -> dict[str, Any]:
    """One dead letter for --json: the row, its body and the message it came from."""
    return {
        "id": row.id,
        "destination": row.destination,
        "kind": row.kind,
        "person": row.email or row.person,  # rows stored before migration 0004 have no email
        "campaign_id": row.campaign_id,
        "attempts": row.attempts,
        "received_at": iso(row.received_at),
        "dead_at": iso(row.finished_at),
        "error_code": row.error_code,
        "error": row.error,
        "message_id": row.message_id,
        "body": row.body,
        "message": row.message,
    }


def cell(value: Any) -> str:
    """A value on one line; nothing for None."""
    return "" if value is None else " ".join(str(value).split())


def table(rows: Sequence[sa.Row[Any]]) -> str:
    """Aligned columns, the error last (it is the long one)."""
    lines = [
        [c.upper() for c in COLUMNS],
        *([cell(letter[c]) for c in COLUMNS] for letter in map(as_dict, rows)),
    ]
    widths = [max(len(line[i]) for line in lines) for i in range(len(COLUMNS) - 1)]
    return "\n".join(
        "  ".join([*(text.ljust(w) for text, w in zip(line, widths, strict=False)), line[-1]])
        for line in lines
    )


@group.command("list", help="Show dead letters, oldest first.")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@destination_option
@click.option("--json", "as_json", is_flag=True, help="JSON, with the body and original message.")
def list_command(limit: int, destination: str | None, as_json: bool) -> None:
    with store.reading(store.engine()) as conn:
        rows = dead_letters.read(conn, destination, limit)
        total = dead_letters.count(conn, destination) if len(rows) == limit else len(rows)
    if as_json:
        click.echo(json.dumps([as_dict(row) for row in rows], indent=2, ensure_ascii=False))
    elif not rows:
        click.echo("no dead letters" + (f" for {destination}" if destination else ""))
    else:
        click.echo(table(rows))
        if total > len(rows):
            click.echo(f"... and {total - len(rows)} more (raise --limit to see them)")


def apply(action: Action, done: str, ids: tuple[int, ...], every: bool, dest: str | None) -> None:
    """Run `action` on `ids` (or all), print how many rows it changed, fail on unknown ids."""
    if bool(ids) == every:
        raise click.UsageError("give either the ids of dead letters or --all")
    with store.writing(store.engine()) as conn:
        changed = action(conn, None if every else ids, dest, time.time())
    click.echo(f"{done} {len(changed)} dead letter{'' if len(changed) == 1 else 's'}")
    unknown = sorted(set(ids) - set(changed))
    if unknown:
        where = f" for {dest}" if dest else ""
        names = ", ".join(str(i) for i in unknown)
        raise click.ClickException(f"no dead letter{where} with id {names}")


@group.command("replay", help="Deliver dead letters again (back to pending, due now).")
@click.argument("ids", nargs=-1, type=int)
@click.option("--all", "every", is_flag=True, help="Every dead letter (of --destination).")
@destination_option
def replay_command(ids: tuple[int, ...], every: bool, destination: str | None) -> None:
    apply(dead_letters.replay, "replayed", ids, every, destination)


@group.command(
    "discard", help=f"Give up on dead letters (kept as state '{outbox.State.DROPPED}', never sent)."
)
@click.argument("ids", nargs=-1, type=int)
@click.option("--all", "every", is_flag=True, help="Every dead letter (of --destination).")
@destination_option
def discard_command(ids: tuple[int, ...], every: bool, destination: str | None) -> None:
    apply(dead_letters.discard, "discarded", ids, every, destination)


def init_app(app: Flask) -> None:
    app.cli.add_command(group)
