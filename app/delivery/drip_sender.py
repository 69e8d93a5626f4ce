"""Delivers claimed Drip rows through the Drip client, within the rate budget."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from app.delivery.drip_client import DripClient
from app.delivery.errors import DeliveryError
from app.delivery.worker import Result, Row


class DripSender:
    destination = "drip"

    def __init__(self, client: DripClient, claim_size: int = 10) -> None:
        self.client = client
        self.claim_size = claim_size

    def deliver(self, rows: Sequence[Row]) -> Iterator[Result]:
        """One call per row, in order; after a refused token the rest wait untouched."""
        refused: DeliveryError | None = None
        for row in rows:
            if refused:
                yield row, refused
                continue
            try:
                self.client.send(row.kind, row.body, row.campaign_id)
            except DeliveryError as exc:
                refused = exc if exc.auth else None
                yield row, exc
            else:
                yield row, None

    def probe(self) -> None:
        self.client.whoami()

    def close(self) -> None:
        """Calls are synchronous: nothing is left in flight."""
