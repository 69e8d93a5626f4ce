"""Commands that run the bridge: `serve` and `check`."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from urllib.parse import urlsplit

import click
import sqlalchemy as sa
from alembic.script import ScriptDirectory
from flask import Flask, current_app
from flask.cli import with_appcontext

from app import store
from app.config import Config
from app.delivery.drip_client import DripClient
from app.delivery.errors import DeliveryError

LOCAL = "127.0.0.1"
MIGRATIONS = Path(store.__file__).parent / "migrations"
PLACEHOLDER_URL = "https://<your-bridge-host>"


def this_app() -> Flask:
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    return app


def bind_host(host: str | None, env: dict[str, str] | os._Environ[str]) -> str:
    """`--host`, else every interface on a platform (PORT or DYNO set), else loopback."""
    if host:
        return host
    return "0.0.0.0" if env.get("PORT") or env.get("DYNO") else LOCAL


@click.command("serve", help="Web server with an in-process delivery worker (one machine).")
@click.option(
    "--host", help="Address to listen on (default: 127.0.0.1; 0.0.0.0 when PORT or DYNO is set)."
)
@click.option("--port", type=int, help="HTTP port (default: PORT, else 8000).")
@click.option("--no-worker", is_flag=True, help="Serve HTTP only; run `drip-bridge worker` apart.")
@with_appcontext
def serve(host: str | None, port: int | None, no_worker: bool) -> None:
    """Migrate the store, then become gunicorn with the Procfile's settings."""
    app = this_app()
    store.upgrade(app.extensions["engine"])
    address = bind_host(host, os.environ)
    env = os.environ | {"PORT": str(port or app.config["BRIDGE"].port)}
    env["BRIDGE_DELIVERY_IN_WEB"] = "0" if no_worker else "1"
    bind = f"[{address}]:{env['PORT']}" if ":" in address else f"{address}:{env['PORT']}"
    mode = "web only" if no_worker else "web and delivery"
    click.echo(f"drip-bridge serving on http://{bind} ({mode})")
    argv = ["app.web_process", "--bind", bind, "app.factory:create_app()"]  # the Procfile's web
    os.execve(sys.executable, [sys.executable, "-m", *argv], env)


def check_database(engine: sa.Engine) -> tuple[str, list[str]]:
    """A real query, then the schema's revision: (what to print, warnings). Raises on failure."""
    head = ScriptDirectory(str(MIGRATIONS)).get_current_head()
    where = engine.url.render_as_string(hide_password=True)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
            has_schema = sa.inspect(conn).has_table("alembic_version")
            revision = conn.execute(
                sa.text("SELECT version_num FROM alembic_version")
            ).scalar() if has_schema else None  # fmt: skip
    except sa.exc.DBAPIError as exc:
        first = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
        raise click.ClickException(f"database unreachable ({where}): {first}") from exc
    warnings = []
    if revision != head:
        state = f"is at {revision}" if revision else "does not exist yet"
        warnings.append(f"the schema {state} (newest {head}): run `drip-bridge db upgrade`")
    return f"ok ({where}, schema {revision or 'none'})", warnings


def missing_sides(cfg: Config) -> list[str]:
    """What the bridge refuses or cannot do with this configuration."""
    warnings = []
    if not cfg.bridge_write_key and not cfg.segment_shared_secret:
        warnings.append(
            "neither BRIDGE_WRITE_KEY nor SEGMENT_SHARED_SECRET is set: "
            "/segment and /v1 are closed (503)"
        )
    elif not cfg.bridge_write_key:
        warnings.append("BRIDGE_WRITE_KEY is not set: /v1 (Segment libraries) is closed (503)")
    if not cfg.segment_write_key:
        warnings.append(
            "SEGMENT_WRITE_KEY is not set: Drip's events are not forwarded to Segment "
            "(webhooks are stored and wait)"
        )
    if not cfg.drip_webhook_token:
        warnings.append("DRIP_WEBHOOK_TOKEN is not set: Drip webhooks are refused (503)")
    return warnings


