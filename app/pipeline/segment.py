"""Segment messages -> stored Drip calls: check, de-duplicate, map, store.

Used by /segment, where one request is one transaction (an answer of 200 means
every accepted message of it is committed; when the store fails, nothing of it
is acknowledged), and by the worker's intake of the inbox (`intake.py`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import sqlalchemy as sa

from app import metrics, store
from app.config import Config
from app.mapping.consent import addresses, keep_unsubscribed, may_resubscribe
from app.mapping.subscriber import trait_names
from app.mapping.to_drip import ids_to_look_up, map_message
from app.mapping.types import Options, Outcome
from app.pipeline import deletion
from app.pipeline.errors import Malformed
from app.pipeline.messages import segment_time, storable
from app.pipeline.segment_schema import problems
from app.segment_api import DELETE, is_echo
from app.store import counters, fields, outbox, people, received

log = logging.getLogger(__name__)
SOURCE = "segment"
LOOP_GUARD = "loop_guard"
BROWSER_DELETE = "BROWSER_WRITE_KEY is public, so a page may not delete anyone"


@dataclass
class Summary:
    """What became of a request's messages."""

    accepted_ids: list[str] = field(default_factory=list)
    duplicate_ids: list[str] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    problems: list[dict[str, Any]] = field(default_factory=list)
    calls: list[outbox.Pending] = field(default_factory=list)  # what was stored to send

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "success": True,
            "accepted": len(self.accepted_ids),
            "duplicates": len(self.duplicate_ids),
            "skipped": self.skipped,
        }
        if self.problems:
            body["problems"] = self.problems
        return body


@dataclass
class Checked:
    """Messages sorted before any I/O: the valid ones by id, and skips."""

    summary: Summary
    valid: dict[str, dict[str, Any]]
    skips: list[received.Skip]
    received_at: dict[str, float] = field(default_factory=dict)  # by id; default: now
    browser: set[str] = field(default_factory=set)  # ids sent with BROWSER_WRITE_KEY


def message_id(message: dict[str, Any]) -> str:
    """Segment's messageId, or a content hash so that exact re-sends still de-duplicate
    (and an id too long to keep is never stored)."""
    given = message.get("messageId")
    if isinstance(given, str | int) and not isinstance(given, bool) and 0 < len(str(given)) <= 200:
        return str(given)
    canonical = json.dumps(message, sort_keys=True, separators=(",", ":"), default=str)
    return "sha1-" + hashlib.sha1(canonical.encode()).hexdigest()


def accept(engine: sa.Engine, config: Config, messages: list[Any], single: bool) -> Summary:
    """Check, map and store Segment messages in one transaction; bad ones are skipped.

    A `single` message that is not valid is refused whole (Malformed) instead.
    """
    now = time.time()
    checked = check(messages, None, single, arrival=now, relayed=True)
    with store.writing(engine) as conn:
        summary = store_checked(conn, config, checked, now)
    metrics.RECEIVED.labels(SOURCE).inc(len(messages))
    log_skips(summary)
    return summary


def check(
    messages: Sequence[Any],
    max_message_bytes: int | None,
    single: bool,
    received_at: Sequence[float] = (),
    browser: Sequence[bool] = (),
    arrival: float | None = None,
    relayed: bool = False,
) -> Checked:
    """Valid messages by id (a repeat within them is a duplicate) and the rest, each
    valid one dated as Segment dates it (`segment_time`).

    `received_at` (the inbox) gives each message's arrival, else `arrival` (now);
    `browser` says which came with BROWSER_WRITE_KEY; `relayed` messages came through
    Segment (the Webhooks destination), which stamped their `receivedAt`.
    """
    checked = Checked(Summary(), {}, [])
    now = time.time() if arrival is None else arrival
    for i, message in enumerate(messages):
        reason, detail = _reject_reason(message, max_message_bytes)
        if reason:
            checked.skips.append(_skip(checked.summary, message, reason, detail))
        elif (mid := message_id(message)) in checked.valid:
            checked.summary.duplicate_ids.append(mid)
        else:
            at = received_at[i] if received_at else now
            checked.valid[mid] = segment_time(message, at, relayed)
            if received_at:
                checked.received_at[mid] = at
            if browser and browser[i]:
                checked.browser.add(mid)
    if single and checked.skips and checked.skips[0].reason == "invalid_message":
        detail = checked.skips[0].detail
        raise Malformed(
            "invalid_message", f"Not a valid Segment message: {detail}.", {"problems": detail}
        )
    return checked


