"""Gunicorn settings for the `web` process (Procfile) and for `drip-bridge serve`.

`gunicorn -c python:app.gunicorn_conf wsgi:app`.

The configuration is checked in the master before any worker forks, so a bad
setting stops gunicorn with one line and exit status 2.
"""

from __future__ import annotations

import os
import sys
import tempfile
from typing import Any

from app.config import Config, ConfigError  # imports nothing of prometheus_client

# Merge the counters of all processes for /metrics (prometheus_client multiprocess);
# this must be set before prometheus_client is first imported, which the app does.
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="drip-bridge-metrics-"))

bind = f"0.0.0.0:{os.environ.get('PORT', '8000')}"
# Ingest is CPU-bound Python: processes, not threads, use the cores (bench/ingest:
# one thread per process served twice the requests of four threads per process).
workers = int(os.environ.get("WEB_CONCURRENCY", str(2 * (os.cpu_count() or 1))))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "1"))
timeout = 30
graceful_timeout = 20
keepalive = 5
accesslog = None
# gunicorn 27's control socket has one default path per user; several bridges
# (or tests) on one machine would fight over it, and nothing here uses it.
control_socket_disable = True


def on_starting(server: Any) -> None:
    try:
        Config.from_env()
    except ConfigError as exc:
        print(f"drip-bridge: {exc}", file=sys.stderr)
        sys.exit(2)


def child_exit(server: Any, worker: Any) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def post_worker_init(worker: Any) -> None:
    """`drip-bridge serve` (BRIDGE_DELIVERY_IN_WEB=1): a delivery thread in each web worker.

    The Procfile's web process leaves it unset and only serves HTTP.
    """
    if os.environ.get("BRIDGE_DELIVERY_IN_WEB") == "1":
        from app.delivery.runner import start_in_thread

        worker.delivery = start_in_thread(worker.wsgi)


def worker_exit(server: Any, worker: Any) -> None:
    """Let the delivery thread finish its step before the process goes."""
    delivery = getattr(worker, "delivery", None)
    if delivery:
        thread, stop = delivery
        stop.set()
        thread.join(timeout=15)
