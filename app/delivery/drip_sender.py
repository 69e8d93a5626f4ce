"""Delivers claimed Drip rows through the Drip client, within the rate budget."""

from __future__ import annotations

from collections.abc import Sequence

from app.delivery.drip_client import DripClient
from app.delivery.errors import DeliveryError
from app.delivery.worker import Result, Row


class DripSender:
    destination = "drip"

    def __init__(self, client: DripClient, claim_size: int = 50) -> None:
        self.client = client
        self.claim_size = claim_size

    def deliver(self, rows: Sequence[Row]) -> list[Result]:
        """One call per row, in order; after a refused token the rest wait untouched."""
        results: list[Result] = []
        for row in rows:
            if results and (error := results[-1][1]) is not None and error.auth:
                results.append((row, error))
                continue
            try:
                self.client.send(row.kind, row.body, row.campaign_id)
            except DeliveryError as exc:
                results.append((row, exc))
            else:
                results.append((row, None))
        return results

    def probe(self) -> None:
        self.client.whoami()

    def close(self) -> None:
        """Calls are synchronous: nothing is left in flight."""
