"""POST /segment (Webhooks destination) and POST /v1/* (Segment's HTTP tracking API).

Routes only: auth, size, parse, answer. What happens to the messages is the
pipeline's (`app.pipeline.segment` now, or the worker's intake for /v1).
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

from flask import Blueprint, current_app, request

from app import metrics, store
from app.config import Config
from app.pipeline import intake, segment
from app.pipeline.messages import batch_of, messages_of
from app.segment_api import BATCH_LIMIT, MESSAGE_LIMIT, TYPES
from app.web import auth
from app.web.body import parse_json, read_body
from app.web.errors import ApiError, store_failures_as

bp = Blueprint("segment", __name__)


def _config() -> Config:
    cfg: Config = current_app.config["BRIDGE"]
    return cfg


@bp.post("/segment")
def webhook() -> dict[str, Any]:
    raw = read_body(request, _config().max_body_bytes)
    signed = auth.check_webhook(_config(), request, raw)
    body = parse_json(raw)
    if signed and isinstance(body, list) and len(body) > 1:
        metrics.SIGNED_ARRAYS.inc()  # Segment signs the first element only (README)
    single = isinstance(body, dict) and "batch" not in body
    messages = messages_of(body)
    with _storing():
        return segment.accept(store.engine(), _config(), messages, single).as_json()


@bp.post("/v1/<kind>")
def tracking_api(kind: str) -> dict[str, Any]:
    """Segment's tracking API: checked for auth, JSON and size, stored whole, answered.

    As Segment's own API does, a request is refused only when it is not JSON or too
    large: the worker validates and maps its messages, and skips a bad one with the
    reason (on /admin, in the logs and in /metrics; `drip-bridge preview` shows it
    beforehand).
    """
    if kind not in (*TYPES, "batch"):
        raise ApiError(404, "not_found", f"No endpoint /v1/{kind}; use /v1/batch or /v1/track.")
    raw = read_body(request, BATCH_LIMIT)
    header_key = auth.presented_key(request)
    if header_key is not None:  # known from the headers: a stranger's body is never parsed
        auth.check_write_key(_config(), header_key)
    body = parse_json(raw)
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_body", "The body must be a JSON object.")
    if header_key is None:
        auth.check_write_key(_config(), body.get("writeKey"))
    if kind != "batch" and len(raw) > MESSAGE_LIMIT:
        raise ApiError(413, "payload_too_large", "A single message may be at most 32 KB.")
    received = 1
    if kind == "batch" and "batch" in body:
        received = len(batch_of(body))  # refused unless it is an array
    with _storing():
        intake.keep(store.engine(), kind, raw, body, received)
    return {"success": True}


def _storing() -> AbstractContextManager[None]:
    """A store that fails answers 503 (Segment retries a 5xx for four hours)."""
    unstored = "The bridge cannot store messages right now; retry later (nothing was accepted)."
    return store_failures_as(503, 30, unstored)
