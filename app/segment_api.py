"""What Segment is to the bridge: call types, the tracking API's limits, the loop guard.

The one home of Segment's facts; sources are files of segmentio/segment-docs
(`src/connections/sources/catalog/libraries/server/http-api`, `spec/common`,
`guides/filtering-data`) and segmentio/analytics-python.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from segment.analytics import Client
from segment.analytics.consumer import BATCH_SIZE_LIMIT

# The message types of Segment's spec; the tracking API has a path for each.
TYPES = ("identify", "track", "page", "screen", "group", "alias")
# Segment's deletion request, as its Webhooks destination forwards a user deletion
# (privacy/user-deletion-and-suppression): `{"type": "delete", "userId", "messageId"}`.
DELETE = "delete"
# The tracking API's other paths: a batch, and `import` (analytics-ruby, analytics-java),
# which Segment answers as a batch.
SERVER_PATHS: Mapping[str, str] = {t: t for t in TYPES} | {"batch": "batch", "import": "batch"}
# analytics.js 2.0 (analytics-next) posts each call to the first letter of its type,
# `/v1/b` when batching (plugins/segmentio/index.ts, batched-dispatcher.ts) ...
BROWSER_PATHS: Mapping[str, str] = {t[0]: t for t in TYPES} | {"b": "batch"}
# ... and its own usage metrics to `/v1/m` (core/stats/remote-metrics.ts): answered, ignored.
METRICS_PATH = "m"
# What analytics-next sends beside a CORS preflight (its `fetch` with an Authorization
# header, Content-Type: text/plain, and X-Retry-Count on a retry).
BROWSER_HEADERS = ("authorization", "content-type", "x-retry-count")
# http-api, "Max request size": 32 KB a message, 500 KB a batch request.
MESSAGE_LIMIT = 32 * 1024
BATCH_LIMIT = 500 * 1024
# segment-docs: a batch of over 2,500 events is answered 200 and dropped. The bridge
# refuses it with a 400 instead, so a small compressed body cannot become a flood.
MAX_MESSAGES = 2500
# What analytics-python puts in one request at most (its consumer's limit, under 500 KB).
LIBRARY_BATCH_BYTES = BATCH_SIZE_LIMIT
# analytics-python's upload_size: messages in one request to Segment.
LIBRARY_BATCH_MESSAGES = 100

# Loop guard: every call the bridge sends to Segment names the bridge in
# `context.integration` (the place Segment's cloud sources name themselves;
# analytics-python overwrites `context.library`) and switches off the destinations
# that would bring it back; the Segment endpoints skip messages that carry it.
LOOP_MARKER = "drip-bridge"
LOOP_GUARD_INTEGRATIONS: Mapping[str, bool] = {
    "Drip": False,
    "Drip (Actions)": False,
    "Webhooks": False,
    "Webhooks (Actions)": False,
}

# analytics-python with sending off builds a message exactly as it would send it
# (messageId, ISO timestamp, context.library, nulls removed, the 32 KB check) and
# returns it: the bridge stores that, and posts it later as it is.
_BUILDER = Client("unused", send=False)


def track_message(**kwargs: Any) -> dict[str, Any]:
    """The Track message analytics-python would send for `Client.track(**kwargs)`.

    Raises RuntimeError when it is over Segment's 32 KB.
    """
    _, message = _BUILDER.track(**kwargs)
    built: dict[str, Any] = message
    return built


def identify_message(**kwargs: Any) -> dict[str, Any]:
    """The Identify message analytics-python would send for `Client.identify(**kwargs)`.

    Raises RuntimeError when it is over Segment's 32 KB.
    """
    _, message = _BUILDER.identify(**kwargs)
    built: dict[str, Any] = message
    return built


def is_echo(message: object) -> bool:
    """True when a Segment message is one the bridge itself sent (loop guard)."""
    if not isinstance(message, Mapping):
        return False
    context = message.get("context")
    integration = context.get("integration") if isinstance(context, Mapping) else None
    return isinstance(integration, Mapping) and integration.get("name") == LOOP_MARKER


def is_enabled(integrations: Mapping[str, Any], destination: str) -> bool:
    """Segment's rule (guides/filtering-data): `<destination>: false` turns it off, and
    `All: false` too unless the destination is on (true or an options object)."""
    setting = integrations.get(destination)
    if setting is False:
        return False
    everything = integrations.get("All", integrations.get("all"))
    return not (everything is False and not (setting is True or isinstance(setting, dict)))