def store_checked(conn: sa.Connection, config: Config, checked: Checked, now: float) -> Summary:
    """Map and store checked messages in `conn`'s transaction; what was stored, and why not.

    A request costs a fixed handful of statements, whatever its size: one insert of
    the message ids (which finds the duplicates), one read of the emails known for
    its ids, then one write each for identities, outgoing calls and skips.
    """
    summary, valid, skips = checked.summary, checked.valid, checked.skips
    fresh = received.accept(conn, SOURCE, list(valid.items()), now, checked.received_at)
    summary.duplicate_ids += [mid for mid in valid if mid not in fresh]
    mapped = [(mid, m) for mid, m in valid.items() if mid in fresh]
    known = people.known_emails(conn, {i for _, m in mapped for i in ids_to_look_up(m)})
    learned: dict[str, str] = {}
    server = Options(campaign_id=config.drip_campaign_id)
    page = replace(server, browser=True)
    written = _Written()
    unsubscribed = _Unsubscribed()
    names: dict[str, str] = {}  # Drip custom-field key -> trait name, where they differ
    for mid, message in mapped:
        at = checked.received_at.get(mid, now)
        if message.get("type") == DELETE and mid in checked.browser:
            skips.append(_skip(summary, message, "browser_key", BROWSER_DELETE))
            continue
        if message.get("type") == DELETE:
            # What the request taught before it is written first, so that it is purged too.
            written.flush(conn, summary.calls, skips, learned, now)
            summary.accepted_ids.append(mid)
            summary.calls += deletion.forget(conn, mid, message, at)
            known = people.known_emails(conn, known)  # what is left of the ids read
            continue
        outcome = map_message(message, known, page if mid in checked.browser else server)
        unsubscribed.respect(conn, outcome, at)
        if outcome.calls:
            names |= trait_names(message)
        known |= outcome.learned  # later messages of the request see what it taught
        learned |= outcome.learned
        summary.calls += _account(conn, summary, skips, mid, message, outcome, at)
    written.flush(conn, summary.calls, skips, learned, now)
    fields.remember(conn, names)
    counters.add(conn, _counts(summary))
    return summary


@dataclass
class _Unsubscribed:
    """Who unsubscribed from all mailings, as far as a request has asked the store."""

    emails: set[str] = field(default_factory=set)
    asked: set[str] = field(default_factory=set)

    def respect(self, conn: sa.Connection, outcome: Outcome, now: float) -> None:
        """Remove from `outcome` what would resubscribe an unsubscribed person, and
        remember who it unsubscribes (one read only when a call could resubscribe)."""
        risky = {a for c in outcome.calls if may_resubscribe(c) for a in addresses(c)}
        if unknown := risky - self.asked:
            self.emails |= people.unsubscribed(conn, unknown)
            self.asked |= unknown
        outcome.calls, problems = keep_unsubscribed(outcome.calls, self.emails)
        outcome.problems += problems
        leaving = {c.email.lower() for c in outcome.calls if c.kind == "unsubscribe"}
        if leaving:
            people.unsubscribe(conn, leaving, now)
            self.emails |= leaving
            self.asked |= leaving


