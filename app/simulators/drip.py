"""FakeDrip: Drip's REST API as a local HTTP server, for tests, benchmarks and the demo.

Every request passes one gate, in this order: injected faults, auth (401/403), the
per-subscriber concurrency rule, the rate budget, then `hang`/`latency` while the
subscriber is held. Routes and validation live in drip_routes.py and drip_rules.py.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from flask import Response, g, request

from app.simulators import drip_routes
from app.simulators import drip_rules as rules
from app.simulators.base import FakeService, json_response, presented_key
from app.simulators.drip_people import People
from app.simulators.limits import Budget, FixedWindow, InFlight
from app.simulators.server import main as serve_main

Record = dict[str, Any]

# rest/_rate_limiting.md: "up to 50 requests per hour for batch endpoints and 3,600
# individual requests per hour for other API endpoints".
DEFAULT_RATE_LIMIT = (3600, 3600.0)
DEFAULT_BATCH_RATE_LIMIT = (50, 3600.0)


def _is_batch(path: str) -> bool:
    # rest/_batch_api.md: v2 ".../batches" and v3 shopper activity ".../batch".
    return path.endswith(("/batches", "/batch"))


def _identity(record: Any) -> str | None:
    if not isinstance(record, dict):
        return None
    for key in ("email", "id", "person_id"):
        if record.get(key):
            return str(record[key]).lower()
    return None


class FakeDrip(FakeService):
    """A Drip account with one API token, its subscribers and what was sent to it."""

    def __init__(
        self,
        *,
        token: str = "drip-test-token",
        account_id: str = "9999999",
        campaigns: Iterable[str] = ("1111",),
        rate_limit: tuple[int, float] = DEFAULT_RATE_LIMIT,
        batch_rate_limit: tuple[int, float] = DEFAULT_BATCH_RATE_LIMIT,
        retry_after: bool = True,
        latency: float = 0.0,
        failure_rate: float = 0.0,
        seed: int = 0,
        hang_timeout: float = 30.0,
    ) -> None:
        super().__init__(
            "fake_drip",
            latency=latency,
            failure_rate=failure_rate,
            seed=seed,
            hang_timeout=hang_timeout,
        )
        self.token: str | None = token
        self._issued_token = token
        self.account_id = str(account_id)
        self.user = {"email": "owner@example.com", "name": "Fake Drip", "time_zone": "Etc/UTC"}
        self.campaigns = {str(c) for c in campaigns}
        self.retry_after = retry_after
        self.window = FixedWindow(Budget(*rate_limit))
        self.batch_window = FixedWindow(Budget(*batch_rate_limit))
        self._in_flight = InFlight()
        self.people = People(self.account_id)
        self._clear_state()
        self.app.before_request(self._gate)
        self.app.after_request(self._rate_headers)
        self.app.teardown_request(self._leave)
        drip_routes.register(self.app, self)

    def _clear_state(self) -> None:
        self._records: defaultdict[str, list[Record]] = defaultdict(list)
        self._dropped: list[tuple[str, Record, list[rules.Error]]] = []
        self.dropped = 0
        self.over_budget = 0
        self.concurrency_violations = 0

    # Test controls.

    def revoke_token(self) -> None:
        """Every request now gets 401, as after the user revokes the token in Drip."""
        self.token = None

    def restore_token(self) -> None:
        self.token = self._issued_token

    def mark_removed(self, email: str, campaign_id: str) -> None:
        """Pretend `email` was removed from the campaign (for `reactivate_if_removed`)."""
        self.people.mark_removed(email, str(campaign_id))

    def reset(self) -> None:
        """A fresh account: no subscribers, records, counters or used budget."""
        super().reset()
        with self._lock:
            self._clear_state()
        self.people.clear()
        self.window.reset()
        self.batch_window.reset()
        self.restore_token()

    # What was delivered.

    def records(self, kind: str) -> list[Record]:
        """Accepted records of `kind` (subscriber, event, campaign, tag, untag, order),
        from individual and batch calls alike, in arrival order."""
        with self._lock:
            return list(self._records.get(kind, ()))

    def dropped_records(self, kind: str | None = None) -> list[tuple[str, Record, list[Any]]]:
        """Batch records silently dropped, with the validation errors that dropped them."""
        with self._lock:
            return [d for d in self._dropped if kind is None or d[0] == kind]

    def stats(self) -> dict[str, Any]:
        """Counters, also served at GET /_fake/stats for a fake in its own process."""
        with self._lock:
            return {
                "dropped": self.dropped,
                "over_budget": self.over_budget,
                "concurrency_violations": self.concurrency_violations,
                "records": {kind: len(recs) for kind, recs in self._records.items()},
                "requests": len(self._calls),
            }

    def subscriber(self, id_or_email: str) -> Record | None:
        """The stored person (after all merges), by email or Drip id."""
        return self.people.find(id_or_email)

    # State changes, called by drip_routes.

    def deliver(self, kind: str, record: Record) -> None:
        with self._lock:
            self._records[kind].append(record)

    def drop(self, kind: str, record: Record, errors: list[rules.Error]) -> None:
        with self._lock:
            self.dropped += 1
            self._dropped.append((kind, record, errors))

    def _fault_body(self, status: int) -> Any:
        # An injected 429 looks like the real budget one; Drip's 5xx body is not documented.
        return rules.RATE_LIMITED if status == 429 else super()._fault_body(status)

    # The gate.

    def _gate(self) -> Response | None:
        if request.path.startswith("/_fake/"):
            return None
        failure = self._injected_failure()
        if failure is not None:
            return failure
        denied = self._authenticate()
        if denied is not None:
            return denied
        self._read_body()
        key = None if _is_batch(request.path) else self._subscriber_key()
        if key is not None:
            if not self._in_flight.try_enter(key):
                with self._lock:
                    self.concurrency_violations += 1
                return json_response(429, rules.CONCURRENT)
            g.subscriber_key = key
        over = self._spend_budget()
        if over is not None:
            return over
        self._slow_down()
        return None

    def _authenticate(self) -> Response | None:
        header = request.headers.get("Authorization")
        if not header:
            message = "Authentication required: send your API token as the Basic auth user"
            return json_response(401, rules.authentication_error(message))
        if self.token is None or presented_key() != self.token:
            message = "The API token is invalid or has been revoked"
            return json_response(401, rules.authentication_error(message))
        account = (request.view_args or {}).get("acct")
        if account is not None and account != self.account_id:
            return json_response(403, rules.AUTHORIZATION_ERROR)
        return None

    def _read_body(self) -> None:
        g.body, g.bad_json = None, None
        raw = request.get_data(cache=True)
        if raw.strip():
            try:
                g.body = json.loads(raw)
            except ValueError as exc:
                g.bad_json = str(exc)

    def _subscriber_key(self) -> str | None:
        who = (request.view_args or {}).get("who")
        if who:
            return str(who).lower()
        body = g.body
        if not isinstance(body, dict):
            return None
        for wrapper in ("subscribers", "events", "tags"):
            records = body.get(wrapper)
            if isinstance(records, list) and records:
                return _identity(records[0])
        return _identity(body)  # a v3 order is the whole body

    def _window(self) -> FixedWindow:
        return self.batch_window if _is_batch(request.path) else self.window

    def _spend_budget(self) -> Response | None:
        verdict = g.verdict = self._window().take()
        if verdict.allowed:
            return None
        with self._lock:
            self.over_budget += 1
        response = json_response(429, rules.RATE_LIMITED)
        if self.retry_after:  # not documented by Drip for this endpoint family; a knob
            response.headers["Retry-After"] = str(verdict.retry_after)
        return response

    def _rate_headers(self, response: Response) -> Response:
        # rest/_rate_limiting.md shows X-RateLimit-Limit and X-RateLimit-Remaining.
        if not request.path.startswith("/_fake/"):
            verdict = g.get("verdict") or self._window().peek()
            response.headers["X-RateLimit-Limit"] = str(verdict.limit)
            response.headers["X-RateLimit-Remaining"] = str(verdict.remaining)
        return response

    def _leave(self, exc: BaseException | None) -> None:
        key = g.pop("subscriber_key", None)
        if key is not None:
            self._in_flight.leave(key)


def _budget(text: str) -> tuple[int, float]:
    count, _, seconds = text.partition("/")
    return int(count), float(seconds or 3600)


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--token", default="drip-test-token")
    parser.add_argument("--account-id", default="9999999")
    parser.add_argument("--campaign", action="append", help="a campaign id that exists")
    parser.add_argument("--rate-limit", type=_budget, default=DEFAULT_RATE_LIMIT, help="N/SECONDS")
    parser.add_argument("--batch-rate-limit", type=_budget, default=DEFAULT_BATCH_RATE_LIMIT)
    parser.add_argument("--no-retry-after", action="store_true")
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--failure-rate", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)


def _build(args: argparse.Namespace) -> FakeDrip:
    return FakeDrip(
        token=args.token,
        account_id=args.account_id,
        campaigns=args.campaign or ("1111",),
        rate_limit=args.rate_limit,
        batch_rate_limit=args.batch_rate_limit,
        retry_after=not args.no_retry_after,
        latency=args.latency,
        failure_rate=args.failure_rate,
        seed=args.seed,
    )


def main(argv: Sequence[str] | None = None) -> None:
    serve_main("A fake of Drip's REST API.", _arguments, _build, argv)


if __name__ == "__main__":
    main()
