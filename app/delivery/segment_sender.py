"""Delivers Drip webhooks to Segment as Track calls through segment-analytics-python.

The library's traps, and what we do about each:
* a Client made before a fork has no consumer thread in the child: we make one
  lazily per process id;
* `atexit` only joins, it does not flush: rows leave the store only after our own
  flush, and `close()` shuts the client down on SIGTERM / worker exit;
* a message over 32 KB raises in the caller: that row is dead-lettered;
* `flush()` has no timeout: we wait for it in a thread, and on timeout retry the
  rows from the store and start a fresh client.
A failed batch is reported through `on_error`; its rows are retried from the store.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from segment.analytics import Client

from app import __version__
from app.delivery.errors import DeliveryError, from_status
from app.delivery.worker import Lane, Result, Row
from app.mapping.to_segment import to_track

log = logging.getLogger(__name__)


class SegmentSender:
    destination = "segment"
    claim_size = 100  # one library batch (upload_size)

    def __init__(self, write_key: str, host: str, flush_timeout: float = 30.0) -> None:
        self.write_key = write_key
        self.host = host
        self.flush_timeout = flush_timeout
        self._client: Client | None = None
        self._pid = 0
        self._failed: dict[str, DeliveryError] = {}
        self._lock = threading.Lock()

    def client(self) -> Client:
        """This process's client, created after any fork."""
        if self._client is None or self._pid != os.getpid():
            self._client = Client(
                self.write_key,
                host=self.host,
                on_error=self._on_error,
                upload_size=self.claim_size,
                upload_interval=0.05,
                max_retries=2,  # short: the store retries for 72 hours
                timeout=10,
                max_total_backoff_duration=10,
                max_rate_limit_duration=20,
            )
            self._pid = os.getpid()
        return self._client

    def _on_error(self, error: Exception, batch: list[dict[str, Any]]) -> None:
        """Called by the library's consumer thread for a batch it gave up on."""
        status = getattr(error, "status", None)
        text = f"Segment refused the batch: {error}"
        failure = (
            from_status(status, f"http_{status}", text, None)
            if isinstance(status, int)
            else DeliveryError(text, code="segment_error")
        )
        with self._lock:
            for message in batch:
                self._failed[str(message.get("messageId"))] = failure

    def lanes(self, due: Mapping[str, int]) -> list[Lane]:
        return [Lane(self.claim_size)]

    def deliver(self, rows: Sequence[Row], lane: Lane) -> Iterator[list[Result]]:
        """All rows at once: the library sends them as one batch."""
        yield self._deliver(rows)

    def _deliver(self, rows: Sequence[Row]) -> list[Result]:
        client = self.client()
        refused: dict[int, DeliveryError] = {}
        for row in rows:
            error = self._enqueue(client, row)
            if error:
                refused[row.id] = error
        if not self._flush(client):
            timeout = DeliveryError(
                f"Segment did not take the batch within {self.flush_timeout:g}s"
            )
            return [(row, refused.get(row.id, timeout)) for row in rows]
        with self._lock:
            failed, self._failed = self._failed, {}
        return [(row, refused.get(row.id) or failed.get(row.message_id)) for row in rows]

    def _enqueue(self, client: Client, row: Row) -> DeliveryError | None:
        try:
            queued, _ = client.track(**to_track(row.body, __version__))
        except RuntimeError:  # over 32 KB: Segment would refuse it every time
            return DeliveryError(
                "the Track call is over Segment's 32 KB limit", permanent=True, code="too_large"
            )
        except ValueError as exc:
            return DeliveryError(str(exc), permanent=True, code="invalid_webhook")
        if not queued:
            return DeliveryError("the Segment library's queue is full", code="queue_full")
        return None

    def _flush(self, client: Client) -> bool:
        """Flush with a deadline; on timeout drop the stuck client for a fresh one."""
        flusher = threading.Thread(target=client.flush, daemon=True)
        flusher.start()
        flusher.join(self.flush_timeout)
        if flusher.is_alive():
            log.error("Segment flush timed out after %ss; rows will be retried", self.flush_timeout)
            self._client = None
            return False
        return True

    def probe(self) -> None:
        """Segment reports auth failures per batch; nothing to probe."""

    def close(self) -> None:
        """Flush and stop the consumer (SIGTERM, worker exit)."""
        if self._client is not None and self._pid == os.getpid():
            self._flush(self._client)
            self._client.join()
