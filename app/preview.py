"""`drip-bridge preview [FILE]`: the calls a message would become, without sending.

Segment messages go through the same validation and mapping as `/segment`; a Drip
webhook through the same schema and rules as `/drip/webhook`. The store is only
read (known emails, campaign members, ids already received) so that the preview
says what the bridge would really do; nothing is written.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Any

import click
import sqlalchemy as sa
from flask import Flask, current_app
from flask.cli import with_appcontext
from marshmallow import ValidationError

from app import __version__, store
from app.config import Config
from app.delivery.drip_client import INDIVIDUAL
from app.errors import ApiError
from app.ingest.accept import message_id
from app.ingest.drip_schema import DripWebhookSchema
from app.ingest.drip_webhook import skip_reason as webhook_skip_reason
from app.ingest.segment import messages_of
from app.ingest.segment_schema import problems
from app.mapping.to_drip import map_message
from app.mapping.to_segment import EVENT_PREFIX, event_id, is_echo, to_track
from app.mapping.types import DripCall, Options, Outcome
from app.store import outbox
from app.store.tables import campaign_members, received

WEBHOOK_SCHEMA = DripWebhookSchema()


def pretty(value: Any) -> str:
    """Indented JSON; datetimes (the Track call's timestamp) as ISO-8601."""

    def default(obj: Any) -> Any:
        if isinstance(obj, datetime):
            return obj.isoformat()
        raise TypeError(f"{type(obj).__name__} is not JSON")

    return json.dumps(value, indent=2, ensure_ascii=False, default=default)


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
    return isinstance(event, str) and event.startswith(EVENT_PREFIX) and "data" in body


def already_received(conn: sa.Connection, mid: str) -> bool:
    query = sa.select(received.c.message_id).where(received.c.message_id == mid)
    return conn.execute(query).first() is not None


def drip_request(call: DripCall, account_id: str) -> str:
    """The HTTP call the Drip client makes for one record: method, path, body."""
    path, wrap = INDIVIDUAL[call.kind]
    url = path.format(account=account_id, campaign=call.campaign_id)
    return f"POST {url}\n{pretty(wrap([call.record]))}"


@dataclass
class SegmentPreview:
    """Previews messages in order, as one `/segment` request would store them.

    Emails learned and campaigns joined by earlier messages of the input count for
    later ones, as they do inside the ingest transaction.
    """

    conn: sa.Connection
    config: Config
    learned: dict[str, str] = field(default_factory=dict)
    joined: set[tuple[str, str]] = field(default_factory=set)
    seen: set[str] = field(default_factory=set)

    def chunks(self, messages: list[Any]) -> Iterator[str]:
        for number, message in enumerate(messages, 1):
            yield from self.message(message, f"message {number} of {len(messages)}")

    def message(self, message: Any, where: str) -> list[str]:
        """The header (with problems) and one chunk per Drip call."""
        detail = problems(message)
        if detail:
            kind = message.get("type", "?") if isinstance(message, dict) else "?"
            return [f"{where}: {kind} -> skipped: invalid_message ({detail})"]
        mid = message_id(message)
        head = f"{where}: {message['type']} {mid}"
        if is_echo(message):
            return [f"{head} -> skipped: loop_guard (sent to Segment by drip-bridge itself)"]
        if mid in self.seen or already_received(self.conn, mid):
            return [f"{head} -> duplicate (messageId already received; nothing is sent)"]
        self.seen.add(mid)
        outcome = map_message(message, self.known(message), self.options())
        self.learned.update(outcome.learned)
        return self.outcome(head, outcome)

    def options(self) -> Options:
        return Options(campaign_id=self.config.drip_campaign_id)

    def known(self, message: dict[str, Any]) -> dict[str, str]:
        ids = [str(message[k]) for k in ("userId", "anonymousId", "previousId") if message.get(k)]
        stored = outbox.known_emails(self.conn, ids)
        return stored | {i: self.learned[i] for i in ids if i in self.learned}

    def outcome(self, head: str, outcome: Outcome) -> list[str]:
        notes = [f"problem: {p.field}: {p.reason}" for p in outcome.problems]
        if outcome.skip:
            return ["\n".join([f"{head} -> skipped: {outcome.skip}", *notes])]
        calls = []
        for call in outcome.calls:
            if call.campaign_id is None or self.join(call.email.lower(), call.campaign_id):
                calls.append(call)
            else:
                notes.append(
                    f"not sent: campaign {call.campaign_id} subscription "
                    f"({call.email} was subscribed through the bridge before)"
                )
        summary = plural(len(calls), "Drip call") if calls else "no Drip call"
        account = self.config.drip_account_id
        return [
            "\n".join([f"{head} -> {summary}", *notes]),
            *(drip_request(c, account) for c in calls),
        ]

    def join(self, email: str, campaign_id: str) -> bool:
        """Whether the bridge would subscribe `email` now (only the first time)."""
        if (email, campaign_id) in self.joined:
            return False
        self.joined.add((email, campaign_id))
        query = sa.select(campaign_members.c.email).where(
            campaign_members.c.email == email, campaign_members.c.campaign_id == campaign_id
        )
        return self.conn.execute(query).first() is None


def segment_messages(body: Any) -> list[Any]:
    """The messages of a body, or a ClickException where `/segment` would answer 400."""
    if not isinstance(body, dict | list):
        raise click.ClickException(
            'not a Segment message: expected a JSON object, an array or {"batch": [...]}, '
            f"got {type(body).__name__}"
        )
    try:
        messages = messages_of(body)
    except ApiError as exc:
        raise click.ClickException(f"not a Segment message: {exc.message}") from None
    if not messages:
        raise click.ClickException("no Segment messages in the input")
    if isinstance(body, dict) and "batch" not in body and (detail := problems(messages[0])):
        raise click.ClickException(f"not a Segment message: {detail}")
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
    """The Segment Track call a Drip webhook becomes, or why none."""
    try:
        envelope: dict[str, Any] = WEBHOOK_SCHEMA.load(body)
    except ValidationError as exc:
        detail = "; ".join(flatten(exc.messages))
        raise click.ClickException(f"not a Drip webhook: {detail}") from None
    account = envelope["data"]["account_id"]
    if account != config.drip_account_id:
        raise click.ClickException(
            f"this webhook is for Drip account {account}, but the bridge serves account "
            f"{config.drip_account_id} (DRIP_ACCOUNT_ID)"
        )
    mid = event_id(envelope)
    head = f"Drip webhook {envelope['event']} {mid}"
    if already_received(conn, mid):
        return [f"{head} -> duplicate (already received; nothing is sent)"]
    reason = webhook_skip_reason(envelope, config)
    if reason:
        return [f"{head} -> skipped: {reason}"]
    notes = [] if config.segment_write_key else ["note: SEGMENT_WRITE_KEY is unset: the call waits"]
    call = "Segment track\n" + pretty(to_track(envelope, __version__))
    return ["\n".join([f"{head} -> 1 Segment call", *notes]), call]


def preview_body(body: Any, config: Config, conn: sa.Connection) -> list[str]:
    if is_webhook(body):
        return webhook_chunks(body, config, conn)
    messages = segment_messages(body)
    return list(SegmentPreview(conn, config).chunks(messages))


@click.command("preview", help="Print the Drip or Segment calls a message would become.")
@click.argument("file", type=click.File("rb"), default="-")
@with_appcontext
def preview(file: IO[bytes]) -> None:
    """FILE (default `-`, stdin) holds Segment message(s) or a Drip webhook; nothing is sent."""
    body = load_json(file)
    config: Config = current_app.config["BRIDGE"]
    try:
        with store.reading(store.engine()) as conn:
            chunks = preview_body(body, config, conn)
    except sa.exc.SQLAlchemyError as exc:
        first = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        raise click.ClickException(f"cannot read the store: {first}") from None
    click.echo("\n\n".join(chunks))


def init_app(app: Flask) -> None:
    app.cli.add_command(preview)
