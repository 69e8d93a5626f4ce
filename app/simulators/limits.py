"""Drip's two limits: a request budget per window, and one request per subscriber at a time."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Budget:
    """How many requests fit in a window of `period` seconds."""

    limit: int
    period: float


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    limit: int
    remaining: int
    retry_after: int  # whole seconds until the window turns, at least 1


class FixedWindow:
    """A counter that resets `period` seconds after the first request of a window.

    Fixed, not sliding: Drip documents "requests per hour" and no reset header, and its
    429 says "try again in an hour", which reads as a counter per hour. A fixed window
    also gives an exact Retry-After (when the window turns) with O(1) bookkeeping. It
    is the more lenient choice at a window boundary (2x the limit can pass in a short
    burst across it), so a client must not rely on that: pace to the budget instead.
    """

    def __init__(self, budget: Budget, clock: Callable[[], float] = time.monotonic) -> None:
        self.budget = budget
        self._clock = clock
        self._lock = threading.Lock()
        self._start = -math.inf
        self._used = 0

    def _roll(self, now: float) -> None:
        if now - self._start >= self.budget.period:
            self._start = now
            self._used = 0

    def _verdict(self, allowed: bool, now: float) -> Verdict:
        left = max(self.budget.limit - self._used, 0)
        turn = math.ceil(self._start + self.budget.period - now) if self._used else 0
        return Verdict(allowed, self.budget.limit, left, max(turn, 1))

    def take(self) -> Verdict:
        """Spend one request if the window has room; say what is left either way."""
        with self._lock:
            now = self._clock()
            self._roll(now)
            allowed = self._used < self.budget.limit
            if allowed:
                self._used += 1
            return self._verdict(allowed, now)

    def peek(self) -> Verdict:
        """What is left, without spending (for headers on responses that cost nothing)."""
        with self._lock:
            now = self._clock()
            self._roll(now)
            return self._verdict(self._used < self.budget.limit, now)

    def reset(self) -> None:
        with self._lock:
            self._start = -math.inf
            self._used = 0


class InFlight:
    """The set of subscribers (by lowercased email or id) with a request being processed."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._busy: set[str] = set()

    def try_enter(self, key: str) -> bool:
        with self._lock:
            if key in self._busy:
                return False
            self._busy.add(key)
            return True

    def leave(self, key: str) -> None:
        with self._lock:
            self._busy.discard(key)
