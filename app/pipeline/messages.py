"""The Segment messages of a request body, and the body as it may be stored.

A body is one message, an array of them (Webhooks Actions in batch mode), or
`{"batch": [...]}` (the tracking API) whose `context` and `integrations` apply
to each message. A `writeKey` is never kept: it is a secret.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from app.drip_api import parse_time
from app.pipeline.errors import Malformed
from app.segment_api import MAX_MESSAGES


def messages_of(body: Any) -> list[Any]:
    """One message, an array of them, or `{"batch": [...]}` with shared context."""
    if isinstance(body, list):
        return [without_key(m) for m in _counted(body)]
    if not isinstance(body, dict):
        raise Malformed("invalid_body", 'Send a Segment message, an array, or {"batch": [...]}.')
    if "batch" not in body:
        return [without_key(body)]
    batch = batch_of(body)
    shared = {k: body[k] for k in ("context", "integrations") if isinstance(body.get(k), dict)}
    sent_at = {"sentAt": body["sentAt"]} if "sentAt" in body else {}
    return [_with_shared(without_key(m), shared, sent_at) for m in batch]


def tracking_api_messages(kind: str, body: dict[str, Any]) -> list[Any]:
    """The messages of a tracking-API request (`/v1/<kind>`); a single call's type
    comes from the path unless its body says."""
    return messages_of(body) if kind == "batch" else [{"type": kind} | without_key(body)]


def batch_of(body: dict[str, Any]) -> list[Any]:
    batch = body["batch"]
    if not isinstance(batch, list):
        raise Malformed("invalid_body", '"batch" must be an array of Segment messages.')
    return _counted(batch)


def _counted(messages: list[Any]) -> list[Any]:
    if len(messages) > MAX_MESSAGES:
        raise Malformed(
            "too_many_messages",
            f"A request may carry at most {MAX_MESSAGES:,} messages, got {len(messages):,}; "
            "send smaller batches.",
        )
    return messages


def secret_free(raw: bytes, body: dict[str, Any]) -> str:
    """The body to keep: as sent, or re-encoded without its writeKeys (wherever they are)."""
    if b"writeKey" not in raw and b"\\u" not in raw:  # no key, not even spelled in escapes
        return raw.decode()
    kept = without_key(body)
    return raw.decode() if kept is body else json.dumps(kept)


def without_key(value: Any) -> Any:
    """`value` without any `writeKey`, at any depth, so that a secret is never stored
    or shown; the same object when it holds none."""
    if isinstance(value, dict):
        kept = {k: without_key(v) for k, v in value.items() if k != "writeKey"}
        unchanged = len(kept) == len(value) and all(kept[k] is value[k] for k in kept)
        return value if unchanged else kept
    if isinstance(value, list):
        items = [without_key(v) for v in value]
        return value if all(a is b for a, b in zip(items, value, strict=True)) else items
    return value


def _with_shared(message: Any, shared: dict[str, dict[str, Any]], sent_at: dict[str, Any]) -> Any:
    """Merge the batch's context/integrations under each message's own; the batch's
    `sentAt` (analytics.js sends one for the whole batch) for a message without one."""
    if not isinstance(message, dict):
        return message
    merged = sent_at | message
    for key, value in shared.items():
        own = message.get(key)
        merged[key] = value | own if isinstance(own, dict) else value
    return merged


def storable(payload: Any) -> Any:
    """`payload` as a JSON column can hold it: text that is not valid Unicode (a lone
    surrogate) replaced, so a message kept for people to read never fails the write."""
    text = json.dumps(payload, ensure_ascii=False, default=str)
    try:
        text.encode()
    except UnicodeEncodeError:
        return json.loads(text.encode(errors="replace").decode())
    return payload


def segment_time(message: dict[str, Any], arrival: float, relayed: bool) -> dict[str, Any]:
    """`message` with Segment's corrected `timestamp` (spec/common):
    `receivedAt - (sentAt - originalTimestamp)`, so a device whose clock is wrong does
    not date its events by it.

    The device's time is `originalTimestamp`, else the `timestamp` the library sent
    (which becomes `originalTimestamp`). `receivedAt` is the bridge's `arrival`, or,
    for a message `relayed` by Segment (the Webhooks destination), the `receivedAt`
    Segment stamped on it, whose own correction this then repeats exactly. Without a
    readable `sentAt` and device time, the message is returned unchanged.
    """
    sent = _moment(message.get("sentAt"))
    stamped = _moment(message.get("receivedAt")) if relayed else None
    device_key = "originalTimestamp" if stamped or "originalTimestamp" in message else "timestamp"
    device = _moment(message.get(device_key))
    if sent is None or device is None:
        return message
    received = stamped or datetime.fromtimestamp(arrival, UTC)
    try:
        corrected = received - (sent - device)
    except OverflowError:  # beyond the years 1-9999: a clock too wrong to correct
        return message
    return message | {
        "timestamp": corrected.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "originalTimestamp": message[device_key],
    }


def _moment(value: Any) -> datetime | None:
    try:
        return parse_time(value)
    except ValueError:
        return None
