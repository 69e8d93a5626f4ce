"""`drip-bridge preview [FILE]`: the calls a message would become, without sending.

Segment messages go through the same validation and mapping as `/segment`; a Drip
webhook through the same schema and rules as `/drip/webhook`. The store is only
read (known emails, campaign members, ids already received) so that the preview
says what the bridge would really do; nothing is written.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import IO, Any

import click
import sqlalchemy as sa
from flask import Flask, current_app
from flask.cli import with_appcontext

from app import store
from app.config import Config
from app.drip_api import INDIVIDUAL, WEBHOOK_PREFIX
from app.pipeline import drip, segment
from app.pipeline.errors import Refused
from app.pipeline.messages import messages_of
from app.store import outbox


def pretty(value: Any) -> str:
    """Indented JSON."""
    return json.dumps(value, indent=2, ensure_ascii=False)


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def load_json(source: IO[bytes]) -> Any:
    """The input as JSON, or a ClickException with the line and column of the error."""
    name = getattr(source, "name", "-")
    name = "stdin" if name in ("-", "<stdin>") else name
    try:
        return json.loads(source.read())
    except UnicodeDecodeError:
        raise click.ClickException(f"{name} is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise click.ClickException(
            f"{name} is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None


def is_webhook(body: Any) -> bool:
    """A Drip webhook envelope: `event` names a subscriber event and `data` is there."""
    event = body.get("event") if isinstance(body, dict) else None
    return isinstance(event, str) and event.startswith(WEBHOOK_PREFIX) and "data" in body


def drip_request(call: outbox.Pending, account_id: str) -> str:
    """The HTTP call the Drip client makes for one record: method, path, body."""
    path, wrap = INDIVIDUAL[call.kind]
    url = path.format(account=account_id, campaign=call.campaign_id)
    return f"POST {url}\n{pretty(wrap([call.body]))}"


def segment_chunks(body: Any, config: Config, conn: sa.Connection) -> list[str]:
    """What `/segment` would do with `body`: ingest runs for real, then is rolled back."""
    messages = segment_messages(body)
    single = isinstance(body, dict) and "batch" not in body
    try:
        checked = segment.check(messages, None, single)
    except Refused as exc:
        raise click.ClickException(f"not a Segment message: {exc.details['problems']}") from None
    summary = segment.store_checked(conn, config, checked, time.time())
    seen: set[str] = set()
    chunks: list[str] = []
    for number, message in enumerate(messages, 1):
        chunks += describe(message, f"message {number} of {len(messages)}", summary, seen, config)
    return chunks


def describe(
    message: Any, where: str, summary: segment.Summary, seen: set[str], config: Config
) -> list[str]:
    """The header of one message (with its problems), then one chunk per Drip call."""
    mid = segment.message_id(message) if isinstance(message, dict) else None
    kind = message.get("type", "?") if isinstance(message, dict) else "?"
    skip = next((s for s in summary.skipped if s["messageId"] == mid), None)
    if skip and skip["reason"] == "invalid_message":
        return [f"{where}: {kind} -> skipped: invalid_message ({skip['detail']})"]
    head = f"{where}: {kind} {mid}"
    if mid in seen or (mid not in summary.accepted_ids and skip is None):
        return [f"{head} -> duplicate (messageId already received; nothing is sent)"]
    seen.add(str(mid))
    notes = [f"problem: {p['field']}: {p['reason']}" for p in summary.problems
             if p["messageId"] == mid]  # fmt: skip
    if skip:
        detail = f" ({skip['detail']})" if skip.get("detail") else ""
        return ["\n".join([f"{head} -> skipped: {skip['reason']}{detail}", *notes])]
    calls = [c for c in summary.calls if c.message_id == mid]
    count = plural(len(calls), "Drip call") if calls else "no Drip call"
    account = config.drip_account_id
    return ["\n".join([f"{head} -> {count}", *notes]), *(drip_request(c, account) for c in calls)]


def segment_messages(body: Any) -> list[Any]:
    """The messages of a body, or a ClickException where `/segment` would answer 400."""
    if not isinstance(body, dict | list):
        raise click.ClickException(
            'not a Segment message: expected a JSON object, an array or {"batch": [...]}, '
            f"got {type(body).__name__}"
        )
    try:
        messages = messages_of(body)
    except Refused as exc:
        raise click.ClickException(f"not a Segment message: {exc.message}") from None
    if not messages:
        raise click.ClickException("no Segment messages in the input")
    return messages


def flatten(messages: Any, path: str = "") -> Iterator[str]:
    """Marshmallow's nested error messages as `field.path: text`."""
    if isinstance(messages, dict):
        for key, value in messages.items():
            inner = path if key == "_schema" else f"{path}.{key}".lstrip(".")
            yield from flatten(value, inner)
    else:
        texts = messages if isinstance(messages, list) else [messages]
        text = " ".join(str(t).rstrip(".") for t in texts)
        yield f"{path}: {text}" if path else text


def webhook_chunks(body: dict[str, Any], config: Config, conn: sa.Connection) -> list[str]:
    """The Segment Track call a Drip webhook becomes, or why none (ingest, rolled back)."""
    try:
        envelope = drip.load_envelope(body, config.drip_account_id)
    except Refused as exc:
        fields = exc.details.get("fields")
        detail = "; ".join(flatten(fields)) if fields else exc.message
        raise click.ClickException(f"not a Drip webhook: {detail}") from None
    answer = drip.store_envelope(conn, envelope, config, time.time())
    head = f"Drip webhook {envelope['event']} {answer['id']}"
    if answer.get("duplicate"):
        return [f"{head} -> duplicate (already received; nothing is sent)"]
    if "skipped" in answer:
        return [f"{head} -> skipped: {answer['skipped']}"]
    notes = [] if config.segment_write_key else ["note: SEGMENT_WRITE_KEY is unset: the call waits"]
    (message,) = outbox.bodies(conn, answer["id"])
    call = f"POST /v1/batch (Segment)\n{pretty(message)}"
    return ["\n".join([f"{head} -> 1 Segment call", *notes]), call]


def preview_body(body: Any, config: Config, conn: sa.Connection) -> list[str]:
    if is_webhook(body):
        return webhook_chunks(body, config, conn)
    return segment_chunks(body, config, conn)


@click.command("preview", help="Print the Drip or Segment calls a message would become.")
@click.argument("file", type=click.File("rb"), default="-")
@with_appcontext
def preview(file: IO[bytes]) -> None:
    """FILE (default `-`, stdin) holds Segment message(s) or a Drip webhook; nothing is sent."""
    body = load_json(file)
    config: Config = current_app.config["BRIDGE"]
    try:
        with store.engine().connect() as conn:
            chunks = preview_body(body, config, conn)
            conn.rollback()  # a rehearsal: nothing it stored is kept
    except sa.exc.SQLAlchemyError as exc:
        first = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        raise click.ClickException(f"cannot read the store: {first}") from None
    click.echo("\n\n".join(chunks))


def init_app(app: Flask) -> None:
    app.cli.add_command(preview)
