"""Drip throughput at compressed budgets: the bridge against the one-call-per-event baseline.

The fake Drip enforces 60 calls / 6 s and 2 batch calls / 6 s (Drip's 3600/h and
50/h, compressed). A backlog of events waits in the store; a worker drains it for a
whole number of windows from its first call. Records accepted in that time are
divided by the theoretical maximum (60 + 2 x 1000 per window). The same load then
goes through `drip-bridge worker --no-batches` (one call per record, as the other
integrations do), alternately, in the same run.

`--serve`: `drip-bridge serve` instead (its defaults, SQLite), with the traffic
arriving while delivery runs: 8,000 tracks of 2,000 people (4 each, interleaved)
posted to /v1/batch, 500 a request, and posted again (new messageIds) whenever fewer
than 4,000 of them wait, until the windows are over; `--rounds` runs.

    python -m bench throughput [--windows 5] [--rounds 2] [--backlog 30000] [--serve]
"""

from __future__ import annotations

import argparse
import itertools
import random
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import requests

from app.simulators.drip import FakeDrip
from app.simulators.server import wait_until
from app.store import create_engine, outbox, upgrade
from bench.common import (
    ACCOUNT_ID,
    BIN,
    DRIP_TOKEN,
    WRITE_KEY,
    Processes,
    bridge_env,
    drip_records,
    save,
    table,
)
from bench.shapes import bridge, track

WINDOW, CALLS, BATCH_CALLS, BATCH_SIZE = 6.0, 60, 2, 1000


def fill(database_url: str, backlog: int) -> None:
    """`backlog` events, one per person, as ingest would have stored them."""
    engine = create_engine(database_url)
    upgrade(engine)
    now = time.time()
    with engine.begin() as conn:
        for start in range(0, backlog, 5000):
            calls = [
                outbox.Pending(f"m{i}", "drip", "event", f"p{i}@example.com", f"p{i}@example.com", {
                    "email": f"p{i}@example.com", "action": "Viewed Page",
                    "occurred_at": "2026-11-26T10:00:00Z", "properties": {"n": i},
                })
                for i in range(start, min(backlog, start + 5000))
            ]  # fmt: skip
            outbox.enqueue(conn, calls, now)
    engine.dispose()


def delivered(fake: FakeDrip, seconds: float) -> tuple[int, int]:
    """Records and calls accepted within `seconds` of the first call."""
    calls = [c for c in fake.calls() if c.method == "POST" and c.status < 300]
    if not calls:
        return 0, 0
    start = calls[0].at
    inside = [c for c in calls if c.at < start + seconds]
    return sum(drip_records(c.json) for c in inside), len(inside)


PEOPLE, TRACKS, LOW, PER_REQUEST = 2000, 4, 4000, 500  # --serve's traffic


def top_up(url: str, fake: FakeDrip, stop: threading.Event) -> None:
    """Post rounds of TRACKS tracks for each of PEOPLE people until `stop`, the next
    round once fewer than LOW of those sent wait (sent less what Drip accepted)."""
    session, sent = requests.Session(), 0
    order = list(range(PEOPLE))
    rng = random.Random(7)
    for round_ in itertools.count():
        messages = []
        for n in range(TRACKS):
            rng.shuffle(order)
            messages += [track(p, n) | {"messageId": f"r{round_}-{p}-{n}",
                                        "context": {"traits": {"email": f"p{p}@example.com"}}}
                         for p in order]  # fmt: skip
        for start in range(0, len(messages), PER_REQUEST):
            body = {"batch": messages[start : start + PER_REQUEST]}
            session.post(f"{url}/v1/batch", json=body, auth=(WRITE_KEY, ""), timeout=60)
        sent += len(messages)
        while sent - delivered(fake, float("inf"))[0] >= LOW:
            if stop.wait(0.5):
                return
        if stop.is_set():
            return


def serve_run(windows: int) -> dict[str, Any]:
    fake = FakeDrip(token=DRIP_TOKEN, account_id=ACCOUNT_ID,
                    rate_limit=(CALLS, WINDOW), batch_rate_limit=(BATCH_CALLS, WINDOW))  # fmt: skip
    seconds = windows * WINDOW
    with tempfile.TemporaryDirectory() as folder, fake.serve() as served:
        with bridge("serve", Path(folder), served.url) as url:
            stop = threading.Event()
            poster = threading.Thread(target=top_up, args=(url, fake, stop))
            poster.start()
            try:
                wait_until("the first call to Drip", lambda: bool(fake.calls()), timeout=60)
                time.sleep(seconds + 1)
            finally:
                stop.set()
                poster.join()
        records, calls = delivered(fake, seconds)
        stats = fake.stats()
    return _figures("serve", seconds, records, calls, stats)


