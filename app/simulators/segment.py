"""FakeSegment: Segment's HTTP Tracking API (`/v1/batch`, `/v1/track`, ...) as a local server.

Facts from segmentio/segment-docs `src/connections/sources/catalog/libraries/server/
http-api/index.md` ("http-api" below) unless noted. Error bodies are `{"code", "message"}`
because that is what analytics-python's `request.py` reads from a failed response;
Segment does not document them.
"""

from __future__ import annotations

import argparse
import gzip
import json
import zlib
from collections.abc import Sequence
from typing import Any

from flask import Response, g, request

from app.segment_api import BATCH_LIMIT, MESSAGE_LIMIT, TYPES
from app.simulators.base import FakeService, json_response, presented_key
from app.simulators.server import main as serve_main

Message = dict[str, Any]

# Reference segment-side.md §6: over 2500 events a batch is answered 200 but dropped.
MAX_BATCH_EVENTS = 2500


def _error(status: int, message: str, code: str = "invalid_request") -> Response:
    return json_response(status, {"code": code, "message": message})


def _size(message: Any) -> int:
    return len(json.dumps(message, separators=(",", ":")).encode())


class FakeSegment(FakeService):
    """One Segment source with one write key, and every message it received."""

    def __init__(
        self,
        *,
        write_key: str = "segment-test-key",
        latency: float = 0.0,
        failure_rate: float = 0.0,
        seed: int = 0,
        hang_timeout: float = 30.0,
    ) -> None:
        super().__init__(
            "fake_segment",
            latency=latency,
            failure_rate=failure_rate,
            seed=seed,
            hang_timeout=hang_timeout,
        )
        self.write_key: str | None = write_key
        self._messages: list[Message] = []
        self._rejected: list[tuple[str, Any]] = []
        self.app.before_request(self._gate)
        self.app.add_url_rule("/v1/batch", "batch", self._batch, methods=["POST"])
        self.app.add_url_rule("/v1/<kind>", "single", self._single, methods=["POST"])
        self.app.add_url_rule("/_fake/stats", "stats", self._stats, methods=["GET"])

    # What was received.

    def messages(self) -> list[Message]:
        """Every accepted message in arrival order, duplicates (retries) included."""
        with self._lock:
            return list(self._messages)

    def unique_messages(self) -> list[Message]:
        """Messages deduplicated by messageId, first one kept, as Segment does
        (segment-docs `src/guides/duplicate-data.md`)."""
        seen: set[str] = set()
        unique = []
        for message in self.messages():
            message_id = message.get("messageId")
            if message_id is not None and message_id in seen:
                continue
            if message_id is not None:
                seen.add(message_id)
            unique.append(message)
        return unique

    def rejected(self) -> list[tuple[str, Any]]:
        """Messages answered 200 but not kept, with the reason (no user id, batch too long)."""
        with self._lock:
            return list(self._rejected)

    def reset(self) -> None:
        super().reset()
        with self._lock:
            self._messages.clear()
            self._rejected.clear()

    def _stats(self) -> Response:
        """Not Segment: counters for a benchmark that runs the fake as its own process."""
        with self._lock:
            counts = {"messages": len(self._messages), "rejected": len(self._rejected)}
        return json_response(200, {**counts, "unique": len(self.unique_messages())})

    # The gate: faults, body, auth, slowness.

    def _fault_body(self, status: int) -> Any:
        code = "rate_limited" if status == 429 else "server_error"
        return {"code": code, "message": f"Injected failure (HTTP {status})"}

    def _fault_headers(self, response: Response) -> None:
        # http-api, "Rate limits": a 429 carries Retry-After and X-RateLimit-Reset.
        if response.status_code == 429:
            response.headers.setdefault("Retry-After", "1")
            response.headers["X-RateLimit-Reset"] = response.headers["Retry-After"]

    def _gate(self) -> Response | None:
        if request.path.startswith("/_fake/"):
            return None
        failure = self._injected_failure()
        if failure is not None:
            return failure
        bad = self._read_body()
        if bad is not None:
            return bad
        if not self._authenticated():
            return _error(401, "Invalid write key: send it as the Basic auth user or writeKey")
        self._slow_down()
        return None

    def _read_body(self) -> Response | None:
        g.body = None
        raw = request.get_data(cache=True)
        if request.headers.get("Content-Encoding", "").lower() == "gzip":
            try:
                raw = gzip.decompress(raw)
            except (OSError, EOFError, zlib.error):
                return _error(400, "Invalid gzip body")
        limit = BATCH_LIMIT if request.path == "/v1/batch" else MESSAGE_LIMIT
        if len(raw) > limit:
            return _error(400, f"Request body is larger than {limit // 1024}KB")
        try:
            g.body = json.loads(raw)
        except ValueError:
            return _error(400, "Invalid JSON")
        if not isinstance(g.body, dict):
            return _error(400, "The body must be a JSON object")
        return None

    def _authenticated(self) -> bool:
        if self.write_key is None:
            return False
        return self.write_key in (presented_key(), g.body.get("writeKey"))

    # Endpoints.

    def _batch(self) -> Response:
        """http-api, "Batch": `{"batch":[...], "context"?, "integrations"?}`."""
        batch = g.body.get("batch")
        if not isinstance(batch, list) or not all(isinstance(m, dict) for m in batch):
            return _error(400, "batch must be an array of message objects")
        if any(_size(m) > MESSAGE_LIMIT for m in batch):
            return _error(400, "A message in the batch is larger than 32KB")
        if len(batch) > MAX_BATCH_EVENTS:
            self._reject([(f"batch over {MAX_BATCH_EVENTS} events", m) for m in batch])
            return json_response(200, {"success": True})
        body = g.body
        shared = {k: body[k] for k in ("context", "integrations") if isinstance(body.get(k), dict)}
        self._accept([self._merged(m, shared) for m in batch])
        return json_response(200, {"success": True})

    def _single(self, kind: str) -> Response:
        if kind not in TYPES:
            return _error(404, f"Unknown endpoint /v1/{kind}", code="not_found")
        message = {k: v for k, v in g.body.items() if k != "writeKey"}
        self._accept([{"type": kind, **message}])
        return json_response(200, {"success": True})

    @staticmethod
    def _merged(message: Message, shared: dict[str, Any]) -> Message:
        # "it will be merged with any context inside each of the items in the batch"
        merged = dict(message)
        for key, value in shared.items():
            merged[key] = {**value, **(message.get(key) or {})}
        return merged

    def _accept(self, messages: list[Message]) -> None:
        # http-api troubleshooting: a message needs userId or anonymousId (else it is lost).
        kept: list[Message] = []
        lost: list[tuple[str, Any]] = []
        for message in messages:
            if message.get("userId") or message.get("anonymousId"):
                kept.append(message)
            else:
                lost.append(("no userId or anonymousId", message))
        with self._lock:
            self._messages.extend(kept)
        self._reject(lost)

    def _reject(self, lost: list[tuple[str, Any]]) -> None:
        if lost:
            with self._lock:
                self._rejected.extend(lost)


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--write-key", default="segment-test-key")
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--failure-rate", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)


def _build(args: argparse.Namespace) -> FakeSegment:
    return FakeSegment(
        write_key=args.write_key,
        latency=args.latency,
        failure_rate=args.failure_rate,
        seed=args.seed,
    )


def main(argv: Sequence[str] | None = None) -> None:
    serve_main("A fake of Segment's HTTP Tracking API.", _arguments, _build, argv)


if __name__ == "__main__":
    main()
