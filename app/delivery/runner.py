"""Builds the worker from the app's configuration and runs it (CLI and in-process)."""

from __future__ import annotations

import functools
import signal
import threading

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

from app.delivery.budget import Budget, budget
from app.delivery.drip_client import DripClient
from app.delivery.drip_sender import DripSender
from app.delivery.segment_sender import SegmentSender
from app.delivery.worker import Sender, Worker
from app.ingest import intake
from app.store.outbox import LEASE_SECONDS


def drip_client(app: Flask) -> DripClient:
    cfg = app.config["BRIDGE"]
    return DripClient(cfg.drip_api_url, cfg.drip_account_id, cfg.drip_api_token)


def shared_budgets(app: Flask) -> tuple[Budget, Budget]:
    """This process's handles on the budgets, made once and shared by its threads."""
    if "budgets" not in app.extensions:
        cfg = app.config["BRIDGE"]
        app.extensions["budgets"] = (
            budget("individual", cfg.drip_rate_limit, cfg.database_url),
            budget("batch", cfg.drip_batch_rate_limit, cfg.database_url),
        )
    pair: tuple[Budget, Budget] = app.extensions["budgets"]
    return pair


def close_budgets(app: Flask) -> None:
    """Release the budgets' connections (an app that is done: tests, shutdown)."""
    for held in app.extensions.pop("budgets", ()):
        held.close()


def create_worker(app: Flask, lease: float = LEASE_SECONDS, batches: bool = True) -> Worker:
    """A worker that maps the inbox and delivers to Drip, and to Segment when
    SEGMENT_WRITE_KEY is set."""
    cfg = app.config["BRIDGE"]
    individual, batch = shared_budgets(app)
    senders: list[Sender] = [DripSender(drip_client(app), individual, batch, batches)]
    if cfg.segment_write_key:
        senders.append(SegmentSender(cfg.segment_write_key, cfg.segment_api_host))
    engine = app.extensions["engine"]
    return Worker(engine, senders, intake=functools.partial(intake.take, engine, cfg), lease=lease)


def start_in_thread(app: Flask) -> tuple[threading.Thread, threading.Event]:
    """Run a worker beside the web server (`drip-bridge serve`)."""
    stop = threading.Event()
    worker = create_worker(app)
    thread = threading.Thread(target=worker.run, args=(stop,), name="delivery", daemon=True)
    thread.start()
    return thread, stop


@click.command("worker", help="Run the delivery worker alone (the worker process).")
@click.option("--lease", default=LEASE_SECONDS, show_default=True, help="Seconds a claim is held.")
@click.option(
    "--no-batches", is_flag=True, help="One Drip call per record (the peer baseline of bench/)."
)
@with_appcontext
def worker_command(lease: float, no_batches: bool) -> None:
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    create_worker(app, lease, batches=not no_batches).run(stop)


def init_app(app: Flask) -> None:
    app.cli.add_command(worker_command)
