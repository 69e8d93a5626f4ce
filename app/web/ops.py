"""Operations endpoints: /healthz, /readyz, /metrics."""

from __future__ import annotations

import os
import time

import sqlalchemy as sa
from flask import Blueprint, Response, current_app, jsonify, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, multiprocess
from prometheus_client.core import (
    REGISTRY,
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from app import metrics, store
from app.delivery.budget import shared_budgets
from app.delivery.runner import delivery_trouble
from app.store import counters, inbox, outbox, workers
from app.web.auth import presented_key, secret_matches
from app.web.errors import ApiError

bp = Blueprint("ops", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    try:
        with store.reading(store.engine()) as conn:
            fresh = workers.running(conn, time.time())
    except sa.exc.DBAPIError as exc:
        # The driver's words (host, port, role) stay in the logs: anyone may read this.
        return _not_ready(f"database unavailable: {type(exc.orig or exc).__name__}")
    if not fresh:
        trouble = delivery_trouble(current_app, detail=False)
        if trouble:
            return _not_ready(trouble)
        return _not_ready(
            "no delivery worker has reported in the last minute; start `drip-bridge worker`"
        )
    # Which side refused the credentials; Drip's own words stay on /admin and in the logs.
    paused = sorted({p.split(":")[0] for b in fresh if b.paused for p in b.paused.split("; ")})
    if paused:
        sides = " and ".join(paused)
        return _not_ready(f"delivery paused: {sides} refused the credentials (see /admin)")
    return jsonify({"status": "ready", "workers": len(fresh)}), 200


def _not_ready(reason: str) -> tuple[Response, int]:
    return jsonify({"status": "not_ready", "reason": reason}), 503


@bp.get("/metrics")
def scrape() -> Response:
    token = current_app.config["BRIDGE"].metrics_token
    if token and not secret_matches(presented_key(request), token):
        raise ApiError(
            401, "unauthorized", "Send Authorization: Bearer <METRICS_TOKEN> to read the metrics."
        )
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    output = generate_latest(registry) + generate_latest(_store_registry())
    return Response(output, content_type=CONTENT_TYPE_LATEST)


class StoreCollector(Collector):
    """What the store knows, read at scrape time: backlog (and inbox), dead letters, rate
    budgets, and the counters every process adds to (app/metrics.py)."""

    def collect(self) -> list[Metric]:  # type: ignore[override]
        left = GaugeMetricFamily(
            "bridge_rate_budget_remaining", "Drip calls left in the window", labels=["budget"]
        )
        for budget in shared_budgets(current_app):
            left.add_metric([budget.name], budget.remaining())
        backlog = GaugeMetricFamily("bridge_backlog", "Records waiting", labels=["destination"])
        dead = GaugeMetricFamily(
            "bridge_dead_letters_waiting", "Dead letters", labels=["destination"]
        )
        with store.reading(store.engine()) as conn:
            counts = outbox.counts_by_state(conn)
            waiting = GaugeMetricFamily(
                "bridge_inbox_waiting",
                "Tracking-API requests stored and not yet mapped",
                inbox.waiting(conn),
            )
            totals = counters.totals(conn)
        for (destination, state), count in counts.items():
            (backlog if state == outbox.State.PENDING else dead).add_metric([destination], count)
        return [waiting, backlog, dead, left, *_counters(totals), _latency(totals)]


def _counters(totals: dict[tuple[str, tuple[str, ...]], float]) -> list[Metric]:
    families: list[Metric] = []
    for kept in metrics.COUNTERS:
        family = CounterMetricFamily(kept.name, kept.help, labels=kept.labels)
        for (name, labels), value in sorted(totals.items()):
            if name == kept.name:
                family.add_metric(labels, value)
        families.append(family)
    return families


def _latency(totals: dict[tuple[str, tuple[str, ...]], float]) -> Metric:
    """The latency histogram from its stored per-bucket counts (made cumulative here)."""
    name = metrics.LATENCY.name
    family = HistogramMetricFamily(name, metrics.LATENCY.help, labels=metrics.LATENCY.labels)
    destinations = sorted({labels[0] for (n, labels) in totals if n == name + "_sum"})
    for destination in destinations:
        running, buckets = 0.0, []
        for bound in [*map(str, metrics.LATENCY_BUCKETS), "+Inf"]:
            running += totals.get((name + "_bucket", (destination, bound)), 0.0)
            buckets.append((bound, running))
        family.add_metric([destination], buckets, totals[(name + "_sum", (destination,))])
    return family


def _store_registry() -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector())
    return registry
