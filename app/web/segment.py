"""POST /segment: Segment's Webhooks destination (the tracking API is `tracking.py`).

Routes only: auth, size, parse, answer. What happens to the messages is the
pipeline's (`app.pipeline.segment`).
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

from flask import Blueprint, current_app, request

from app import metrics, store
from app.config import Config
from app.pipeline import segment
from app.pipeline.messages import messages_of
from app.web import auth
from app.web.body import parse_json, read_body
from app.web.errors import store_failures_as

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
    with storing():
        return segment.accept(store.engine(), _config(), messages, single).as_json()


def storing() -> AbstractContextManager[None]:
    """A store that fails answers 503 (Segment retries a 5xx for four hours)."""
    unstored = "The bridge cannot store messages right now; retry later (nothing was accepted)."
    return store_failures_as(503, 30, unstored)
