"""Delivers claimed Drip rows within Drip's two rate budgets.

While the backlog is small, rows go out one by one (lowest latency), one call per
individual-budget token. When a kind's backlog outgrows what the individual budget
clears before the next batch token, its rows also go through the batch endpoint,
up to 1000 records a call, so both budgets are spent (README, "How delivery works").
A token is taken before its rows are claimed (`Lane.admit`), so a token that is not
there holds nobody's rows. Under backlog, with DRIP_COALESCE on, a person's waiting
subscriber updates go as one merged record (app/delivery/coalesce.py).
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Iterator, Mapping, Sequence

from app.delivery.budget import Budget
from app.delivery.coalesce import Record, merge
from app.delivery.drip_client import DripClient
from app.delivery.errors import DeliveryError
from app.delivery.worker import Lane, Result, Row
from app.drip_api import BATCH, BATCH_MAX, record_problem

INDIVIDUAL_CLAIM = 10  # one-by-one calls a step makes at most
MERGED_ROWS = 10 * BATCH_MAX  # rows a batch of merged records may stand for
MERGED_KIND = "subscriber"  # Drip's upsert is a merge; events and orders are not
ARRIVAL_WAIT = 4  # budget windows a subscriber update waits at most for requests arriving
Group = tuple[list[Row], Record]  # rows and the one record they go out as


class DripSender:
    destination = "drip"

    def __init__(
        self,
        client: DripClient,
        single_budget: Budget,
        batch_budget: Budget,
        use_batches: bool = True,
        coalesce: bool = True,
    ) -> None:
        self.client = client
        self.single_budget = single_budget  # Drip's individual endpoints
        self.batch_budget = batch_budget  # Drip's batch endpoints
        self.use_batches = use_batches  # off: one call per record, as other integrations do
        self.coalesce = coalesce  # DRIP_COALESCE
        # Backlog worth a batch call: what the single-call budget needs longer than
        # one batch interval to clear (72 records at Drip's 3600/h and 50/h).
        self.batch_threshold = max(2, math.ceil(batch_budget.interval / single_budget.interval))

    def lanes(self, due: Mapping[str, int], quiet: float) -> list[Lane]:
        """Batch lanes for kinds with a backlog (the worker sends the fullest batch), then
        one-by-one lanes, while the budgets last. `quiet`: seconds since requests stopped
        arriving (0 while they arrive)."""
        lanes = []
        total = sum(due.values())
        if self.use_batches and self.batch_budget.available:
            for kind in sorted(BATCH, key=lambda k: -due.get(k, 0)):
                if due.get(kind, 0) >= self.batch_threshold:
                    admit = functools.partial(self._admit_batch, kind, quiet, total)
                    merges = self._merges(kind)
                    rows = MERGED_ROWS if merges else BATCH_MAX
                    lanes.append(Lane(BATCH_MAX, kind, True, admit, rows, merges))
        if self.single_budget.available:
            backlog = self.coalesce and total >= self.batch_threshold
            run_kind = MERGED_KIND if backlog else None  # at low volume nothing is merged
            # Under backlog, while requests arrive, a subscriber update waits for the
            # person's next ones (to go with them): the lanes take the rows behind it.
            spare = (
                (MERGED_KIND, self._wait_for_arrivals_since()) if backlog and quiet == 0 else None
            )
            n = min(INDIVIDUAL_CLAIM, total)
            lanes += [Lane(1, admit=self._admit_single, run_kind=run_kind, spare=spare)] * n
        return lanes

    def _merges(self, kind: str | None) -> bool:
        return self.coalesce and kind == MERGED_KIND

    def _admit_batch(self, kind: str, quiet: float, due: int, candidates: Sequence[Row]) -> bool:
        """Spend a batch token on these rows? Only on a batch worth one.

        While requests are still arriving, a person's subscriber updates wait for them
        (ARRIVAL_WAIT windows at most), and a part-filled batch waits to fill (one batch
        interval at most). When the backlog is more than a batch holds, the rest is
        behind calls in flight: a part-filled batch the individual budget can send now is
        left to it, and another waits one batch interval after arrivals stop, as the
        token is worth a full batch.
        """
        merges = self._merges(kind)
        records = len({c.person for c in candidates}) if merges else len(candidates)
        if records < self.batch_threshold:
            return False
        if quiet == 0 and merges and self._may_wait(candidates):
            return False
        part = records < BATCH_MAX
        if quiet == 0 and part and _waited(candidates) < self.batch_budget.interval:
            return False
        if part and due > BATCH_MAX:
            if records <= self.single_budget.remaining():
                return False
            if quiet < self.batch_budget.interval:
                return False
        return self.batch_budget.take()

    def _admit_single(self, candidates: Sequence[Row]) -> bool:
        return self.single_budget.take()

    def _may_wait(self, candidates: Sequence[Row]) -> bool:
        return min(c.received_at for c in candidates) > self._wait_for_arrivals_since()

    def _wait_for_arrivals_since(self) -> float:
        """Subscriber updates received after this time still wait for what arrives."""
        return time.time() - ARRIVAL_WAIT * self.batch_budget.rate.period

    def deliver(self, rows: Sequence[Row], lane: Lane) -> Iterator[list[Result]]:
        if lane.batch_endpoint:
            yield self._send_batch(rows, lane.kind or "")
            return
        stopped: DeliveryError | None = None
        for n, (group, record) in enumerate(self._groups(rows)):  # one call each, in order
            if stopped is None and n > 0 and not self.single_budget.take():
                stopped = _spent(self.single_budget)  # the claim's token covered the first
            error = stopped or self._send_one(group[0], record)
            if error is not None and stopped is None:
                # A refused token or a spent budget: the rest wait, untried; after any
                # other failure the person's later records wait for this one.
                stopped = error if error.auth or not error.attempted else _behind(error)
            yield _results(group, error)

    def _groups(self, rows: Sequence[Row]) -> list[Group]:
        """The records `rows` go out as: one each, or (subscribers, DRIP_COALESCE on) each
        person's rows merged, people in the order of their first row."""
        if not rows or not self._merges(rows[0].kind):
            return [([row], row.body) for row in rows]
        people: dict[str, list[Row]] = {}
        for row in rows:
            people.setdefault(row.person, []).append(row)
        groups: list[Group] = []
        for own in people.values():
            start = 0
            for record, count in merge([row.body for row in own]):
                groups.append((own[start : start + count], record))
                start += count
        return groups

    def _send_one(self, row: Row, record: Record) -> DeliveryError | None:
        try:
            self.client.send(row.kind, record, row.campaign_id)
        except DeliveryError as exc:
            self._note_rate_limit(exc, self.single_budget)
            return exc
        return None

    def _send_batch(self, rows: Sequence[Row], kind: str) -> list[Result]:
        """One batch call (its token was taken by the claim); rows Drip would drop are
        dead-lettered instead, records over a batch's 1000 wait for the next one."""
        results: list[Result] = []
        valid: list[Row] = []
        for row in rows:
            reason = record_problem(kind, row.body)
            if reason:
                results.append(
                    Result(row, DeliveryError(reason, permanent=True, code="invalid_record"))
                )
            else:
                valid.append(row)
        groups = self._groups(valid)
        sent, over = groups[:BATCH_MAX], groups[BATCH_MAX:]
        if sent:
            error = self._post_batch(kind, [record for _, record in sent])
            results += [result for group, _ in sent for result in _results(group, error)]
        full = DeliveryError("waits for the next batch", attempted=False, retry_after=0.01)
        return results + [Result(row, full) for group, _ in over for row in group]

    def _post_batch(self, kind: str, records: list[Record]) -> DeliveryError | None:
        try:
            self.client.send_batch(kind, records)
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


def _waited(candidates: Sequence[Row]) -> float:
    """Seconds the oldest of `candidates` has waited since it was received."""
    return time.time() - min(c.received_at for c in candidates)


def _results(group: list[Row], error: DeliveryError | None) -> list[Result]:
    """Each row of a record gets the record's outcome; merged rows name the record."""
    into = group[0].id if len(group) > 1 else None
    return [Result(row, error, into) for row in group]


def _spent(budget: Budget) -> DeliveryError:
    wait = max(budget.suspended_until - time.time(), budget.interval)
    return DeliveryError(f"the {budget.name} budget is spent", attempted=False, retry_after=wait)


def _behind(error: DeliveryError) -> DeliveryError:
    return DeliveryError(f"waits for this person's earlier update: {error.message}"[:500],
                         attempted=False, retry_after=1.0)  # fmt: skip
