"""What the pipeline refuses, and why; the web routes turn these into HTTP answers."""

from __future__ import annotations

from typing import Any


class Refused(Exception):
    """Input the bridge cannot take: `code` names it, `message` says what to do."""

    def __init__(self, code: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details or {}


class Malformed(Refused):
    """Not what the endpoint takes: not Segment messages, not a Drip webhook."""


class WrongAccount(Refused):
    """A Drip webhook for another Drip account than the bridge's."""
