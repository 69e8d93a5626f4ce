"""What both fakes share: injected faults, slowness, a record of every request, a server."""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from flask import Flask, Response, g, jsonify, request

from app.simulators.server import ServedApp, serve

# Random failures pick among the statuses a load balancer or an overloaded service returns.
RANDOM_5XX = (500, 502, 503, 504)


def json_response(status: int, body: Any = None) -> Response:
    """`body` as JSON with `status`; no body at all when `body` is None (204)."""
    if body is None:
        return Response(status=status)
    response = jsonify(body)
    response.status_code = status
    return response


def presented_key() -> str | None:
    """The key of `Authorization: Basic base64(key:)` (or without the colon) or
    `Bearer key`, as werkzeug parses the header."""
    auth = request.authorization
    if auth is None:
        return None
    key = auth.token if auth.type == "bearer" else auth.username
    return key or None


def seconds_header(seconds: float) -> str:
    """`3` rather than `3.0`: clients parse Retry-After with int()."""
    return str(int(seconds)) if float(seconds).is_integer() else str(seconds)


@dataclass(frozen=True)
class Call:
    """One request as the fake saw it, with the status it answered."""

    method: str
    path: str
    headers: dict[str, str]
    json: Any
    status: int
    at: float  # time.time() when the request arrived


@dataclass(frozen=True)
class Fault:
    status: int
    body: Any
    retry_after: float | None


class FakeService:
    """Base of FakeDrip and FakeSegment; subclasses add routes and auth to `self.app`.

    Knobs a test may set at any time: `latency` (seconds added to each request that
    gets past auth), `failure_rate` (0..1, random 5xx drawn from a seeded RNG so a
    run is repeatable), `fail_next(...)` and `hang()` / `release()`.
    """

    def __init__(
        self,
        name: str,
        *,
        latency: float = 0.0,
        failure_rate: float = 0.0,
        seed: int = 0,
        hang_timeout: float = 30.0,
    ) -> None:
        self.app = Flask(name)
        self.url = ""  # set by serve()
        self.latency = latency
        self.failure_rate = failure_rate
        self.hang_timeout = hang_timeout
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._faults: deque[Fault] = deque()
        self._calls: list[Call] = []
        self._open = threading.Event()
        self._open.set()
        self.app.before_request(self._note_arrival)
        self.app.after_request(self._record)

    def __call__(self, environ: Any, start_response: Any) -> Any:
        """A fake is itself a WSGI app, so it can be mounted or served directly."""
        return self.app(environ, start_response)

    def serve(self, port: int = 0) -> ServedApp:
        """Listen on 127.0.0.1 in a background thread; use as a context manager.

        Also sets `self.url`, so a test can hand the fake itself around.
        """
        served = serve(self.app, port)
        self.url = served.url
        return served

    # Fault injection.

    def fail_next(
        self,
        n: int = 1,
        status: int = 500,
        body: Any = None,
        retry_after: float | None = None,
    ) -> None:
        """Answer the next `n` requests with `status` (and `body`, `Retry-After`)."""
        with self._lock:
            self._faults.extend(Fault(status, body, retry_after) for _ in range(n))

    def hang(self) -> None:
        """Hold every request (after auth) until `release()` or `hang_timeout` seconds."""
        self._open.clear()

    def release(self) -> None:
        self._open.set()

    def _fault_body(self, status: int) -> Any:
        """The body of an injected failure when the test gave none."""
        return {"message": f"Injected failure (HTTP {status})"}

    def _injected_failure(self) -> Response | None:
        with self._lock:
            fault = self._faults.popleft() if self._faults else None
            if fault is None and self.failure_rate > 0 and self._rng.random() < self.failure_rate:
                fault = Fault(self._rng.choice(RANDOM_5XX), None, None)
        if fault is None:
            return None
        body = fault.body if fault.body is not None else self._fault_body(fault.status)
        if isinstance(body, str | bytes):
            response = Response(body, status=fault.status)
        else:
            response = json_response(fault.status, body)
        if fault.retry_after is not None:
            response.headers["Retry-After"] = seconds_header(fault.retry_after)
        self._fault_headers(response)
        return response

    def _fault_headers(self, response: Response) -> None:
        """Headers the real service adds to a failure like this one."""

    def _slow_down(self) -> None:
        """Apply `hang()` and `latency`; called while the request holds its resources."""
        if not self._open.is_set():
            self._open.wait(self.hang_timeout)
        if self.latency > 0:
            time.sleep(self.latency)

    # Recording.

    def _note_arrival(self) -> None:
        g.arrived = time.time()

    def _record(self, response: Response) -> Response:
        if request.path.startswith("/_fake/"):  # the fake's own controls are not traffic
            return response
        body = g.body if "body" in g else request.get_json(force=True, silent=True)
        call = Call(
            method=request.method,
            path=request.path,
            headers=dict(request.headers),
            json=body,
            status=response.status_code,
            at=g.get("arrived", time.time()),
        )
        with self._lock:
            self._calls.append(call)
        return response

    def calls(self, path_suffix: str | None = None) -> list[Call]:
        """Requests received so far, oldest first; only paths ending in `path_suffix` if given."""
        with self._lock:
            calls = list(self._calls)
        if path_suffix is None:
            return calls
        return [c for c in calls if c.path.endswith(path_suffix)]

    def reset(self) -> None:
        """Forget requests and pending faults and end a hang; knobs (latency...) stay."""
        with self._lock:
            self._calls.clear()
            self._faults.clear()
        self.release()
