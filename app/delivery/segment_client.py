"""The one door to Segment's tracking API: analytics-python's own request function.

The library's `request.post` sends one batch synchronously and raises `APIError`
with the status when Segment refuses it; every failure becomes a DeliveryError.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

import requests
from segment.analytics.request import APIError, post

from app.delivery.errors import from_status, parse_retry_after, unreachable
from app.segment_api import LIBRARY_BATCH_BYTES

Message = dict[str, Any]


class SegmentClient:
    def __init__(self, write_key: str, host: str, timeout: float = 10.0) -> None:
        self.write_key = write_key
        self.host = host
        self.timeout = timeout

    def send_batch(self, messages: Sequence[Message]) -> None:
        """Post messages built by analytics-python as one batch (under its size limit)."""
        try:
            post(self.write_key, self.host, timeout=self.timeout, batch=list(messages))
        except APIError as exc:
            headers = exc.response.headers if exc.response is not None else {}
            retry_after = parse_retry_after(headers.get("Retry-After"))
            text = f"Segment refused the batch: {exc.message}"
            raise from_status(exc.status, f"http_{exc.status}", text, retry_after) from exc
        except requests.RequestException as exc:
            timed_out = self.timeout if isinstance(exc, requests.Timeout) else None
            raise unreachable("Segment", exc, timed_out) from exc


def chunks(messages: Sequence[Message], limit: int = LIBRARY_BATCH_BYTES) -> Iterator[range]:
    """Index ranges of `messages` whose batches stay under `limit` bytes of JSON."""
    start, size = 0, 0
    for i, message in enumerate(messages):
        length = len(json.dumps(message, separators=(",", ":"))) + 1
        if i > start and size + length > limit:
            yield range(start, i)
            start, size = i, 0
        size += length
    if start < len(messages):
        yield range(start, len(messages))
