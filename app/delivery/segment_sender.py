"""Delivers stored Segment Track messages (built at ingest by analytics-python).

A claim of up to 100 rows goes out as one batch request, split where it would
pass the library's 475 KB; each batch is settled by its own answer.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

from app.delivery.errors import DeliveryError
from app.delivery.segment_client import SegmentClient, chunks
from app.delivery.worker import Lane, Result, Row
from app.segment_api import LIBRARY_BATCH_MESSAGES


class SegmentSender:
    destination = "segment"

    def __init__(self, client: SegmentClient) -> None:
        self.client = client

    def lanes(self, due: Mapping[str, int], quiet: float) -> list[Lane]:
        return [Lane(LIBRARY_BATCH_MESSAGES)]

    def deliver(self, rows: Sequence[Row], lane: Lane) -> Iterator[list[Result]]:
        for part in chunks([row.body for row in rows]):
            batch = [rows[i] for i in part]
            try:
                self.client.send_batch([row.body for row in batch])
            except DeliveryError as exc:
                yield [Result(row, exc) for row in batch]
            else:
                yield [Result(row, None) for row in batch]

    def probe(self) -> None:
        """Segment reports refused keys per batch; nothing to probe."""

    def close(self) -> None:
        """Calls are synchronous: nothing is left in flight."""
