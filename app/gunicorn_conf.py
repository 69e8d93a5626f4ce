"""Gunicorn settings for the `web` process (Procfile) and for `drip-bridge serve`.

The configuration is checked in the master before any worker forks, so a bad
setting stops gunicorn with one line and exit status 2.
"""

from __future__ import annotations

import os
import sys
import tempfile
from typing import Any

from app.config import Config, ConfigError

bind = f"0.0.0.0:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
timeout = 30
graceful_timeout = 20
keepalive = 5
accesslog = None
# Counters of all processes are merged for /metrics (prometheus_client multiprocess).
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="drip-bridge-metrics-"))


def on_starting(server: Any) -> None:
    try:
        Config.from_env()
    except ConfigError as exc:
        print(f"drip-bridge: {exc}", file=sys.stderr)
        sys.exit(2)


def child_exit(server: Any, worker: Any) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def start_delivery(worker: Any) -> None:
    """post_worker_init for `drip-bridge serve`: a delivery thread in each web worker."""
    from app.delivery.runner import start_in_thread

    worker.delivery = start_in_thread(worker.wsgi)


def worker_exit(server: Any, worker: Any) -> None:
    """Let the delivery thread finish its step before the process goes."""
    delivery = getattr(worker, "delivery", None)
    if delivery:
        thread, stop = delivery
        stop.set()
        thread.join(timeout=15)
