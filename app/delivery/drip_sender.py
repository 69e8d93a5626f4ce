"""Delivers claimed Drip rows within Drip's two rate budgets.

While the backlog is small, rows go out one by one (lowest latency), one call per
individual-budget token. When a kind's backlog outgrows what the individual budget
clears before the next batch token, its rows also go through the batch endpoint,
up to 1000 a call, so both budgets are spent (SPEC 4.4).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Mapping, Sequence

from app.delivery import drip_rules
from app.delivery.budget import Budget
from app.delivery.drip_client import BATCH, BATCH_MAX, DripClient
from app.delivery.errors import DeliveryError
from app.delivery.worker import Lane, Result, Row

INDIVIDUAL_CLAIM = 10  # rows a step sends one by one at most


class DripSender:
    destination = "drip"

    def __init__(
        self, client: DripClient, individual: Budget, batch: Budget, batching: bool = True
    ) -> None:
        self.client = client
        self.individual = individual
        self.batch = batch
        self.batching = batching  # off: one call per record, as other integrations do
        # Backlog worth a batch call: what the individual budget needs longer than
        # one batch interval to clear (72 records at Drip's 3600/h and 50/h).
        self.batch_min = max(2, math.ceil(batch.interval / individual.interval))

    def lanes(self, due: Mapping[str, int]) -> list[Lane]:
        """Batch lanes for kinds with a backlog, then the one-by-one lane, while budgets last."""
        lanes = [
            Lane(BATCH_MAX, kind, batch=True)
            for kind in sorted(BATCH, key=lambda k: -due.get(k, 0))
            if due.get(kind, 0) >= self.batch_min
        ]
        lanes = lanes if self.batching and self.batch.open else []
        if self.individual.open:
            lanes.append(Lane(min(INDIVIDUAL_CLAIM, sum(due.values()))))
        return lanes

    def deliver(self, rows: Sequence[Row], lane: Lane) -> Iterator[list[Result]]:
        if lane.batch:
            yield self._send_batch(rows, lane.kind or "")
            return
        stopped: DeliveryError | None = None
        for row in rows:  # one call each, in order
            error = stopped or self._send_one(row)
            if error is not None and (error.auth or not error.attempted):
                stopped = error  # a refused token or a spent budget: the rest wait, untried
            yield [(row, error)]

    def _send_one(self, row: Row) -> DeliveryError | None:
        if not self.individual.take():
            return _spent(self.individual)
        try:
            self.client.send(row.kind, row.body, row.campaign_id)
        except DeliveryError as exc:
            self._react(exc, self.individual)
            return exc
        return None

    def _send_batch(self, rows: Sequence[Row], kind: str) -> list[Result]:
        results: list[Result] = []
        valid: list[Row] = []
        for row in rows:
            reason = drip_rules.problem(kind, row.body)
            if reason:
                results.append((row, DeliveryError(reason, permanent=True, code="invalid_record")))
            else:
                valid.append(row)
        if not valid:
            return results
        error = _spent(self.batch) if not self.batch.take() else self._post_batch(kind, valid)
        return results + [(row, error) for row in valid]

    def _post_batch(self, kind: str, rows: Sequence[Row]) -> DeliveryError | None:
        try:
            self.client.send_batch(kind, [row.body for row in rows])
        except DeliveryError as exc:
            self._react(exc, self.batch)
            return exc
        return None

    @staticmethod
    def _react(error: DeliveryError, budget: Budget) -> None:
        """A 429 over the budget (not a per-person one) closes it until Drip's window turns."""
        if error.code == "rate_limited":
            budget.close_for(error.retry_after or budget.rate.period)
            error.attempted = False  # the rest of the lane waits for the window, untried

    def probe(self) -> None:
        self.client.whoami()

    def close(self) -> None:
        """Calls are synchronous: nothing is left in flight."""


def _spent(budget: Budget) -> DeliveryError:
    wait = max(budget.closed_until - time.time(), budget.interval)
    return DeliveryError(f"the {budget.name} budget is spent", attempted=False, retry_after=wait)
