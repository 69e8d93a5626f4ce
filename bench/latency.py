"""Ingest-to-Drip latency with the budget free: gunicorn (Procfile web) + `drip-bridge worker`.

Tracks are posted to /v1/track at a steady rate; each carries its sequence number,
so its arrival at the fake Drip can be matched to the moment it was sent.

    python -m bench latency [--messages 300] [--rate 20]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import requests

from app.simulators.drip import FakeDrip
from app.simulators.server import free_port
from bench.common import (
    ACCOUNT_ID,
    BIN,
    DRIP_TOKEN,
    WRITE_KEY,
    Processes,
    bridge_env,
    percentile,
    save,
)  # fmt: skip


def send(url: str, messages: int, rate: float) -> dict[int, float]:
    """Post `messages` tracks at `rate` per second; when each was sent."""
    sent: dict[int, float] = {}
    session = requests.Session()
    session.auth = (WRITE_KEY, "")
    start = time.monotonic()
    for n in range(messages):
        time.sleep(max(0.0, start + n / rate - time.monotonic()))
        track = {"userId": f"u{n}", "event": "Pinged", "messageId": f"lat-{n}",
                 "properties": {"email": f"p{n}@example.com", "seq": n}}  # fmt: skip
        sent[n] = time.time()
        session.post(f"{url}/v1/track", json=track, timeout=10).raise_for_status()
    return sent


def main(argv: Sequence[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench latency")
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--rate", type=float, default=20.0)
    args = parser.parse_args(argv)
    fake = FakeDrip(token=DRIP_TOKEN, account_id=ACCOUNT_ID)
    with tempfile.TemporaryDirectory() as folder, fake.serve() as served:
        env = bridge_env(f"sqlite:///{folder}/bench.sqlite3", served.url)  # budget: 1M/hour
        procs = Processes(Path(folder))
        try:
            procs.start([str(BIN / "drip-bridge"), "db", "upgrade"], env, "upgrade").wait()
            url = procs.gunicorn("wsgi:app", free_port(), env, "web")
            procs.start([str(BIN / "drip-bridge"), "worker"], env, "worker")
            sent = send(url, args.messages, args.rate)
            deadline = time.monotonic() + 30
            while len(fake.records("event")) < args.messages and time.monotonic() < deadline:
                time.sleep(0.1)
        finally:
            procs.stop_all()
    arrived = {c.json["events"][0]["properties"]["seq"]: c.at
               for c in fake.calls() if c.path.endswith("/events") and c.status < 300}  # fmt: skip
    waits = [arrived[n] - sent[n] for n in sent if n in arrived]
    p50, p99 = percentile(waits, 50), percentile(waits, 99)
    summary = (
        f"## Ingest-to-Drip latency, budget free ({args.messages} tracks at {args.rate:g}/s)\n\n"
        f"delivered {len(waits)}/{args.messages}; p50 {p50 * 1000:.0f} ms, "
        f"p99 {p99 * 1000:.0f} ms (target p99 <= 2000 ms)"
    )
    figures = {"messages": args.messages, "delivered": len(waits),
               "p50_ms": round(p50 * 1000, 1), "p99_ms": round(p99 * 1000, 1)}  # fmt: skip
    save("latency", figures, summary)
