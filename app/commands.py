"""Commands that run the bridge: `serve` and `check`."""

from __future__ import annotations

import os
import sys

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

from app import store
from app.delivery.errors import DeliveryError
from app.delivery.runner import drip_client


def this_app() -> Flask:
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    return app


@click.command("serve", help="Web server with an in-process delivery worker (one machine).")
@click.option("--port", type=int, help="HTTP port (default: PORT, else 8000).")
@click.option("--no-worker", is_flag=True, help="Serve HTTP only; run `drip-bridge worker` apart.")
@with_appcontext
def serve(port: int | None, no_worker: bool) -> None:
    """Migrate the store, then become gunicorn with the Procfile's settings."""
    app = this_app()
    store.upgrade(app.extensions["engine"])
    env = os.environ | {"PORT": str(port or app.config["BRIDGE"].port)}
    env["BRIDGE_DELIVERY_IN_WEB"] = "0" if no_worker else "1"
    mode = "web only" if no_worker else "web and delivery"
    click.echo(f"drip-bridge serving on http://0.0.0.0:{env['PORT']} ({mode})")
    argv = ["gunicorn", "-c", "python:app.gunicorn_conf", "app.factory:create_app()"]
    os.execve(sys.executable, [sys.executable, "-m", *argv], env)


@click.command("check", help="Validate the configuration and the Drip credentials.")
@with_appcontext
def check() -> None:
    app = this_app()
    cfg = app.config["BRIDGE"]
    click.echo(f"configuration: ok (Drip account {cfg.drip_account_id}, store {cfg.store_name})")
    try:
        user = drip_client(app).whoami()
    except DeliveryError as exc:
        raise click.ClickException(f"Drip refused the check (GET /v2/user): {exc.message}") from exc
    users = user.get("users") or [{}]
    click.echo(f"Drip credentials: ok (token of {users[0].get('email', 'unknown user')})")
    base = "https://<your-bridge-host>"
    click.echo("\nSegment Webhooks destination settings:")
    click.echo(f"  Webhook URL:   {base}/segment")
    if cfg.segment_shared_secret:
        click.echo("  Shared Secret: the value of SEGMENT_SHARED_SECRET")
    else:
        click.echo("  Header:        Authorization: Bearer <BRIDGE_WRITE_KEY>")
    click.echo("Segment libraries: host=" + base + ", write key = BRIDGE_WRITE_KEY")
    if cfg.browser_write_key and cfg.browser_origins:
        host = base.removeprefix("https://")
        pages = ", ".join(cfg.browser_origins)
        api_host = f'integrations["Segment.io"].apiHost = "{host}/v1"'
        click.echo(f"analytics.js on {pages}: write key = BROWSER_WRITE_KEY, {api_host}")
        plugin = f'<script src="{base}/drip.js"></script>'
        click.echo(f"  device mode: {plugin} and analytics.register(DripBridge)")
    if cfg.drip_webhook_token:  # the token itself is a secret: it is never printed
        hook = f"{base}/drip/webhook?token=<DRIP_WEBHOOK_TOKEN>"
        click.echo(f"\nDrip webhook URL (Settings > Webhooks): {hook}")
    else:
        click.echo("\nDrip webhooks: set DRIP_WEBHOOK_TOKEN to receive them")


def init_app(app: Flask) -> None:
    app.cli.add_command(serve)
    app.cli.add_command(check)
