"""POST /v1/*: Segment's HTTP tracking API, for server libraries and for analytics.js.

Routes only: CORS, auth, size, parse, store, answer. The worker's intake
(`app.pipeline.intake`) validates and maps what is stored.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, request

from app import store
from app.config import Config
from app.pipeline import intake
from app.pipeline.messages import batch_of
from app.segment_api import BATCH_LIMIT, BROWSER_PATHS, MESSAGE_LIMIT, METRICS_PATH, SERVER_PATHS
from app.web import auth, cors
from app.web.body import parse_json, read_body
from app.web.errors import ApiError
from app.web.segment import storing

bp = Blueprint("tracking", __name__)


def _config() -> Config:
    cfg: Config = current_app.config["BRIDGE"]
    return cfg


# `/v1/batch/` is `/v1/batch`; a preflight is answered below, after the origin check.
@bp.route("/v1/<kind>", methods=["POST", "OPTIONS"], provide_automatic_options=False)
@bp.route("/v1/<kind>/", methods=["POST", "OPTIONS"], provide_automatic_options=False)
def tracking_api(kind: str) -> Any:
    """Segment's tracking API: checked for origin, auth, JSON and size, stored whole, answered.

    As Segment's own API does, a request is refused only when it is not JSON or too
    large: the worker validates and maps its messages, and skips a bad one with the
    reason (on /admin, in the logs and in /metrics; `drip-bridge preview` shows it
    beforehand). A request that came with BROWSER_WRITE_KEY is kept marked, so its
    messages are mapped with the browser's restrictions (README).
    """
    cors.check_origin(_config(), request)
    if request.method == "OPTIONS":
        return cors.preflight()
    if kind == METRICS_PATH:
        return {"success": True}  # analytics.js's usage metrics: nothing for Drip
    call = SERVER_PATHS.get(kind) or BROWSER_PATHS.get(kind)
    if call is None:
        paths = "/v1/batch, /v1/track, /v1/identify (or analytics.js's /v1/t, /v1/i, /v1/b)"
        raise ApiError(404, "not_found", f"No endpoint /v1/{kind}; use {paths}.")
    raw = read_body(request, BATCH_LIMIT)
    browser_path = kind in BROWSER_PATHS
    header_key = auth.presented_key(request)
    browser = False
    if header_key is not None:  # known from the headers: a stranger's body is never parsed
        browser = auth.check_tracking_key(_config(), header_key, browser_path)
    body = parse_json(raw)
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_body", "The body must be a JSON object.")
    if header_key is None:
        browser = auth.check_tracking_key(_config(), body.get("writeKey"), browser_path)
    if call != "batch" and len(raw) > MESSAGE_LIMIT:
        raise ApiError(413, "payload_too_large", "A single message may be at most 32 KB.")
    received = 1
    if call == "batch" and "batch" in body:
        received = len(batch_of(body))  # refused unless it is an array
    with storing():
        intake.keep(store.engine(), call, raw, body, received, browser=browser)
    return {"success": True}


@bp.after_app_request
def cors_headers(response: Response) -> Response:
    """CORS headers on every /v1 answer, a routing error's (405, 404) included."""
    if not request.path.startswith("/v1/"):
        return response
    return cors.with_headers(_config(), request, response)
