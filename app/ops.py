"""Operations endpoints: /healthz, /readyz, /metrics."""

from __future__ import annotations

import os
import time

import sqlalchemy as sa
from flask import Blueprint, Flask, Response, current_app, jsonify
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, multiprocess
from prometheus_client.core import REGISTRY, GaugeMetricFamily
from prometheus_client.registry import Collector

from app import store
from app.delivery.runner import shared_budgets
from app.store import inbox
from app.store.tables import outbox, workers

bp = Blueprint("ops", __name__)
WORKER_FRESH = 60.0  # a worker must have reported within this many seconds


@bp.get("/healthz")
def healthz() -> Response:
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    try:
        with store.reading(store.engine()) as conn:
            beats = conn.execute(sa.select(workers.c.seen_at, workers.c.paused)).all()
    except sa.exc.DBAPIError as exc:
        return _not_ready(f"database unavailable: {type(exc.orig or exc).__name__}")
    fresh = [b for b in beats if time.time() - b.seen_at < WORKER_FRESH]
    if not fresh:
        return _not_ready(
            "no delivery worker has reported in the last minute; start `drip-bridge worker`"
        )
    paused = sorted({b.paused for b in fresh if b.paused})
    if paused:
        return _not_ready("delivery paused: " + "; ".join(paused))
    return jsonify({"status": "ready", "workers": len(fresh)}), 200


def _not_ready(reason: str) -> tuple[Response, int]:
    return jsonify({"status": "not_ready", "reason": reason}), 503


@bp.get("/metrics")
def metrics() -> Response:
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    output = generate_latest(registry) + generate_latest(_store_registry())
    return Response(output, content_type=CONTENT_TYPE_LATEST)


class StoreCollector(Collector):
    """Backlog (and inbox), dead letters and rate budgets, read from the store at scrape time."""

    def collect(self) -> list[GaugeMetricFamily]:  # type: ignore[override]
        left = GaugeMetricFamily(
            "bridge_rate_budget_remaining", "Drip calls left in the window", labels=["budget"]
        )
        for budget in shared_budgets(current_app):
            left.add_metric([budget.name], budget.remaining())
        backlog = GaugeMetricFamily("bridge_backlog", "Records waiting", labels=["destination"])
        dead = GaugeMetricFamily(
            "bridge_dead_letters_waiting", "Dead letters", labels=["destination"]
        )
        query = (
            sa.select(outbox.c.destination, outbox.c.state, sa.func.count())
            .where(outbox.c.state.in_(("pending", "dead")))
            .group_by(outbox.c.destination, outbox.c.state)
        )
        with store.reading(store.engine()) as conn:
            for destination, state, count in conn.execute(query):
                (backlog if state == "pending" else dead).add_metric([destination], count)
            waiting = GaugeMetricFamily(
                "bridge_inbox_waiting",
                "Tracking-API requests stored and not yet mapped",
                inbox.waiting(conn),
            )
        return [waiting, backlog, dead, left]


def _store_registry() -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector())
    return registry


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
