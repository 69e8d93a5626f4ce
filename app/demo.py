"""`drip-bridge demo`: the bridge on SQLite beside local Drip and Segment simulators.

It starts `drip-bridge serve` as a real process, sends sample traffic through a
real Segment client (and sample Drip webhooks), and prints what reached each side.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import click
import requests
from segment.analytics import Client

from app.simulators.drip import FakeDrip
from app.simulators.segment import FakeSegment
from app.simulators.server import answers, free_port, wait_until

ACCOUNT, TOKEN, CAMPAIGN = "1234567", "demo-drip-token", "7777"
WRITE_KEY, SEGMENT_KEY, WEBHOOK_TOKEN = "demo-bridge-key", "demo-segment-key", "demo-webhook-token"


def bridge_env(folder: str, drip_url: str, segment_url: str) -> dict[str, str]:
    return os.environ | {
        "DRIP_ACCOUNT_ID": ACCOUNT,
        "DRIP_API_TOKEN": TOKEN,
        "DRIP_API_URL": drip_url,
        "DRIP_CAMPAIGN_ID": CAMPAIGN,
        "DRIP_WEBHOOK_TOKEN": WEBHOOK_TOKEN,
        "BRIDGE_WRITE_KEY": WRITE_KEY,
        "SEGMENT_WRITE_KEY": SEGMENT_KEY,
        "SEGMENT_API_HOST": segment_url,
        "DATABASE_URL": f"sqlite:///{folder}/demo.sqlite3",
        "LOG_FORMAT": "text",
        "WEB_CONCURRENCY": "2",
    }


def send_segment_traffic(bridge: str) -> int:
    """Identify two people and track their events through the real Segment library."""
    client = Client(WRITE_KEY, host=bridge, sync_mode=True)
    client.identify("u-ada", {"email": "ada@example.com", "name": "Ada Lovelace", "plan": "pro"})
    client.identify("u-alan", {"email": "alan@example.com", "firstName": "Alan", "company": "NPL"})
    client.track("u-ada", "Viewed Pricing", {"page": "/pricing"})  # email from the identify
    client.track("u-alan", "Signed Up", {"plan": "team", "revenue": 49.99})
    engine = {"product_id": "p1", "sku": "SKU-1", "name": "Engine", "price": 120.5, "quantity": 1}
    order = {"order_id": "A-1", "total": 120.5, "products": [engine]}
    client.track("u-ada", "Order Completed", order)
    client.track("u-nobody", "Opened App")  # no email anywhere: skipped, reported
    return 6


def send_drip_webhooks(bridge: str) -> int:
    url = f"{bridge}/drip/webhook?token={WEBHOOK_TOKEN}"
    subscriber = {"id": "z1", "email": "ada@example.com", "user_id": "u-ada"}
    events = [
        ("subscriber.received_email", {"email_id": "88", "email_subject": "Welcome"}),
        ("subscriber.opened_email", {"email_id": "88", "email_subject": "Welcome"}),
        ("subscriber.clicked_email", {"email_id": "88", "url": "https://example.com/start"}),
    ]
    for n, (event, properties) in enumerate(events):
        body = {
            "event": event,
            "data": {"account_id": ACCOUNT, "subscriber": subscriber, "properties": properties},
            "occurred_at": f"2026-11-26T10:00:0{n}Z",
        }
        requests.post(url, json=body, timeout=10).raise_for_status()
    return len(events)


def show(title: str, items: list[Any]) -> None:
    click.secho(f"\n{title} ({len(items)})", bold=True)
    for item in items:
        click.echo("  " + json.dumps(item, sort_keys=True))


@click.command("demo", help="Run the bridge beside local Drip and Segment simulators.")
def demo() -> None:
    drip = FakeDrip(token=TOKEN, account_id=ACCOUNT, campaigns=[CAMPAIGN])
    segment = FakeSegment(write_key=SEGMENT_KEY)
    with (
        tempfile.TemporaryDirectory() as folder,
        drip.serve() as drip_srv,
        segment.serve() as seg_srv,
    ):
        port = free_port()
        bridge = f"http://127.0.0.1:{port}"
        click.echo(f"[1/4] fake Drip on {drip_srv.url}, fake Segment on {seg_srv.url}")
        log = (Path(folder) / "bridge.log").open("wb")
        server = subprocess.Popen(
            [sys.executable, "-m", "app", "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=bridge_env(folder, drip_srv.url, seg_srv.url),
            cwd=folder,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_until("the bridge to start", lambda: answers(f"{bridge}/healthz"), 60)
            click.echo(f"[2/4] bridge up on {bridge}; sending Segment traffic and Drip webhooks")
            sent = send_segment_traffic(bridge)
            hooks = send_drip_webhooks(bridge)
            click.echo(
                f"[3/4] sent {sent} Segment calls and {hooks} Drip webhooks; waiting for delivery"
            )
            expected = 7  # 2 subscribers, 2 campaign subscriptions, 2 events, 1 order
            wait_until("every delivery", lambda: _progress(drip, segment, expected, hooks), 60)
            click.echo("\n[4/4] everything delivered")
            show(
                "Drip received",
                [(c.method, c.path, c.json) for c in drip.calls() if c.status < 300],
            )
            show("Segment received", [_short(m) for m in segment.messages()])
            show("Skipped, with the reason (from /metrics)", _skipped(bridge))
        except TimeoutError as exc:
            tail = (Path(folder) / "bridge.log").read_text(errors="replace")[-2000:]
            raise click.ClickException(f"{exc}; the bridge's log ends:\n{tail}") from exc
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)
            log.close()
    click.echo("\ndemo finished: the bridge stored, mapped and delivered both directions.")


def _progress(drip: FakeDrip, segment: FakeSegment, expected: int, hooks: int) -> bool:
    delivered = sum(1 for c in drip.calls() if c.status < 300 and c.method == "POST")
    forwarded = len(segment.messages())
    click.echo(
        f"\r      Drip calls {delivered}/{expected}, Segment tracks {forwarded}/{hooks}", nl=False
    )
    return delivered >= expected and forwarded >= hooks


def _skipped(bridge: str) -> list[str]:
    lines = requests.get(f"{bridge}/metrics", timeout=5).text.splitlines()
    return [line for line in lines if line.startswith("bridge_messages_skipped_total")]


def _short(message: dict[str, Any]) -> dict[str, Any]:
    keys = ("type", "event", "userId", "anonymousId", "properties", "messageId")
    return {k: message[k] for k in keys if k in message}
