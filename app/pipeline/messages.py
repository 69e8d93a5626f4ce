"""The Segment messages of a request body, and the body as it may be stored.

A body is one message, an array of them (Webhooks Actions in batch mode), or
`{"batch": [...]}` (the tracking API) whose `context` and `integrations` apply
to each message. A `writeKey` is never kept: it is a secret.
"""

from __future__ import annotations

import json
from typing import Any

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
    return [_with_shared(without_key(m), shared) for m in batch]


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


def _with_shared(message: Any, shared: dict[str, dict[str, Any]]) -> Any:
    """Merge the batch's context/integrations under each message's own."""
    if not isinstance(message, dict):
        return message
    merged = dict(message)
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
