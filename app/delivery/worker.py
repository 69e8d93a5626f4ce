"""The delivery worker: a loop of small steps.

A step first maps what waits in the inbox (`intake`), then asks each destination's
sender which lanes to work (which rows, how many: the sender knows its rate
budgets), claims those rows, hands them to the sender, then marks each row done,
schedules a retry or dead-letters it. Tests run one step at a time; SIGTERM lets
the current step finish.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

import sqlalchemy as sa

from app import metrics, store
from app.delivery.errors import DeliveryError
from app.store import claims, counters, inbox, outbox, received, retention, workers

log = logging.getLogger(__name__)

GIVE_UP_AFTER = 72 * 3600.0  # a failing row is retried for up to 72 hours
# A row whose delivery fails in a way no sender foresaw (a bug, a body this version
# cannot send) is retried with backoff, then set aside as a dead letter.
SET_ASIDE_AFTER = 5
HEARTBEAT_EVERY = 10.0  # seconds between heartbeats
# Seconds between prunings. Retention is counted in hours or days: pruning every few
# minutes keeps the tables about as small as pruning at every heartbeat did, for a
# thirtieth of the work (each pruning reads through the old rows and takes the write
# lock once per slice, app/store/retention.py), and the worker's first step prunes.
PRUNE_EVERY = 300.0
INTAKE_SECONDS = 0.5  # a step maps waiting requests for this long at most, then delivers
# Segment's requests (/segment, /v1) count as still arriving while the inbox holds some,
# and for this long after the newest one arrived, whichever process took it: another
# may be on its way (a loaded machine put up to 3 s between one client's requests).
ARRIVING_FOR = 5.0
Row = sa.Row[Any]


class Result(NamedTuple):
    row: Row
    error: DeliveryError | None  # None: delivered
    merged_into: int | None = None  # delivered in one record with others: its first row id


def _always(candidates: Sequence[Row]) -> bool:
    return True


@dataclass(frozen=True)
class Lane:
    """Rows to claim in one go: up to `limit`, only of `kind` when set.

    `admit` sees the candidate rows before any is leased and takes what their call
    needs (a rate-budget token); when it says no, nothing is claimed. A batch lane
    claims each person's consecutive rows of `kind` (up to `limit` people, `rows`
    rows); of the batch lanes a step offers, the one with the most records is tried.
    A lane with `run_kind` also claims the rows that follow a head row of that kind
    while they are of that kind (the person's waiting updates, to merge).
    """

    limit: int
    kind: str | None = None
    batch_endpoint: bool = False  # Drip: through a batch endpoint (else one call a row)
    admit: Callable[[Sequence[Row]], bool] = _always
    rows: int = 0  # batch lanes: rows at most (0: `limit`)
    merges: bool = False  # batch lanes: a person's rows go as one record
    run_kind: str | None = None
    # (kind, since): rows of `kind` received after `since` wait, and the lane claims
    # past them (they are not offered to `admit`)
    spare: tuple[str, float] | None = None


def _records(lane: Lane, candidates: Sequence[Row]) -> int:
    """How many records `candidates` make in the lane's call."""
    return len({c.person for c in candidates}) if lane.merges else len(candidates)


class Sender(Protocol):
    destination: str

    def lanes(self, due: Mapping[str, int], quiet: float) -> list[Lane]:
        """What to claim now, given how many rows of each kind are due and for how many
        seconds no request has been arriving (0: requests are still arriving)."""

    def deliver(self, rows: Sequence[Row], lane: Lane) -> Iterator[list[Result]]:
        """Send `rows`, yielding results (error None: delivered) as groups finish."""

    def probe(self) -> None:
        """Raise DeliveryError while the credentials are still refused."""

    def close(self) -> None:
        """Finish what is in flight before the process exits."""


def backoff(attempts: int, retry_after: float | None) -> float:
    """Exponential backoff with jitter (2 s doubling, at most an hour); Retry-After wins."""
    if retry_after is not None:
        return retry_after
    return min(3600.0, 2.0 * 2 ** max(0, attempts - 1)) * random.uniform(0.5, 1.0)


def _cause(exc: BaseException) -> BaseException:
    """The driver's error under SQLAlchemy's (whose text holds the statement and its
    parameters: people's data), else `exc`."""
    return getattr(exc, "orig", None) or exc


def describe(exc: BaseException) -> str:
    """The error in one line."""
    cause = _cause(exc)
    first = str(cause).strip().splitlines()[:1]
    return f"{type(cause).__name__}: {first[0] if first else 'no message'}"[:300]


class Trouble:
    """What stops a worker's steps (the store unavailable, a bug): each distinct error
    logged when it starts, again with its count every REPORT_EVERY seconds while it
    lasts, and once when it ends."""

    REPORT_EVERY = 60.0

    def __init__(self) -> None:
        self.message: str | None = None  # the error of the last step, None: none
        self.kind = ""  # its class's name
        self.count = 0
        self.since = 0.0
        self._reported_at = 0.0

    def failed(self, exc: Exception, now: float) -> None:
        message = describe(exc)
        store = isinstance(exc, sa.exc.DBAPIError)
        what = "store unavailable" if store else "step failed"
        if message != self.message:
            self.recovered()
            # A store error is expected now and then; anything else is a bug to look at.
            log.error("%s, retrying: %s", what, message, exc_info=None if store else exc)
            self.message, self.count, self.since, self._reported_at = message, 1, now, now
            self.kind = type(_cause(exc)).__name__
            return
        self.count += 1
        if now - self._reported_at >= self.REPORT_EVERY:
            log.error("%s still (%d times in %.0f s), retrying: %s",
                      what, self.count, now - self.since, message)  # fmt: skip
            self._reported_at = now

    def recovered(self) -> None:
        if self.message is not None:
            log.info("error ended after %d times: %s", self.count, self.message)
            self.message, self.count = None, 0


@dataclass
class Pause:
    """A destination whose credentials were refused: probe, then resume."""

    reason: str
    until: float
    wait: float


def _unforeseen(row: Row, exc: Exception) -> DeliveryError:
    return DeliveryError(
        f"unexpected {type(exc).__name__}: {exc}"[:500],
        permanent=row.attempts >= SET_ASIDE_AFTER,
        code="internal_error",
    )


def _quiet(conn: sa.Connection, now: float) -> float:
    """Seconds since Segment's requests stopped arriving (0 while they arrive), read
    from the store: every process sees the same, whichever one took the requests."""
    if inbox.any_waiting(conn):
        return 0.0
    newest = received.latest(conn, "segment")
    return float("inf") if newest is None else max(0.0, now - newest - ARRIVING_FOR)


class Worker:
    def __init__(
        self,
        engine: sa.Engine,
        senders: Sequence[Sender],
        *,
        intake: Callable[[], bool] | None = None,
        name: str | None = None,
        lease: float = claims.LEASE_SECONDS,
        keep_for: float | None = None,
    ) -> None:
        self.engine = engine
        self.senders = list(senders)
        self.intake = intake
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.lease = lease
        self.keep_for = keep_for  # DATA_RETENTION; None: prune nothing (tests of one step)
        self.paused: dict[str, Pause] = {}
        self._last_beat = 0.0
        self._last_prune = 0.0
        self._stop = threading.Event()
        self.trouble = Trouble()

    def run(self, stop: threading.Event, idle: float = 0.2) -> None:
        """Step until `stop` is set; sleep `idle` seconds whenever there was nothing to do.

        Once `stop` is set (SIGTERM), the call in flight finishes and every row claimed
        but not yet sent is given back at once, so another worker takes it without
        waiting for the lease: a stop takes one call at most, well within a platform's
        30 s of grace.
        """
        self._stop = stop
        log.info("worker %s started", self.name)
        while not stop.is_set():
            try:
                found = self.step()
                self.trouble.recovered()
            except Exception as exc:  # the store unavailable, or a bug: never stop delivering
                self.trouble.failed(exc, time.time())
                found = False
            if not found:
                stop.wait(idle)
        for sender in self.senders:
            sender.close()
        log.info("worker %s stopped", self.name)

    def step(self) -> bool:
        """One round over every destination; True when any work was found."""
        now = time.time()
        paused_before = set(self.paused)
        found = self._intake()
        for sender in self.senders:
            if self._resumable(sender, now):
                found |= self._step(sender, now)
        self._heartbeat(now, force=set(self.paused) != paused_before)
        if self.keep_for and now - self._last_prune >= PRUNE_EVERY:
            self._last_prune = now
            retention.prune(self.engine, now, self.keep_for)
        return found

    def _intake(self) -> bool:
        """Map waiting requests for up to INTAKE_SECONDS: batches are filled from what
        the store holds, so what has arrived should be in it."""
        found = False
        deadline = time.monotonic() + INTAKE_SECONDS
        while self.intake is not None and self.intake():
            found = True
            if time.monotonic() > deadline:
                break
        return found

    def _step(self, sender: Sender, now: float) -> bool:
        with store.writing(self.engine) as conn:
            due = claims.due_counts(conn, sender.destination, now)
            quiet = _quiet(conn, time.time()) if due else 0.0
        lanes = sender.lanes(due, quiet) if due else []
        found = False
        batches = [lane for lane in lanes if lane.batch_endpoint]
        if batches:
            lane, rows = self._claim_batch(sender.destination, batches, time.time())
            if rows:
                found = True
                self._deliver(sender, rows, lane)
        for lane in lanes:
            if self._stop.is_set():  # stopping: claim nothing more
                break
            if not lane.batch_endpoint:
                rows = self._claim(sender.destination, lane, time.time())
                if rows:
                    found = True
                    self._deliver(sender, rows, lane)
        return found

    def _claim_batch(self, dest: str, lanes: list[Lane], now: float) -> tuple[Lane, list[Row]]:
        """The fullest batch the lanes offer, leased once its lane admits it (takes a token).

        Claims of one destination take turns (a lock on PostgreSQL, the write lock on
        SQLite), so each token is one decision, whatever number of processes deliver.
        """
        with store.writing(self.engine) as conn:
            claims.lock_claims(conn, dest)
            offers = [
                (lane, claims.run_candidates(conn, dest, lane.kind or "", now,
                                             people=lane.limit, rows=lane.rows or lane.limit))
                for lane in lanes
            ]  # fmt: skip
            lane, candidates = max(offers, key=lambda offer: _records(*offer))
            if not candidates or not lane.admit(candidates):
                return lane, []
            return lane, claims.lease(conn, [c.id for c in candidates], now, self.lease)

    def _claim(self, dest: str, lane: Lane, now: float) -> list[Row]:
        """Lease the lane's rows once `lane.admit` has taken what their call needs."""
        with store.writing(self.engine) as conn:
            claimed = claims.claim(conn, dest, lane.limit, now, self.lease, lane.kind, lane.admit,
                                   lane.spare)  # fmt: skip
            if len(claimed) == 1 and claimed[0].kind == lane.run_kind:
                claimed = claims.claim_run_of(conn, claimed[0], now, self.lease)
            return claimed

    def _deliver(self, sender: Sender, rows: Sequence[Row], lane: Lane) -> None:
        """Send and settle group by group, so a worker killed mid-claim re-sends little.

        An unforeseen failure does not stop the worker: the rows not yet settled are
        tried again one at a time, so only the row that fails alone is failed (and set
        aside after SET_ASIDE_AFTER tries); it cannot stop delivery in a loop.
        """
        settled: set[int] = set()
        try:
            for results in sender.deliver(rows, lane):
                self._settle(sender.destination, results)
                settled.update(result.row.id for result in results)
                if self._stop.is_set():
                    self._give_back([row for row in rows if row.id not in settled])
                    return
        except sa.exc.DBAPIError:
            raise
        except Exception as exc:
            log.exception("delivering %s rows failed unexpectedly", sender.destination)
            left = [row for row in rows if row.id not in settled]
            if len(left) == 1:
                self._settle(sender.destination, [Result(left[0], _unforeseen(left[0], exc))])
            else:
                for row in left:
                    self._deliver(sender, [row], lane)

    def _give_back(self, rows: Sequence[Row]) -> None:
        """Rows claimed but not sent: due again now, the claim not counted as a try."""
        if rows:
            with store.writing(self.engine) as conn:
                outbox.unclaim(conn, [row.id for row in rows], time.time())
            log.info("worker %s stopping: gave back %d claimed rows", self.name, len(rows))

    def _settle(self, dest: str, results: list[Result]) -> None:
        """Record each row's outcome, its counts and one log line for each delivery."""
        now = time.time()
        counts = metrics.Counts()
        delivered = [r.row for r in results if r.error is None]
        merged = {r.row.id: r.merged_into for r in results if r.error is None and r.merged_into}
        with store.writing(self.engine) as conn:
            forget = any(row.kind in outbox.FORGOTTEN_WHEN_DONE for row in delivered)
            outbox.finish(conn, [row.id for row in delivered], now, forget)
            outbox.mark_merged(conn, merged)
            metrics.count(counts, metrics.DELIVERED, dest, amount=len(delivered))
            metrics.count(counts, metrics.MERGED, amount=len(merged))
            metrics.count(counts, metrics.SAVED, amount=len(merged) - len(set(merged.values())))
            for row in delivered:
                metrics.observe_latency(counts, dest, now - row.received_at)
            for row, error, _ in results:
                if error is not None:
                    self._fail(conn, counts, dest, row, error, now)
            counters.add(conn, counts)
        for row in delivered:
            log.info("delivered %s %s row %s, message %s, for %s", dest, row.kind, row.id,
                     row.message_id, row.email)  # fmt: skip

    def _fail(
        self,
        conn: sa.Connection,
        counts: metrics.Counts,
        dest: str,
        row: Row,
        error: DeliveryError,
        now: float,
    ) -> None:
        if error.auth:
            outbox.release(conn, [row.id], now, error.message)
            self._pause(dest, error.message, now)
        elif not error.attempted:
            outbox.release(conn, [row.id], now + (error.retry_after or 1.0), error.message)
        elif error.permanent or now - row.received_at > GIVE_UP_AFTER:
            outbox.dead_letter(conn, [row.id], error.code, error.message, now)
            metrics.count(counts, metrics.DEAD, dest, error.code)
            log.warning("dead-lettered %s row %s, message %s: %s %s", dest, row.id,
                        row.message_id, error.code, error.message)  # fmt: skip
        else:
            wait = backoff(row.attempts, error.retry_after)
            outbox.retry_later(conn, [row.id], now + wait, error.message)
            metrics.count(counts, metrics.RETRIED, dest)
            log.info("retrying %s row %s, message %s, in %.0f s: %s", dest, row.id,
                     row.message_id, wait, error.message)  # fmt: skip

    def _pause(self, dest: str, reason: str, now: float) -> None:
        if dest not in self.paused:
            log.error("%s refused our credentials, delivery paused: %s", dest, reason)
            self.paused[dest] = Pause(reason, now + 5.0, 5.0)

    def _resumable(self, sender: Sender, now: float) -> bool:
        """False while paused; once the pause ends, probe the credentials first."""
        pause = self.paused.get(sender.destination)
        if pause is None:
            return True
        if now < pause.until:
            return False
        try:
            sender.probe()
        except DeliveryError as exc:
            pause.wait = min(600.0, pause.wait * 2)
            pause.until = now + pause.wait
            pause.reason = exc.message
            return False
        log.info("%s accepts our credentials again, delivery resumed", sender.destination)
        del self.paused[sender.destination]
        return True

    def _heartbeat(self, now: float, force: bool = False) -> None:
        """Report in (every HEARTBEAT_EVERY seconds, or now when `force`)."""
        if not force and now - self._last_beat < HEARTBEAT_EVERY:
            return
        paused = "; ".join(f"{d}: {p.reason}" for d, p in self.paused.items()) or None
        with store.writing(self.engine) as conn:
            workers.heartbeat(conn, self.name, now, paused)
        self._last_beat = now
