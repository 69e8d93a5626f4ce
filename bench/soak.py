"""Soak: the bridge under sustained mixed traffic for minutes, delivery running all along.

Two deployments (as in `bench shapes`): `serve` (`drip-bridge serve`, its defaults, on
SQLite) and `split` (the Procfile: `python -m app.web_process wsgi:app` and separate
`drip-bridge worker`s, on PostgreSQL). The fake Drip enforces 60 calls + 2 batch calls
per 6 s (Drip's budgets compressed; the bridge is told the same budgets), so delivery
never stops. For `--minutes`, requests arrive on a fixed schedule, each in its own
thread (a stalled server never slows the arrivals): `/v1/track` 5/s, an identify on
`/segment` 2/s, a Drip webhook 1/s (forwarded to a fake Segment), `/admin` and
`/metrics` every 5 s, and `/v1/batch` (500 tracks a request) whenever fewer than 2,000
messages wait, up to 4,000. Then the traffic stops and the backlog drains, up to
`--drain` seconds.

Reported per run: requests sent, failed (an answer other than 200) and unanswered
(no answer in 30 s, or the connection closed) per endpoint; gunicorn `WORKER TIMEOUT`
lines in the servers' logs; the longest time the fake Drip accepted no call while
messages waited (up to one 6 s window is the budget's own pause); records Drip
accepted over the budget's maximum (60 + 2 x 1,000 a window) in the whole windows from
the first call to the end of the traffic, as `bench throughput` counts, and calls over
62 a window; the RSS (VmRSS) of every process of the bridge at the start, middle and
end of the traffic; every accepted message looked up at the fakes after the drain
(track and batch messages by a property, identifies by email, webhooks by the id the
bridge answered), the missing ones listed.

    python -m bench soak [--minutes 10] [--mode serve|split|both] [--runs 1] [--workers 1]
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import requests

from app.simulators.drip import FakeDrip
from app.simulators.segment import FakeSegment
from app.simulators.server import wait_until
from bench.common import (
    ACCOUNT_ID,
    DRIP_TOKEN,
    WRITE_KEY,
    Processes,
    drip_records,
    median,
    save,
    table,
)
from bench.shapes import BATCH_CALLS, CALLS, MAXIMUM, WINDOW, accepted, bridge, is_batch

LOW, HIGH, PER_BATCH = 2000, 4000, 500  # the backlog /v1/batch keeps waiting
RATES = {"track": 5.0, "identify": 2.0, "webhook": 1.0, "admin": 0.2, "metrics": 0.2}
ENDPOINTS = ("batch", *RATES)
TIMEOUT = 30.0  # a client's patience, gunicorn's worker timeout
PASSWORD, HOOK_TOKEN, SEGMENT_KEY = "bench-admin", "bench-hook", "bench-segment"
MODES = {"serve": "serve", "split": "workers"}  # this benchmark's names -> shapes.bridge's


class Load:
    """Open-loop traffic against `url`; what was answered, and what should reach the fakes."""

    def __init__(self, url: str, fake: FakeDrip) -> None:
        self.url, self.fake = url, fake
        self.lock = threading.Lock()
        self.counts = {e: Counter[str]() for e in ENDPOINTS}
        self.expected: dict[str, list[str]] = {e: [] for e in ENDPOINTS}  # accepted messages
        self.lost_in_flight: dict[str, list[str]] = {e: [] for e in ENDPOINTS}  # unanswered
        self.waiting = 0  # messages in /v1/batch requests not yet answered
        self.to_drip = 0  # messages accepted that become one Drip record each
        self.serial = itertools.count()
        self.stopped = threading.Event()
        self.threads: list[threading.Thread] = []

    def request(self, endpoint: str, keys: list[str], method: str, path: str, **kw: Any) -> None:
        """Send in a thread of its own; count the outcome; remember `keys` if accepted."""

        def send() -> None:
            try:
                response = requests.request(method, self.url + path, timeout=TIMEOUT, **kw)
                outcome = "ok" if response.status_code == 200 else "failed"
                if outcome == "ok" and endpoint == "webhook":
                    keys[:] = [response.json()["id"]]
            except requests.RequestException:
                outcome = "unanswered"
            with self.lock:
                self.counts[endpoint]["sent"] += 1
                self.counts[endpoint][outcome] += 1
                if endpoint == "batch":
                    self.waiting -= len(keys)
                if outcome == "ok":
                    self.expected[endpoint] += keys
                    self.to_drip += len(keys) if endpoint in ("batch", "track", "identify") else 0
                elif outcome == "unanswered":
                    self.lost_in_flight[endpoint] += keys

        thread = threading.Thread(target=send, daemon=True)
        thread.start()
        self.threads.append(thread)

    def send(self, endpoint: str) -> None:
        n = next(self.serial)
        basic = (WRITE_KEY, "")
        if endpoint == "track":
            key = f"t{n}"
            self.request(endpoint, [key], "POST", "/v1/track", auth=basic, json=track(key, n))
        elif endpoint == "identify":
            key = f"s{n}@example.com"
            body = {"type": "identify", "userId": f"s{n}", "messageId": f"i{n}",
                    "traits": {"email": key}}  # fmt: skip
            headers = {"Authorization": f"Bearer {WRITE_KEY}"}
            self.request(endpoint, [key], "POST", "/segment", headers=headers, json=body)
        elif endpoint == "webhook":
            self.request(endpoint, [], "POST", f"/drip/webhook?token={HOOK_TOKEN}",
                         json=webhook(n))  # fmt: skip
        elif endpoint == "admin":
            self.request(endpoint, [], "GET", "/admin", auth=("admin", PASSWORD))
        elif endpoint == "metrics":
            self.request(endpoint, [], "GET", "/metrics")

    def every(self, endpoint: str, interval: float) -> None:
        """`endpoint` on a fixed schedule until stopped."""
        due = time.monotonic()
        while not self.stopped.is_set():
            self.send(endpoint)
            due += interval
            self.stopped.wait(max(0.0, due - time.monotonic()))

    def backlog(self) -> int:
        """Messages for Drip accepted (or being sent) and not yet in the fake Drip."""
        records = self.fake.stats()["records"]
        with self.lock:
            return (
                self.waiting + self.to_drip - records.get("event", 0) - records.get("subscriber", 0)
            )

    def top_up(self) -> None:
        """/v1/batch whenever fewer than LOW messages wait, up to HIGH."""
        while not self.stopped.wait(0.25):
            backlog = self.backlog()
            while backlog < LOW:
                n = next(self.serial)
                keys = [f"b{n}-{i}" for i in range(PER_BATCH)]
                body = {"batch": [track(k, n * PER_BATCH + i) | {"type": "track"}
                                  for i, k in enumerate(keys)]}  # fmt: skip
                with self.lock:
                    self.waiting += PER_BATCH
                self.request("batch", keys, "POST", "/v1/batch", auth=(WRITE_KEY, ""), json=body)
                backlog += PER_BATCH
                if backlog >= HIGH:
                    break

    def start(self) -> list[threading.Thread]:
        streams = [threading.Thread(target=self.top_up, daemon=True)] + [
            threading.Thread(target=self.every, args=(e, 1 / rate), daemon=True)
            for e, rate in RATES.items()
        ]
        for stream in streams:
            stream.start()
        return streams

    def stop(self, streams: list[threading.Thread]) -> None:
        self.stopped.set()
        for thread in streams + list(self.threads):
            thread.join(timeout=TIMEOUT + 5)


def track(key: str, n: int) -> dict[str, Any]:
    """A track Drip gets as one event record carrying `key`; 2,000 people take turns."""
    return {"userId": f"u{n % 2000}", "event": "Soaked", "messageId": key,
            "properties": {"email": f"p{n % 2000}@example.com", "soak": key}}  # fmt: skip


def webhook(n: int) -> dict[str, Any]:
    return {"event": "subscriber.clicked_email", "occurred_at": "2026-11-26T10:00:00Z",
            "data": {"account_id": ACCOUNT_ID,
                     "subscriber": {"id": f"z{n}", "email": f"w{n}@example.com",
                                    "user_id": f"w{n}"},
                     "properties": {"delivery_id": str(n), "email_id": "1",
                                    "url": "http://www.example.com"}}}  # fmt: skip


def missing(load: Load, fake: FakeDrip, segment: FakeSegment) -> dict[str, list[str]]:
    """Accepted messages not (yet) at the fakes, by endpoint."""
    events = {r.get("properties", {}).get("soak") for r in fake.records("event")}
    people = {str(r.get("email")) for r in fake.records("subscriber")}
    sent = {m.get("messageId") for m in segment.messages()}
    found: dict[str, set[Any]] = {"batch": events, "track": events, "identify": people,
                                  "webhook": sent}  # fmt: skip
    with load.lock:
        return {e: [k for k in load.expected[e] if k not in found[e]] for e in found}


def processes(roots: dict[str, int]) -> list[dict[str, Any]]:
    """Every process of each tree: role, pid, VmRSS in MB."""
    out: list[dict[str, Any]] = []
    for name, root in roots.items():
        for pid, depth in _tree(root):
            role = name if depth == 0 else f"{name} child"
            out.append({"role": role, "pid": pid, "rss_mb": _rss_mb(pid)})
    return out


def _tree(pid: int, depth: int = 0) -> list[tuple[int, int]]:
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    return [(pid, depth)] + [t for c in children for t in _tree(int(c), depth + 1)]


def _rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return float("nan")


def longest_idle(times: list[float], until: float) -> tuple[float, float]:
    """(the longest pause between `times` (Drip's accepted calls) up to `until`, when it
    began)."""
    edges = [*sorted(times), until]
    return max(((b - a, a) for a, b in itertools.pairwise(edges)), default=(0.0, edges[0]))


def _status(url: str) -> int:
    try:
        return requests.get(url, timeout=5).status_code
    except requests.RequestException:
        return 0


def wait_for(done: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not done():
        if time.monotonic() > deadline:
            return False
        time.sleep(2)
    return True


def run(mode: str, minutes: float, drain: float, workers: int) -> dict[str, Any]:
    fake = FakeDrip(token=DRIP_TOKEN, account_id=ACCOUNT_ID,
                    rate_limit=(CALLS, WINDOW), batch_rate_limit=(BATCH_CALLS, WINDOW))  # fmt: skip
    segment = FakeSegment(write_key=SEGMENT_KEY)
    with tempfile.TemporaryDirectory(prefix="bench-soak-") as folder:
        procs = Processes(Path(folder))
        with fake.serve() as drip, segment.serve() as seg:
            env = {"SEGMENT_WRITE_KEY": SEGMENT_KEY, "SEGMENT_API_HOST": seg.url,
                   "ADMIN_PASSWORD": PASSWORD, "DRIP_WEBHOOK_TOKEN": HOOK_TOKEN}  # fmt: skip
            with bridge(MODES[mode], Path(folder), drip.url, workers, env, procs) as url:
                names = (
                    ["serve"]
                    if mode == "serve"
                    else ["upgrade", "web"] + [f"worker-{n}" for n in range(workers)]
                )
                roots = {n: p.pid for n, p in zip(names, procs.started, strict=True)
                         if p.poll() is None}  # fmt: skip
                ready = lambda: _status(f"{url}/readyz") == 200  # noqa: E731
                wait_until("/readyz (a worker seen)", ready, timeout=120)
                load = Load(url, fake)
                rss = {"start": processes(roots)}
                began = time.time()
                streams = load.start()
                time.sleep(minutes * 30)
                rss["middle"] = processes(roots)
                time.sleep(minutes * 30)
                rss["end"] = processes(roots)
                ended = time.time()
                load.stop(streams)
                print(f"soak {mode}: traffic stopped, draining (up to {drain:g} s)", flush=True)
                drained = wait_for(lambda: not any(missing(load, fake, segment).values()), drain)
                done = time.time()
            logs = "".join((Path(folder) / f"{n}.log").read_text(errors="replace")
                           for n in names if n.startswith(("serve", "web")))  # fmt: skip
        calls = accepted(fake)
        stats = fake.stats()
        left = missing(load, fake, segment)
    times = [c.at for c in calls]
    # From the first message sent to the last delivery (or the drain's deadline).
    idle, idle_at = longest_idle([began, *times], times[-1] if drained and times else done)
    first = times[0] if times else began
    windows = max(1, int((ended - first) // WINDOW))
    inside = [c for c in calls if first <= c.at < first + windows * WINDOW]
    records = sum(drip_records(c.json) for c in inside)
    batches = [drip_records(c.json) for c in inside if is_batch(c.path)]
    accepted_n = sum(len(keys) for keys in load.expected.values())
    return {
        "mode": mode, "minutes": minutes,
        "requests": {e: dict(load.counts[e]) for e in ENDPOINTS},
        "worker_timeouts": logs.count("WORKER TIMEOUT"),
        "longest_idle_s": round(idle, 1), "longest_idle_at_s": round(idle_at - began, 1),
        "windows": windows, "records": records, "calls": len(inside),
        "of_maximum": round(records / (windows * MAXIMUM), 3),
        "calls_of_maximum": round(len(inside) / (windows * (CALLS + BATCH_CALLS)), 3),
        "batch_calls": len(batches), "batch_records_median": median(batches) if batches else 0,
        "batch_records_min": min(batches, default=0),
        "accepted": accepted_n, "delivered": accepted_n - sum(map(len, left.values())),
        "missing": {e: keys[:20] for e, keys in left.items() if keys},
        "drained": drained, "drain_s": round(done - ended, 1),
        "unanswered_delivered_anyway": _found_anyway(load, fake, segment),
        "over_budget": stats["over_budget"], "dropped": stats["dropped"],
        "rss_mb": rss,
    }  # fmt: skip


def _found_anyway(load: Load, fake: FakeDrip, segment: FakeSegment) -> int:
    """Messages of unanswered requests that reached Drip all the same (stored, not answered)."""
    events = {r.get("properties", {}).get("soak") for r in fake.records("event")}
    people = {str(r.get("email")) for r in fake.records("subscriber")}
    lost = load.lost_in_flight
    return sum(k in events for k in lost["batch"] + lost["track"]) + sum(
        k in people for k in lost["identify"]
    )


def render(runs: list[dict[str, Any]]) -> str:
    keys = ["mode", "minutes", "worker_timeouts", "longest_idle_s", "longest_idle_at_s",
            "of_maximum", "calls_of_maximum", "batch_calls", "batch_records_median",
            "batch_records_min", "accepted", "delivered", "drained", "drain_s", "over_budget",
            "dropped"]  # fmt: skip
    rows = [[r[k] for k in keys] for r in runs]
    requests_rows = [
        [r["mode"], e, c.get("sent", 0), c.get("failed", 0), c.get("unanswered", 0)]
        for r in runs for e, c in r["requests"].items()
    ]  # fmt: skip
    rss_rows = [
        [r["mode"], p["role"], p["pid"], *(_rss_at(r["rss_mb"][w], p["pid"]) for w in
                                           ("start", "middle", "end"))]
        for r in runs for p in _every_process(r["rss_mb"])
    ]  # fmt: skip
    lines = [
        f"## Soak ({CALLS} calls + {BATCH_CALLS} batch calls per {WINDOW:g} s; /v1/batch "
        f"keeps {LOW:,}-{HIGH:,} messages waiting; track 5/s, identify 2/s, webhook 1/s, "
        "/admin and /metrics every 5 s)", "", table(keys, rows), "",
        "### Requests (failed: an answer other than 200; unanswered: none in 30 s or the "
        "connection closed)", "",
        table(["mode", "endpoint", "sent", "failed", "unanswered"], requests_rows), "",
        "### RSS (MB; - when the process was not running then)", "",
        table(["mode", "process", "pid", "start", "middle", "end"], rss_rows),
    ]  # fmt: skip
    for r in runs:
        if r["missing"]:
            lines += ["", f"{r['mode']}: missing after the drain: {r['missing']}"]
        lines += ["", f"{r['mode']}: messages of unanswered requests delivered anyway: "
                  f"{r['unanswered_delivered_anyway']}"]  # fmt: skip
    return "\n".join(lines)


def _every_process(rss: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    seen: dict[int, dict[str, Any]] = {}
    for when in ("start", "middle", "end"):
        for p in rss[when]:
            seen.setdefault(p["pid"], p)
    return list(seen.values())


def _rss_at(snapshot: list[dict[str, Any]], pid: int) -> object:
    return next((p["rss_mb"] for p in snapshot if p["pid"] == pid), "-")


def main(argv: Sequence[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench soak", description=__doc__)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--mode", choices=(*MODES, "both"), default="both")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--workers", type=int, default=1, help="drip-bridge workers (split)")
    parser.add_argument("--drain", type=float, default=300.0, help="seconds to wait for it")
    parser.add_argument("--save-as", default="soak", help="bench/results/<name>.json and .md")
    args = parser.parse_args(argv)
    modes = list(MODES) if args.mode == "both" else [args.mode]
    runs = [run(mode, args.minutes, args.drain, args.workers)
            for _ in range(args.runs) for mode in modes]  # fmt: skip
    save(args.save_as, {"runs": runs, "parameters": vars(args)}, render(runs))
