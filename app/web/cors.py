"""CORS for the tracking API: pages on BROWSER_ORIGINS may post, every other page is refused.

A browser sends `Origin` with every cross-origin request; servers and Segment's
server libraries send none, and CORS does not concern them. A request whose
Origin is not allowed is refused before anything of it is read, so a "simple"
text/plain POST (which a browser sends without asking first) stores nothing.
"""

from __future__ import annotations

from flask import Request, Response

from app.config import Config
from app.segment_api import BROWSER_HEADERS
from app.web.errors import ApiError

ANY = "*"
# Chromium keeps a preflight for at most 2 hours, Firefox a day; 2 hours for both.
PREFLIGHT_SECONDS = 7200


def allowed(config: Config, origin: str) -> bool:
    """Whether a page at `origin` may post (BROWSER_ORIGINS, compared exactly, lowercase)."""
    return ANY in config.browser_origins or origin.lower() in config.browser_origins


def check_origin(config: Config, request: Request) -> None:
    """Refuse (403) a request that a page on an origin not allowed has sent."""
    origin = request.headers.get("Origin")
    if origin is None or allowed(config, origin):
        return
    why = (
        "BROWSER_ORIGINS is not set, so the bridge takes no browser traffic"
        if not config.browser_origins
        else "that origin is not in BROWSER_ORIGINS"
    )
    raise ApiError(
        403,
        "origin_not_allowed",
        f"Requests from pages on {origin} are refused: {why}.",
        {"origin": origin},
    )


def preflight() -> Response:
    """The answer to a preflight (OPTIONS) from an allowed origin: POST with the headers
    analytics.js sends."""
    response = Response(status=204)
    del response.headers["Content-Type"]  # no body
    response.headers["Access-Control-Allow-Methods"] = "POST"
    response.headers["Access-Control-Allow-Headers"] = ", ".join(BROWSER_HEADERS)
    response.headers["Access-Control-Max-Age"] = str(PREFLIGHT_SECONDS)
    return response


def with_headers(config: Config, request: Request, response: Response) -> Response:
    """Access-Control-Allow-Origin on every answer to an allowed page, errors included,
    so the page (and analytics.js) can read what went wrong. Without BROWSER_ORIGINS no
    answer depends on Origin, and none is touched."""
    if not config.browser_origins:
        return response
    if ANY not in config.browser_origins:
        response.vary.add("Origin")
    origin = request.headers.get("Origin")
    if origin is not None and allowed(config, origin):
        response.headers["Access-Control-Allow-Origin"] = (
            ANY if ANY in config.browser_origins else origin
        )
    return response
