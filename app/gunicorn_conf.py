"""Gunicorn settings for the `web` process (Procfile) and for `drip-bridge serve`.

`python -m app.web_process wsgi:app` (gunicorn -c python:app.gunicorn_conf wsgi:app).

The configuration is checked in the master before any worker forks, so a bad
setting stops gunicorn with one line and exit status 2.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from typing import Any

from app.config import Config, ConfigError  # imports nothing of prometheus_client
from app.web_process import check_web_concurrency, usable_cpus


def _workers() -> int:
    """WEB_CONCURRENCY, else one process per CPU this process may use; a bad value stops
    gunicorn here with one line and status 2 (an exception raised while gunicorn loads
    this file would print a traceback). gunicorn itself reads WEB_CONCURRENCY with int()
    when it is imported, so a value that is not a number at all is caught before, by
    `python -m app.web_process`."""
    check_web_concurrency()
    value = os.environ.get("WEB_CONCURRENCY", "").strip()
    return int(value) if value else usable_cpus()


bind = f"0.0.0.0:{os.environ.get('PORT', '8000')}"
# Ingest is CPU-bound Python: processes use the cores. One per core, not two: each
# gevent process serves many connections, and the more requests one process has ready
# together, the fewer commits they need (GroupCommit). bench/RESULTS.md: more requests
# a second on PostgreSQL than with two per core, and the no-op app no slower.
workers = _workers()

# Merge the counters of all processes for /metrics (prometheus_client multiprocess);
# this must be set before prometheus_client is first imported, which the app does.
# A folder made here is removed when the server stops (on_exit); one given is kept.
MADE_METRICS_DIR: str | None = None
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    MADE_METRICS_DIR = os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(
        prefix="drip-bridge-metrics-"
    )

# Clients reach gunicorn unbuffered (Heroku's router passes request bodies through as
# they arrive), so a request sent a byte a second must not hold a worker: gunicorn's
# documentation asks for an async worker for "direct internet traffic without a
# buffering proxy" (docs/content/design.md, "When to Use Async Workers"). Under gevent
# a slow connection holds one greenlet, not the process; up to `worker_connections`
# per process (bench/slowclients). A thread worker holds a thread per slow request.
# It is gevent's worker, made to stop at once when told to while it boots (web_worker.py).
worker_class = "app.web_worker.BridgeWorker"
worker_connections = 1000
timeout = 30
# A stop must fit the platform's grace between SIGTERM and SIGKILL: `docker stop`
# gives 10 s, Heroku 30 s. The master kills workers still running this long after its
# SIGTERM; requests are short (ingest commits and answers), and a delivery thread
# (`serve`) is told to stop claiming at the SIGTERM (web_worker.py). Where the grace is
# longer, GUNICORN_CMD_ARGS="--graceful-timeout 25" lets a Drip call in flight (at most
# 15 s) finish rather than be sent again once its lease ends (README, "A container").
graceful_timeout = 8
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
        on_exit(server)  # gunicorn does not call it when this hook exits
        sys.exit(2)


def on_exit(server: Any) -> None:
    """The master stops: remove the metrics folder if this server made it."""
    if MADE_METRICS_DIR:
        shutil.rmtree(MADE_METRICS_DIR, ignore_errors=True)


def child_exit(server: Any, worker: Any) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def post_fork(server: Any, worker: Any) -> None:
    """In the worker, right after fork: stop at once if told to while booting."""
    listen = getattr(worker, "listen_for_stops", None)  # not under GUNICORN_CMD_ARGS's -k gthread
    if listen:
        listen(server.SIG_QUEUE)


def post_worker_init(worker: Any) -> None:
    """`drip-bridge serve` (BRIDGE_DELIVERY_IN_WEB=1): a delivery thread in each web worker.

    The Procfile's web process leaves it unset and only serves HTTP. Under the gevent
    worker `threading` is monkey-patched, so the delivery "thread" is a greenlet: it
    gives way to requests whenever it waits (Drip, Segment, PostgreSQL, its idle sleep).
    """
    if os.environ.get("BRIDGE_DELIVERY_IN_WEB") == "1":
        from app.delivery.runner import start_in_thread

        worker.delivery = start_in_thread(worker.wsgi)


def worker_exit(server: Any, worker: Any) -> None:
    """Let the delivery thread finish its call in flight and give back the rest."""
    delivery = getattr(worker, "delivery", None)
    if delivery:
        thread, stop = delivery
        stop.set()
        # The master kills this process graceful_timeout after its SIGTERM anyway.
        thread.join(timeout=server.cfg.graceful_timeout)
