"""Who may post Segment messages: a Webhooks signature or the bridge write key.

All comparisons are constant-time; with no secret configured the endpoints fail
closed (503) with a message that says what to set.
"""

from __future__ import annotations

import hashlib
import hmac
import json

from flask import Request

from app.config import Config
from app.web.errors import ApiError


def signed_bytes(raw: bytes) -> bytes:
    """What Segment signs: the body, or for a JSON array the bytes of its first element.

    A body that cannot be read this way is checked whole (and then does not match).
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw
    start = len(text) - len(text.lstrip())
    if not text.startswith("[", start):
        return raw
    inner = text[start + 1 :]
    offset = start + 1 + len(inner) - len(inner.lstrip())
    try:
        _, end = json.JSONDecoder().raw_decode(text, offset)
    except (json.JSONDecodeError, RecursionError):
        return raw
    return text[offset:end].encode("utf-8")


def signature(secret: str, raw: bytes) -> str:
    return hmac.new(secret.encode(), signed_bytes(raw), hashlib.sha1).hexdigest()


def presented_key(request: Request) -> str | None:
    """The key from `Authorization: Bearer <key>` or Basic auth's user part."""
    auth = request.authorization
    if auth is None:
        return None
    key = auth.token if auth.type == "bearer" else auth.username
    return key or None


def values(secret: str | None) -> list[str]:
    """A secret's accepted values: one, or two separated by a comma while it is rotated
    (`new,old`), so that neither side of a change is refused meanwhile."""
    return [v.strip() for v in (secret or "").split(",") if v.strip()]


def secret_matches(given: str | None, expected: str | None) -> bool:
    """Constant-time comparisons with each accepted value; nothing matches no secret."""
    if not given:
        return False
    matches = [hmac.compare_digest(given.encode(), v.encode()) for v in values(expected)]
    return any(matches)


def check_webhook(config: Config, request: Request, raw: bytes) -> bool:
    """Auth for POST /segment: X-Signature, else the bridge write key; True when signed."""
    secret, key = config.segment_shared_secret, config.bridge_write_key
    if not secret and not key:
        raise ApiError(
            503,
            "not_configured",
            "Set SEGMENT_SHARED_SECRET (the Webhooks destination's shared secret) "
            "or BRIDGE_WRITE_KEY to accept Segment messages.",
        )
    given = request.headers.get("X-Signature")
    if given and secret:
        sent = given.strip().lower()
        if any(secret_matches(sent, signature(one, raw)) for one in values(secret)):
            return True
        raise ApiError(
            401,
            "bad_signature",
            "X-Signature does not match: check that SEGMENT_SHARED_SECRET equals "
            "the shared secret in Segment's Webhooks destination settings.",
        )
    if secret_matches(presented_key(request), key):
        return False
    raise ApiError(401, "unauthorized", _how_to_auth(secret, key))


def check_tracking_key(config: Config, given: object, browser_path: bool) -> bool:
    """Auth for /v1/*: BRIDGE_WRITE_KEY anywhere, BROWSER_WRITE_KEY on the browser paths
    only (as the Basic user, Bearer, or `writeKey` in the body); True for the browser key,
    whose messages are mapped with the browser's restrictions."""
    bridge, browser = config.bridge_write_key, config.browser_write_key
    if not bridge and not (browser_path and browser):
        raise ApiError(
            503,
            "not_configured",
            "Set BRIDGE_WRITE_KEY and use it as the write key of the Segment library "
            "(BROWSER_WRITE_KEY for analytics.js in pages).",
        )
    key = given if isinstance(given, str) else None
    if browser_path and secret_matches(key, browser):
        return True
    if secret_matches(key, bridge):
        return False
    if secret_matches(key, browser):
        raise ApiError(
            401,
            "browser_key",
            "BROWSER_WRITE_KEY authorises only analytics.js's paths (/v1/i, /v1/t, /v1/p, "
            "/v1/s, /v1/g, /v1/a, /v1/b); server libraries use BRIDGE_WRITE_KEY.",
        )
    raise ApiError(
        401,
        "unauthorized",
        "Missing or wrong write key: use BRIDGE_WRITE_KEY as the library's write key "
        "(BROWSER_WRITE_KEY in pages), sent as the Basic auth user or as writeKey in the body.",
    )


def _how_to_auth(secret: str | None, key: str | None) -> str:
    ways = []
    if secret:
        ways.append("an X-Signature made with SEGMENT_SHARED_SECRET")
    if key:
        ways.append("Authorization: Bearer <BRIDGE_WRITE_KEY> (or Basic with it as user)")
    return "Missing or wrong credentials: send " + " or ".join(ways) + "."
