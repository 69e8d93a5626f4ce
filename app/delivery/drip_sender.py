"""Delivers claimed Drip rows within Drip's two rate budgets.

While the backlog is small, rows go out one by one (lowest latency), one call per
individual-budget token. When a kind's backlog outgrows what the individual budget
clears before the next batch token, its rows also go through the batch endpoint,
up to 1000 a call, so both budgets are spent (README, "How delivery works").
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Mapping, Sequence

from app.delivery.budget import Budget
from app.delivery.drip_client import DripClient
from app.delivery.errors import DeliveryError
from app.delivery.worker import Lane, Result, Row
from app.drip_api import BATCH, BATCH_MAX, record_problem

INDIVIDUAL_CLAIM = 10  # rows a step sends one by one at most


class DripSender:
    destination = "drip"

    def __init__(
        self,
        client: DripClient,
        single_budget: Budget,
        batch_budget: Budget,
        use_batches: bool = True,
    ) -> None:
        self.client = client
        self.single_budget = single_budget  # Drip's individual endpoints
        self.batch_budget = batch_budget  # Drip's batch endpoints
        self.use_batches = use_batches  # off: one call per record, as other integrations do
        # Backlog worth a batch call: what the single-call budget needs longer than
        # one batch interval to clear (72 records at Drip's 3600/h and 50/h).
        self.batch_threshold = max(2, math.ceil(batch_budget.interval / single_budget.interval))

    def lanes(self, due: Mapping[str, int]) -> list[Lane]:
        """Batch lanes for kinds with a backlog, then the one-by-one lane, while budgets last."""
        lanes = [
            Lane(BATCH_MAX, kind, batch_endpoint=True)
            for kind in sorted(BATCH, key=lambda k: -due.get(k, 0))
            if due.get(kind, 0) >= self.batch_threshold
        ]
        lanes = lanes if self.use_batches and self.batch_budget.available else []
        if self.single_budget.available:
            lanes.append(Lane(min(INDIVIDUAL_CLAIM, sum(due.values()))))
        return lanes

    def deliver(self, rows: Sequence[Row], lane: Lane) -> Iterator[list[Result]]:
        if lane.batch_endpoint:
            yield self._send_batch(rows, lane.kind or "")
            return
        stopped: DeliveryError | None = None
        for row in rows:  # one call each, in order
            error = stopped or self._send_one(row)
            if error is not None and (error.auth or not error.attempted):
                stopped = error  # a refused token or a spent budget: the rest wait, untried
            yield [(row, error)]

    def _send_one(self, row: Row) -> DeliveryError | None:
        if not self.single_budget.take():
            return _spent(self.single_budget)
        try:
            self.client.send(row.kind, row.body, row.campaign_id)
        except DeliveryError as exc:
            self._note_rate_limit(exc, self.single_budget)
            return exc
        return None

    def _send_batch(self, rows: Sequence[Row], kind: str) -> list[Result]:
        results: list[Result] = []
        valid: list[Row] = []
        for row in rows:
            reason = record_problem(kind, row.body)
            if reason:
                results.append((row, DeliveryError(reason, permanent=True, code="invalid_record")))
            else:
                valid.append(row)
        if not valid:
            return results
        budget = self.batch_budget
        error = self._post_batch(kind, valid) if budget.take() else _spent(budget)
        return results + [(row, error) for row in valid]

    def _post_batch(self, kind: str, rows: Sequence[Row]) -> DeliveryError | None:
        try:
            self.client.send_batch(kind, [row.body for row in rows])
        except DeliveryError as exc:
            self._note_rate_limit(exc, self.batch_budget)
            return exc
        return None

    @staticmethod
    def _note_rate_limit(error: DeliveryError, budget: Budget) -> None:
        """A 429 over the budget (not a per-person one) suspends it until Drip's window turns."""
        if error.code == "rate_limited":
            budget.suspend_for(error.retry_after or budget.rate.period)
            error.attempted = False  # the rest of the lane waits for the window, untried

    def probe(self) -> None:
        self.client.whoami()

    def close(self) -> None:
        """Calls are synchronous: nothing is left in flight."""


def _spent(budget: Budget) -> DeliveryError:
    wait = max(budget.suspended_until - time.time(), budget.interval)
    return DeliveryError(f"the {budget.name} budget is spent", attempted=False, retry_after=wait)
