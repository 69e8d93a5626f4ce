"""The one error type of delivery, carrying its retry rule."""

from __future__ import annotations


class DeliveryError(Exception):
    """A call that did not succeed.

    `permanent`: retrying cannot help (4xx except 408/429): dead-letter it.
    `auth`: the credentials were refused (401/403): pause, do not dead-letter.
    `retry_after`: seconds the service asked us to wait, when it said.
    `attempted`: False when the try does not count: no budget was left (no call was
    made), or Drip answered that its budget is spent.
    """

    def __init__(
        self,
        message: str,
        *,
        permanent: bool = False,
        auth: bool = False,
        code: str = "error",
        retry_after: float | None = None,
        attempted: bool = True,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.permanent = permanent
        self.auth = auth
        self.code = code
        self.retry_after = retry_after
        self.attempted = attempted


def unreachable(service: str, exc: Exception, timeout: float | None) -> DeliveryError:
    """A request that got no answer: it timed out after `timeout` seconds (None: the
    connection failed instead). Retried."""
    if timeout is not None:
        return DeliveryError(f"{service} did not answer within {timeout:g}s", code="timeout")
    return DeliveryError(f"cannot reach {service}: {type(exc).__name__}", code="connection_error")


def from_status(status: int, code: str, message: str, retry_after: float | None) -> DeliveryError:
    """Classify an HTTP failure: 401/403 auth, 408/429/5xx retried, other 4xx permanent."""
    if status in (401, 403):
        return DeliveryError(message, auth=True, code=code)
    retryable = status in (408, 429) or status >= 500
    return DeliveryError(message, permanent=not retryable, code=code, retry_after=retry_after)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (only the delta-seconds form is used by Drip/Segment)."""
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None