def run(mode: str, windows: int, backlog: int) -> dict[str, Any]:
    fake = FakeDrip(token=DRIP_TOKEN, account_id=ACCOUNT_ID,
                    rate_limit=(CALLS, WINDOW), batch_rate_limit=(BATCH_CALLS, WINDOW))  # fmt: skip
    seconds = windows * WINDOW
    with tempfile.TemporaryDirectory() as folder, fake.serve() as served:
        url = f"sqlite:///{folder}/bench.sqlite3"
        fill(url, backlog)
        env = bridge_env(url, served.url) | {
            "DRIP_RATE_LIMIT": f"{CALLS}/{WINDOW:g}s",
            "DRIP_BATCH_RATE_LIMIT": f"{BATCH_CALLS}/{WINDOW:g}s",
        }
        procs = Processes(Path(folder))
        argv = [str(BIN / "drip-bridge"), "worker"] + (
            ["--no-batches"] if mode == "baseline" else []
        )
        procs.start(argv, env, mode)
        try:
            deadline = time.monotonic() + seconds + 30
            while not fake.calls() and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(seconds + 1)
        finally:
            procs.stop_all()
        records, calls = delivered(fake, seconds)
        stats = fake.stats()
    return _figures(mode, seconds, records, calls, stats)


def _figures(
    mode: str, seconds: float, records: int, calls: int, stats: dict[str, Any]
) -> dict[str, Any]:
    maximum = seconds / WINDOW * (CALLS + BATCH_CALLS * BATCH_SIZE)
    return {"mode": mode, "seconds": seconds, "records": records, "calls": calls,
            "of_maximum": round(records / maximum, 3), "over_budget": stats["over_budget"],
            "concurrency_violations": stats["concurrency_violations"],
            "dropped": stats["dropped"]}  # fmt: skip


def main(argv: Sequence[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench throughput")
    parser.add_argument("--windows", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--backlog", type=int, default=30000)
    parser.add_argument("--serve", action="store_true", help="serve, traffic arriving")
    args = parser.parse_args(argv)
    keys = ["mode", "seconds", "records", "calls", "of_maximum", "over_budget",
            "concurrency_violations", "dropped"]  # fmt: skip
    title = (f"## Drip throughput ({CALLS} calls + {BATCH_CALLS} batch calls per {WINDOW:g} s; "
             f"maximum {CALLS + BATCH_CALLS * BATCH_SIZE} records per window)")  # fmt: skip
    if args.serve:
        runs = [serve_run(args.windows) for _ in range(args.rounds)]
        shares = [r["of_maximum"] for r in runs]
        summary = "\n".join([
            title + f", `drip-bridge serve` while {PEOPLE * TRACKS:,} tracks of {PEOPLE:,} "
            f"people arrive through /v1/batch, topped up", "",
            table(keys, [[r[k] for k in keys] for r in runs]), "",
            f"of the maximum: {min(shares)}-{max(shares)} over {len(runs)} runs; "
            f"target: >= 0.9 in every run, 0 violations, 0 dropped",
        ])  # fmt: skip
        save("throughput-serve", {"runs": runs}, summary)
        return
    runs = [run(mode, args.windows, args.backlog)
            for _ in range(args.rounds) for mode in ("bridge", "baseline")]  # fmt: skip
    ours = [r for r in runs if r["mode"] == "bridge"]
    baseline = [r for r in runs if r["mode"] == "baseline"]
    ratio = min(r["records"] for r in ours) / max(1, max(r["records"] for r in baseline))
    summary = "\n".join([
        title, "", table(keys, [[r[k] for k in keys] for r in runs]), "",
        f"bridge / one-call-per-event baseline (worst bridge round over best baseline): "
        f"{ratio:.1f}x; targets: >= 0.9 of maximum, >= 10x baseline, 0 violations, 0 dropped",
    ])  # fmt: skip
    save("throughput", {"runs": runs, "bridge_over_baseline": round(ratio, 2)}, summary)
