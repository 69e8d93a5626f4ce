"""Metrics: what each process counts, and what the store counts for all of them.

`RECEIVED` and `SIGNED_ARRAYS` happen in the web process that answers, and are
Prometheus counters merged across the machine's gunicorn processes through
PROMETHEUS_MULTIPROC_DIR (set in gunicorn_conf.py). What the pipeline and the
worker count is kept in the store (`app.store.counters`), added in the same
transaction as the rows it counts, so `/metrics` shows the same totals whichever
process serves it, the Procfile's web and worker split included.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from prometheus_client import Counter

RECEIVED = Counter("bridge_messages_received", "Messages received", ["source"])
# Segment signs only the first element of an array: the others are unauthenticated.
SIGNED_ARRAYS = Counter(
    "bridge_signed_arrays",
    "Signed /segment arrays of more than one message (only the first is signed)",
)


@dataclass(frozen=True)
class Kept:
    """A counter kept in the store, by label values."""

    name: str
    help: str
    labels: tuple[str, ...]


ACCEPTED = Kept("bridge_messages_accepted", "Messages stored for delivery", ("source",))
DUPLICATES = Kept("bridge_messages_duplicate", "Messages already seen", ("source",))
SKIPPED = Kept("bridge_messages_skipped", "Messages not forwarded", ("source", "reason"))
DELIVERED = Kept("bridge_deliveries", "Records delivered", ("destination",))
RETRIED = Kept("bridge_retries", "Records scheduled for another attempt", ("destination",))
DEAD = Kept("bridge_dead_letters", "Records dead-lettered", ("destination", "reason"))
# DRIP_COALESCE: a person's waiting subscriber updates sent as one record.
MERGED = Kept(
    "bridge_messages_merged", "Messages delivered to Drip merged with others into one record", ()
)
SAVED = Kept("bridge_drip_calls_saved", "Drip records (calls) not spent thanks to merging", ())
COUNTERS = (ACCEPTED, DUPLICATES, SKIPPED, DELIVERED, RETRIED, DEAD, MERGED, SAVED)
# A histogram kept as one count per bucket (not cumulative) and a sum, by destination.
LATENCY = Kept("bridge_delivery_latency_seconds", "From acceptance to delivery", ("destination",))
LATENCY_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0, 86400.0)


class Counts(defaultdict[tuple[str, tuple[str, ...]], float]):
    """What one transaction adds: (metric name, label values) -> amount."""

    def __init__(self) -> None:
        super().__init__(float)


def count(counts: Counts, kept: Kept, *labels: str, amount: float = 1) -> None:
    counts[(kept.name, labels)] += amount


def observe_latency(counts: Counts, destination: str, seconds: float) -> None:
    bucket = next((str(b) for b in LATENCY_BUCKETS if seconds <= b), "+Inf")
    counts[(LATENCY.name + "_bucket", (destination, bucket))] += 1
    counts[(LATENCY.name + "_sum", (destination,))] += seconds
