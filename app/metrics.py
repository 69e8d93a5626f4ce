"""Prometheus metrics: counters where things happen, gauges read from the store.

Under gunicorn the counters of all processes on the machine are merged through
PROMETHEUS_MULTIPROC_DIR (set in gunicorn.conf.py). Backlog and dead letters are
read from the database at scrape time, so they are true across machines too.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

RECEIVED = Counter("bridge_messages_received", "Messages received", ["source"])
ACCEPTED = Counter("bridge_messages_accepted", "Messages stored for delivery", ["source"])
DUPLICATES = Counter("bridge_messages_duplicate", "Messages already seen", ["source"])
SKIPPED = Counter("bridge_messages_skipped", "Messages not forwarded", ["source", "reason"])
DELIVERED = Counter("bridge_deliveries", "Records delivered", ["destination"])
RETRIED = Counter("bridge_retries", "Records scheduled for another attempt", ["destination"])
DEAD = Counter("bridge_dead_letters", "Records dead-lettered", ["destination", "reason"])
# DRIP_COALESCE: a person's waiting subscriber updates sent as one record.
MERGED = Counter(
    "bridge_messages_merged", "Messages delivered to Drip merged with others into one record"
)
SAVED = Counter("bridge_drip_calls_saved", "Drip records (calls) not spent thanks to merging")
# Segment signs only the first element of an array: the others are unauthenticated.
SIGNED_ARRAYS = Counter(
    "bridge_signed_arrays",
    "Signed /segment arrays of more than one message (only the first is signed)",
)
LATENCY = Histogram(
    "bridge_delivery_latency_seconds",
    "From acceptance to delivery",
    ["destination"],
    buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 3600, 86400),
)