def base_url(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise click.BadParameter(f'must be an http(s) URL, got "{value}"')
    return value.rstrip("/")


@click.command("check", help="Test the database and Drip (token, campaign); print what to paste.")
@click.option(
    "--base-url",
    callback=base_url,
    help="The bridge's public URL (https://bridge.example.com), to print the real URLs to paste.",
)
@with_appcontext
def check(base_url: str | None) -> None:
    app = this_app()
    cfg: Config = app.config["BRIDGE"]
    click.echo(f"configuration: ok (Drip account {cfg.drip_account_id}, store {cfg.store_name})")
    failures = []
    warnings = missing_sides(cfg)
    try:
        line, schema = check_database(app.extensions["engine"])
        click.echo(f"database: {line}")
        warnings = schema + warnings
    except click.ClickException as exc:
        click.echo(f"database: FAILED: {exc.message}")
        failures.append(exc.message)
    client = DripClient(cfg.drip_api_url, cfg.drip_account_id, cfg.drip_api_token)
    try:
        user = client.whoami()
    except DeliveryError as exc:
        failures.append(f"Drip refused the check (GET /v2/user): {exc.message}")
        click.echo(f"Drip credentials: FAILED: {exc.message}")
    else:
        users = user.get("users") or [{}]
        click.echo(f"Drip credentials: ok (token of {users[0].get('email', 'unknown user')})")
        if cfg.drip_campaign_id:
            failures += check_campaign(client, cfg.drip_campaign_id)
    for warning in warnings:
        click.echo(f"warning: {warning}")
    print_setup(cfg, base_url)
    if failures:
        raise click.ClickException("; ".join(failures))


def check_campaign(client: DripClient, campaign_id: str) -> list[str]:
    """DRIP_CAMPAIGN_ID names a campaign of this account: [] when it does, else the failure."""
    try:
        campaign = client.campaign(campaign_id)
    except DeliveryError as exc:
        reason = (
            f"no such campaign in Drip account {client.account_id}"
            if exc.code == "not_found_error"
            else exc.message
        )
        click.echo(f"Drip campaign {campaign_id} (DRIP_CAMPAIGN_ID): FAILED: {reason}")
        return [f"DRIP_CAMPAIGN_ID {campaign_id}: {reason}"]
    name, status = campaign.get("name", "unnamed"), campaign.get("status", "unknown")
    click.echo(f'Drip campaign {campaign_id}: ok ("{name}", {status})')
    return []


def print_setup(cfg: Config, base: str | None) -> None:
    """The URLs and settings to paste into Segment and Drip; names of secrets, never values."""
    url = base or PLACEHOLDER_URL
    click.echo("\nSegment Webhooks destination settings:")
    click.echo(f"  Webhook URL:   {url}/segment")
    if cfg.segment_shared_secret:
        click.echo("  Shared Secret: the value of SEGMENT_SHARED_SECRET")
    else:
        click.echo("  Header:        Authorization: Bearer <BRIDGE_WRITE_KEY>")
    click.echo(f"Segment libraries: host={url}, write key = BRIDGE_WRITE_KEY")
    if cfg.browser_write_key and cfg.browser_origins:
        host = url.removeprefix("https://")
        pages = ", ".join(cfg.browser_origins)
        api_host = f'integrations["Segment.io"].apiHost = "{host}/v1"'
        click.echo(f"analytics.js on {pages}: write key = BROWSER_WRITE_KEY, {api_host}")
        plugin = f'<script src="{url}/drip.js"></script>'
        click.echo(f"  device mode: {plugin} and analytics.register(DripBridge)")
    if cfg.drip_webhook_token:  # the token itself is a secret: it is never printed
        hook = f"{url}/drip/webhook?token=<DRIP_WEBHOOK_TOKEN>"
        click.echo(f"\nDrip webhook URL (Settings > Webhooks): {hook}")
    else:
        click.echo("\nDrip webhooks: set DRIP_WEBHOOK_TOKEN to receive them")
    if base is None:
        click.echo("\n(pass --base-url https://your-bridge.example.com to print the real URLs)")


def init_app(app: Flask) -> None:
    app.cli.add_command(serve)
    app.cli.add_command(check)
