"""Builds the worker from the app's configuration and runs it (CLI and in-process)."""

from __future__ import annotations

import functools
import signal
import threading

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

from app.delivery.budget import shared_budgets
from app.delivery.drip_client import DripClient
from app.delivery.drip_sender import DripSender
from app.delivery.segment_client import SegmentClient
from app.delivery.segment_sender import SegmentSender
from app.delivery.worker import Sender, Worker
from app.pipeline import intake
from app.store.claims import LEASE_SECONDS


def drip_client(app: Flask) -> DripClient:
    cfg = app.config["BRIDGE"]
    return DripClient(cfg.drip_api_url, cfg.drip_account_id, cfg.drip_api_token)


def create_worker(app: Flask, lease: float = LEASE_SECONDS, batches: bool = True) -> Worker:
    """A worker that maps the inbox and delivers to Drip, and to Segment when
    SEGMENT_WRITE_KEY is set."""
    cfg = app.config["BRIDGE"]
    single_budget, batch_budget = shared_budgets(app)
    drip = DripSender(
        drip_client(app), single_budget, batch_budget, batches, coalesce=cfg.drip_coalesce
    )
    senders: list[Sender] = [drip]
    if cfg.segment_write_key:
        client = SegmentClient(cfg.segment_write_key, cfg.segment_api_host)
        senders.append(SegmentSender(client))
    engine = app.extensions["engine"]
    intake_step = functools.partial(intake.map_waiting, engine, cfg)
    return Worker(engine, senders, intake=intake_step, lease=lease, keep_for=cfg.data_retention)


def start_in_thread(app: Flask) -> tuple[threading.Thread, threading.Event]:
    """Run a worker beside the web server (`drip-bridge serve`)."""
    stop = threading.Event()
    worker = app.extensions["delivery"] = create_worker(app)  # /readyz reads its trouble
    thread = threading.Thread(target=worker.run, args=(stop,), name="delivery", daemon=True)
    thread.start()
    return thread, stop


def delivery_trouble(app: Flask, detail: bool = True) -> str | None:
    """Why this process's own delivery thread (`drip-bridge serve`) fails, if it does;
    without `detail`, the error's kind only (for pages anyone may read)."""
    worker = app.extensions.get("delivery")
    trouble = worker.trouble if worker else None
    if trouble is None or trouble.message is None:
        return None
    what = trouble.message if detail else f"{trouble.kind} (see /admin or the log)"
    return f"delivery fails ({trouble.count} tries): {what}"


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
