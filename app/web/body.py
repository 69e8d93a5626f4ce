"""Request bodies: JSON only, gzip undone, within a size limit."""

from __future__ import annotations

import json
import zlib
from typing import Any

from flask import Request

from app.web.errors import ApiError


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


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def parse_json(raw: bytes) -> Any:
    """Strict JSON: NaN and Infinity (which Python would read) are refused, as is
    nesting too deep to read, with a 400 that says so."""
    try:
        return json.loads(raw.decode(), parse_constant=_refuse_constant)
    except UnicodeDecodeError as exc:
        raise ApiError(400, "invalid_json", "The body is not UTF-8 text.") from exc
    except RecursionError as exc:
        raise ApiError(400, "invalid_json", "The body is nested too deeply to read.") from exc
    except json.JSONDecodeError as exc:
        raise ApiError(
            400,
            "invalid_json",
            f"The body is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}.",
        ) from exc
    except ValueError as exc:
        raise ApiError(400, "invalid_json", f"The body is not JSON: {exc}.") from exc