@dataclass
class _Written:
    """How much of a request's calls and skips is written (a deletion writes early)."""

    calls: int = 0
    skips: int = 0

    def flush(
        self,
        conn: sa.Connection,
        calls: list[outbox.Pending],
        skips: list[received.Skip],
        learned: dict[str, str],
        now: float,
    ) -> None:
        people.learn(conn, learned, now)
        learned.clear()
        outbox.enqueue(conn, calls[self.calls :], now)
        received.record_skips(conn, skips[self.skips :], now)
        self.calls, self.skips = len(calls), len(skips)


def _counts(summary: Summary) -> metrics.Counts:
    counts = metrics.Counts()
    metrics.count(counts, metrics.ACCEPTED, SOURCE, amount=len(summary.accepted_ids))
    metrics.count(counts, metrics.DUPLICATES, SOURCE, amount=len(summary.duplicate_ids))
    for entry in summary.skipped:
        metrics.count(counts, metrics.SKIPPED, SOURCE, entry["reason"])
    return counts


def _account(
    conn: sa.Connection,
    summary: Summary,
    skips: list[received.Skip],
    mid: str,
    message: dict[str, Any],
    outcome: Outcome,
    now: float,
) -> list[outbox.Pending]:
    """Account for one mapped message (received at `now`); the Drip calls it makes."""
    summary.problems += [
        {"messageId": mid, "field": p.field, "reason": p.reason} for p in outcome.problems
    ]
    if outcome.skip:
        skips.append(_skip(summary, message, outcome.skip, None))
        return []
    summary.accepted_ids.append(mid)
    return _pending(conn, mid, message, outcome, now)


def log_skips(summary: Summary) -> None:
    """Log what was committed as skipped: one line per reason, however many messages."""
    by_reason: dict[str, list[dict[str, Any]]] = {}
    for entry in summary.skipped:
        by_reason.setdefault(entry["reason"], []).append(entry)
    for reason, entries in by_reason.items():
        first = entries[0]
        log.info(
            "skipped %d segment message(s): %s (first: %s%s)",
            len(entries),
            reason,
            first["messageId"],
            f", {first['detail']}" if "detail" in first else "",
        )


def _reject_reason(message: Any, max_bytes: int | None) -> tuple[str | None, str | None]:
    detail = problems(message)
    if detail:
        return "invalid_message", detail
    try:
        size = len(json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode())
    except UnicodeEncodeError:
        return "invalid_message", "holds text that is not valid Unicode (a lone surrogate)"
    if max_bytes and size > max_bytes:
        return "too_large", f"a message may be at most {max_bytes // 1024} KB"
    if is_echo(message):
        return LOOP_GUARD, "sent to Segment by drip-bridge itself; not sent back to Drip"
    return None, None


def _pending(
    conn: sa.Connection, mid: str, message: dict[str, Any], outcome: Outcome, now: float
) -> list[outbox.Pending]:
    """Drip calls to make; a campaign subscription only the first time per person.

    The ordering key is the userId when there is one, else the email: a change of
    email (`new_email`) then stays in order with what came before and after it.
    """
    user_id = message.get("userId")
    person = f"user:{user_id}" if user_id else None
    return [
        outbox.Pending(
            mid, "drip", c.kind, person or c.email.lower(), c.email, c.record, c.campaign_id, now
        )
        for c in outcome.calls
        if c.campaign_id is None or people.join_campaign(conn, c.email.lower(), c.campaign_id, now)
    ]


def _skip(summary: Summary, message: Any, reason: str, detail: str | None) -> received.Skip:
    mid = message_id(message) if isinstance(message, dict) else None
    entry = {"messageId": mid, "reason": reason} | ({"detail": detail} if detail else {})
    summary.skipped.append(entry)
    # An echo is the bridge's own message: nothing to show, and it may name a person
    # deleted meanwhile (the Track of `subscriber.deleted`), so it is not kept.
    payload = None if reason == LOOP_GUARD else storable(message)
    return received.Skip(SOURCE, mid, reason, detail, payload)
