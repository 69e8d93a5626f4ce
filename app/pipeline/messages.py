"""The Segment messages of a request body, and the body as it may be stored.

A body is one message, an array of them (Webhooks Actions in batch mode), or
`{"batch": [...]}` (the tracking API) whose `context` and `integrations` apply
to each message. A `writeKey` is never kept: it is a secret.
"""

from __future__ import annotations

import json
from typing import Any

from app.pipeline.errors import Malformed


def messages_of(body: Any) -> list[Any]:
    """One message, an array of them, or `{"batch": [...]}` with shared context."""
    if isinstance(body, list):
        return [without_key(m) for m in body]
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
    return batch


def secret_free(raw: bytes, body: dict[str, Any]) -> str:
    """The body to keep: as sent, or re-encoded without its writeKeys."""
    batch = body.get("batch")
    messages = batch if isinstance(batch, list) else []
    keyed = "writeKey" in body or any(isinstance(m, dict) and "writeKey" in m for m in messages)
    if not keyed:
        return raw.decode()
    kept = without_key(body)
    if messages:
        kept = kept | {"batch": [without_key(m) for m in messages]}
    return json.dumps(kept)


def without_key(message: Any) -> Any:
    """Drop `writeKey` so that a secret is never stored or shown."""
    if isinstance(message, dict) and "writeKey" in message:
        return {k: v for k, v in message.items() if k != "writeKey"}
    return message


def _with_shared(message: Any, shared: dict[str, dict[str, Any]]) -> Any:
    """Merge the batch's context/integrations under each message's own."""
    if not isinstance(message, dict):
        return message
    merged = dict(message)
    for key, value in shared.items():
        own = message.get(key)
        merged[key] = value | own if isinstance(own, dict) else value
    return merged
