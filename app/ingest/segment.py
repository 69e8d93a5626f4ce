"""POST /segment (Webhooks destination) and POST /v1/* (Segment's HTTP tracking API)."""

from __future__ import annotations

import json
import logging
import time
import zlib
from contextlib import AbstractContextManager
from typing import Any

from flask import Blueprint, Flask, Request, current_app, request

from app import metrics, store
from app.config import Config
from app.errors import ApiError, store_failures_as
from app.ingest import auth
from app.ingest.accept import Summary, store_segment
from app.store import inbox

log = logging.getLogger(__name__)
bp = Blueprint("segment", __name__)

# Segment's tracking API limits (segment-docs, sources/catalog/libraries/server/http-api).
MESSAGE_LIMIT = 32 * 1024
BATCH_LIMIT = 500 * 1024
V1_TYPES = ("identify", "track", "page", "screen", "group", "alias")


def _config() -> Config:
    cfg: Config = current_app.config["BRIDGE"]
    return cfg


@bp.post("/segment")
def webhook() -> dict[str, Any]:
    raw = read_body(request, _config().max_body_bytes)
    auth.check_webhook(_config(), request, raw)
    body = parse_json(raw)
    single = isinstance(body, dict) and "batch" not in body
    return _store(messages_of(body), None, single).as_json()


@bp.post("/v1/<kind>")
def tracking_api(kind: str) -> dict[str, Any]:
    """Segment's tracking API: checked for auth, JSON and size, stored whole, answered.

    As Segment's own API does, a request is refused only when it is not JSON or too
    large: the worker validates and maps its messages, and skips a bad one with the
    reason (on /admin, in the logs and in /metrics; `drip-bridge preview` shows it
    beforehand).
    """
    if kind not in (*V1_TYPES, "batch"):
        raise ApiError(404, "not_found", f"No endpoint /v1/{kind}; use /v1/batch or /v1/track.")
    raw = read_body(request, BATCH_LIMIT)
    body = parse_json(raw)
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_body", "The body must be a JSON object.")
    auth.check_write_key(_config(), request, body.get("writeKey"))
    if kind != "batch" and len(raw) > MESSAGE_LIMIT:
        raise ApiError(413, "payload_too_large", "A single message may be at most 32 KB.")
    received = 1
    if kind == "batch" and "batch" in body:
        received = len(_batch(body))  # a 400 unless it is an array
    with _storing():
        inbox.put(store.engine(), kind, _secret_free(raw, body), time.time())
    metrics.RECEIVED.labels("segment").inc(received)
    return {"success": True}


def v1_messages(kind: str, body: dict[str, Any]) -> list[Any]:
    """The messages of a tracking-API request as the inbox kept it (a single call's
    type comes from the path unless its body says)."""
    return messages_of(body) if kind == "batch" else [{"type": kind} | _without_key(body)]


def _secret_free(raw: bytes, body: dict[str, Any]) -> str:
    """The body to keep: as sent, or re-encoded without its writeKeys (never stored)."""
    batch = body.get("batch")
    messages = batch if isinstance(batch, list) else []
    keyed = "writeKey" in body or any(isinstance(m, dict) and "writeKey" in m for m in messages)
    if not keyed:
        return raw.decode()
    kept = _without_key(body)
    if messages:
        kept = kept | {"batch": [_without_key(m) for m in messages]}
    return json.dumps(kept)


def read_body(req: Request, limit: int) -> bytes:
    """The raw body (gzip undone), refusing what is not JSON or over `limit` bytes."""
    mimetype = req.mimetype
    # analytics.js posts text/plain to avoid a CORS preflight; its body is still JSON.
    if mimetype not in ("application/json", "text/plain") and not mimetype.endswith("+json"):
        raise ApiError(
            415,
            "unsupported_media_type",
            f"Send JSON with Content-Type: application/json (got {mimetype or 'none'}).",
        )
    raw = req.get_data(cache=True)
    if req.headers.get("Content-Encoding", "").lower() == "gzip":
        raw = _gunzip(raw, limit)
    if len(raw) > limit:
        raise ApiError(
            413, "payload_too_large", f"The body is over {limit // 1024} KB; send smaller batches."
        )
    return raw


def _gunzip(raw: bytes, limit: int) -> bytes:
    inflater = zlib.decompressobj(wbits=31)
    try:
        out = inflater.decompress(raw, limit + 1)
    except zlib.error as exc:
        raise ApiError(400, "invalid_body", f"The gzip body cannot be read: {exc}.") from exc
    return out


def parse_json(raw: bytes) -> Any:
    try:
        return json.loads(raw.decode())
    except UnicodeDecodeError as exc:
        raise ApiError(400, "invalid_json", "The body is not UTF-8 text.") from exc
    except json.JSONDecodeError as exc:
        raise ApiError(
            400,
            "invalid_json",
            f"The body is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}.",
        ) from exc


def messages_of(body: Any) -> list[Any]:
    """One message, an array of them, or `{"batch": [...]}` with shared context."""
    if isinstance(body, list):
        return [_without_key(m) for m in body]
    if not isinstance(body, dict):
        raise ApiError(
            400, "invalid_body", 'Send a Segment message, an array, or {"batch": [...]}.'
        )
    if "batch" not in body:
        return [_without_key(body)]
    batch = _batch(body)
    shared = {k: body[k] for k in ("context", "integrations") if isinstance(body.get(k), dict)}
    return [_with_shared(_without_key(m), shared) for m in batch]


def _batch(body: dict[str, Any]) -> list[Any]:
    batch = body["batch"]
    if not isinstance(batch, list):
        raise ApiError(400, "invalid_body", '"batch" must be an array of Segment messages.')
    return batch


def _without_key(message: Any) -> Any:
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


def _storing() -> AbstractContextManager[None]:
    """A store that fails answers 503 (Segment retries a 5xx for four hours)."""
    unstored = "The bridge cannot store messages right now; retry later (nothing was accepted)."
    return store_failures_as(503, 30, unstored)


def _store(messages: list[Any], max_message_bytes: int | None, single: bool) -> Summary:
    with _storing():
        return store_segment(store.engine(), _config(), messages, max_message_bytes, single)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
