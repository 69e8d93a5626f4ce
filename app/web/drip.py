"""POST /drip/webhook?token=...: Drip's webhooks, stored before the answer.

Drip disables a webhook whose endpoint errs for three days, but re-sends for three
days one that was rate limited (rest/_webhook_events.md). So a valid event that is
not forwarded still gets 200, and when the store is down the answer is 429 with
Retry-After, never a 5xx.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, request

from app import store
from app.config import Config
from app.pipeline import drip
from app.web.auth import secret_matches
from app.web.body import parse_json, read_body
from app.web.errors import ApiError, store_failures_as

bp = Blueprint("drip_webhook", __name__)


@bp.post("/drip/webhook")
def receive() -> dict[str, Any]:
    cfg: Config = current_app.config["BRIDGE"]
    _check_token(cfg)
    body = parse_json(read_body(request, cfg.max_body_bytes))
    envelope = drip.load_envelope(body, cfg.drip_account_id)
    unstored = "The bridge cannot store webhooks right now; Drip re-sends rate-limited ones."
    with store_failures_as(429, 60, unstored):
        return drip.accept(store.engine(), envelope, cfg)


def _check_token(cfg: Config) -> None:
    if not cfg.drip_webhook_token:
        raise ApiError(
            503,
            "not_configured",
            "Set DRIP_WEBHOOK_TOKEN and add ?token=<it> to the webhook URL in Drip.",
        )
    if not secret_matches(request.args.get("token"), cfg.drip_webhook_token):
        raise ApiError(
            401,
            "unauthorized",
            "Missing or wrong token: the webhook URL must end in ?token=<DRIP_WEBHOOK_TOKEN>.",
        )
