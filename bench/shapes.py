"""Drip throughput by traffic shape, traffic arriving through /v1/batch while delivery runs.

Each shape runs in two deployments: `serve` (`drip-bridge serve`: its default gunicorn
processes, a delivery thread in each, SQLite) and `workers` (the Procfile's web and two
`drip-bridge worker`s on PostgreSQL). The fake Drip enforces 60 calls + 2 batch calls per
6 s (Drip's budgets compressed): at most 60 + 2 x 1000 = 2,060 records a window.

* many: 3,000 people, an identify then 4 tracks each (15,000 messages);
* backfill: 40 people, an identify then 250 tracks each (10,040 messages);
* engage: 3,000 people entering 3 Engage audiences, audience by audience (9,000).

many, backfill: records Drip accepted in the first `--windows` windows from the first
call, over the maximum. engage: the windows from the first call to the one that
completed every person (the fake's fixed windows); messages applied a window over the
one-record-per-message maximum (2,060); every person in the fake Drip compared with
the same messages applied one by one.

`--goal`: the Engage goal, 100,000 people x 3 audiences at Drip's real budgets (3600/h
and 50/h) with time compressed `--scale` times; the messages are mapped before delivery
starts (at real speed they arrive in minutes), then two workers deliver on PostgreSQL.

    python -m bench shapes [--runs 3] [--shape many] [--mode serve] [--goal]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests
import sqlalchemy as sa

from app.config import Config
from app.mapping.to_drip import map_message
from app.mapping.types import Options
from app.pipeline import intake
from app.simulators.drip import FakeDrip
from app.simulators.drip_people import People
from app.simulators.server import free_port, wait_until
from app.store import create_engine, inbox, upgrade
from bench.common import (
    ACCOUNT_ID,
    BIN,
    DRIP_TOKEN,
    WRITE_KEY,
    Processes,
    bridge_env,
    drip_records,
    postgres_database,  # fmt: skip
    save,
    table,
)

WINDOW, CALLS, BATCH_CALLS, BATCH_SIZE = 6.0, 60, 2, 1000
MAXIMUM = CALLS + BATCH_CALLS * BATCH_SIZE
SHAPES = ("many", "backfill", "engage")
MODES = ("serve", "workers")
PER_REQUEST = 500


def identify(p: int, **traits: Any) -> dict[str, Any]:
    return {"type": "identify", "userId": f"u{p}",
            "traits": {"email": f"p{p}@example.com", **traits}}  # fmt: skip


def track(p: int, n: int) -> dict[str, Any]:
    return {"type": "track", "userId": f"u{p}", "event": "Viewed Page",
            "properties": {"n": n}, "timestamp": "2026-11-26T10:00:00Z"}  # fmt: skip


def audience(p: int, key: str) -> dict[str, Any]:
    message = identify(p, **{key: True})
    message["context"] = {"personas": {"computation_key": key, "computation_class": "audience"}}
    return message


def messages(shape: str, people: int = 3000) -> list[dict[str, Any]]:
    """The shape's messages in arrival order, each with a messageId."""
    rng = random.Random(7)
    out: list[dict[str, Any]] = []
    if shape == "engage":
        out = [audience(p, key) for key in ("gold", "churn_risk", "beta") for p in range(people)]
    else:
        count, tracks = (3000, 4) if shape == "many" else (40, 250)
        order = list(range(count))
        out = [identify(p) for p in order]
        for n in range(tracks):  # people's activity interleaved in time
            rng.shuffle(order)
            out += [track(p, n) for p in order]
    return [m | {"messageId": f"{shape}-{i}"} for i, m in enumerate(out)]


def expected_people(sent: list[dict[str, Any]]) -> People:
    """The subscribers Drip holds after every message applied one by one, in order."""
    people, known = People(ACCOUNT_ID), dict[str, str]()
    for message in sent:
        outcome = map_message(message, known, Options())
        known |= outcome.learned
        for call in outcome.calls:
            if call.kind == "subscriber":
                people.upsert(call.record)
    return people


def exact(fake: FakeDrip, expected: People, people: int) -> int:
    """How many of the `people` are in the fake Drip exactly as expected."""
    drop = {"created_at", "id", "href"}  # a clock reading and the fake's id counter
    same = 0
    for p in range(people):
        got, want = fake.subscriber(f"p{p}@example.com"), expected.find(f"p{p}@example.com")
        if (
            got
            and want
            and {k: v for k, v in got.items() if k not in drop}
            == {k: v for k, v in want.items() if k not in drop}
        ):
            same += 1
    return same


def post_all(url: str, sent: list[dict[str, Any]]) -> None:
    session = requests.Session()
    for start in range(0, len(sent), PER_REQUEST):
        body = {"batch": sent[start : start + PER_REQUEST]}
        session.post(
            f"{url}/v1/batch", json=body, auth=(WRITE_KEY, ""), timeout=60
        ).raise_for_status()


def budget_env(calls: int, batch_calls: int, window: float) -> dict[str, str]:
    return {"DRIP_RATE_LIMIT": f"{calls}/{window:g}s",
            "DRIP_BATCH_RATE_LIMIT": f"{batch_calls}/{window:g}s"}  # fmt: skip


@contextmanager
def bridge(
    mode: str,
    folder: Path,
    drip_url: str,
    workers: int = 2,
    extra_env: Mapping[str, str] | None = None,
    procs: Processes | None = None,
) -> Iterator[str]:
    """The bridge in `mode`, on a fresh store; its URL. `extra_env` over the bridge's
    environment; `procs` to see the processes started (their logs are in `folder`)."""
    procs = procs or Processes(folder)
    with postgres_database("bench_shapes") if mode == "workers" else _sqlite(folder) as url:
        if url is None:
            raise SystemExit("PostgreSQL is needed for the workers mode")
        env = (
            bridge_env(url, drip_url)
            | budget_env(CALLS, BATCH_CALLS, WINDOW)
            | {**(extra_env or {})}
        )
        try:
            port = free_port()
            if mode == "serve":
                procs.start([str(BIN / "drip-bridge"), "serve", "--port", str(port)], env, "serve")
                web = f"http://127.0.0.1:{port}"
                wait_until("serve to answer", lambda: _answers(web), timeout=60)
            else:
                procs.start([str(BIN / "drip-bridge"), "db", "upgrade"], env, "upgrade").wait()
                web = procs.gunicorn("wsgi:app", port, env, "web")
                for n in range(workers):
                    procs.start([str(BIN / "drip-bridge"), "worker"], env, f"worker-{n}")
            yield web
        finally:
            procs.stop_all()


@contextmanager
def _sqlite(folder: Path) -> Iterator[str]:
    yield f"sqlite:///{folder}/bench.sqlite3"


def _answers(url: str) -> bool:
    try:
        return requests.get(f"{url}/healthz", timeout=1).status_code == 200
    except requests.RequestException:
        return False


def accepted(fake: FakeDrip) -> list[Any]:
    return [c for c in fake.calls() if c.method == "POST" and c.status < 300]


def windows_spanned(times: list[float], window: float) -> int:
    """How many of the fake's fixed windows (each opened by the first call after the
    last one closed) the calls at `times` fall in."""
    count, opened = 0, float("-inf")
    for at in sorted(times):
        if at >= opened + window:
            count, opened = count + 1, at
    return count


def run(shape: str, mode: str, windows: int) -> dict[str, Any]:
    fake = FakeDrip(token=DRIP_TOKEN, account_id=ACCOUNT_ID,
                    rate_limit=(CALLS, WINDOW), batch_rate_limit=(BATCH_CALLS, WINDOW))  # fmt: skip
    sent = messages(shape)
    with tempfile.TemporaryDirectory() as folder, fake.serve() as served:
        with bridge(mode, Path(folder), served.url) as url:
            poster = threading.Thread(target=post_all, args=(url, sent))
            poster.start()
            wait_until("the first call to Drip", lambda: bool(fake.calls()), timeout=60)
            if shape == "engage":
                expected = expected_people(sent)
                done = lambda: _quietly(1.0) and exact(fake, expected, 3000) == 3000  # noqa: E731
                wait_until("every person's end state", done, timeout=120)
            else:
                time.sleep(windows * WINDOW + 1)
            poster.join()
        calls = accepted(fake)
        stats = fake.stats()
    start = calls[0].at
    row: dict[str, Any] = {"shape": shape, "mode": mode, "over_budget": stats["over_budget"],
                           "concurrency_violations": stats["concurrency_violations"],
                           "dropped": stats["dropped"]}  # fmt: skip
    if shape == "engage":
        spanned = windows_spanned([c.at for c in calls], WINDOW)
        records = sum(drip_records(c.json) for c in calls)
        per_window = len(sent) / spanned
        return row | {"messages": len(sent), "records": records, "calls": len(calls),
                      "windows": spanned, "messages_per_window": round(per_window),
                      "of_one_record_max": round(per_window / MAXIMUM, 2),
                      "exact_people": 3000}  # fmt: skip
    inside = [c for c in calls if c.at < start + windows * WINDOW]
    records = sum(drip_records(c.json) for c in inside)
    of_maximum = round(records / (windows * MAXIMUM), 3)
    records_in = [0] * windows
    for c in inside:
        records_in[int((c.at - start) // WINDOW)] += drip_records(c.json)
    batches = [drip_records(c.json) for c in inside if is_batch(c.path)]
    return row | {"messages": len(sent), "records": records, "calls": len(inside),
                  "windows": windows, "per_window": "/".join(map(str, records_in)),
                  "batches": "/".join(map(str, batches)), "of_maximum": of_maximum}  # fmt: skip


def is_batch(path: str) -> bool:
    return path.endswith(("/batches", "/batch"))


def goal(people: int, scale: float) -> dict[str, Any]:
    """The Engage goal at Drip's real budgets, time compressed `scale` times; with fewer
    than 100,000 people both budgets shrink in proportion (a scaled run: the same
    number of windows, batches of 1000)."""
    window = 3600 / scale
    per_hour, batches_per_hour = round(3600 * people / 100_000), round(50 * people / 100_000)
    fake = FakeDrip(token=DRIP_TOKEN, account_id=ACCOUNT_ID, rate_limit=(per_hour, window),
                    batch_rate_limit=(batches_per_hour, window))  # fmt: skip
    sent = messages("engage", people)
    with tempfile.TemporaryDirectory() as folder, fake.serve() as served:
        with postgres_database("bench_goal") as url:
            if url is None:
                raise SystemExit("PostgreSQL is needed for the goal")
            env = bridge_env(url, served.url) | budget_env(per_hour, batches_per_hour, window)
            engine = create_engine(url)
            upgrade(engine)
            mapped = _map_before(engine, Config.from_env(env), sent)
            procs = Processes(Path(folder))
            try:
                for n in range(2):
                    procs.start([str(BIN / "drip-bridge"), "worker"], env, f"worker-{n}")
                done = lambda: _quietly(2.0) and _pending(engine) == 0  # noqa: E731
                wait_until("every row delivered", done, timeout=3 * window + 600)
            finally:
                procs.stop_all()
                engine.dispose()
        calls = accepted(fake)
        expected = expected_people(sent)
        right = exact(fake, expected, people)
        stats = fake.stats()
    took = calls[-1].at - calls[0].at
    records = sum(drip_records(c.json) for c in calls)
    batches = sum(1 for c in calls if c.path.endswith("/batches"))
    budgets = f"{per_hour} + {batches_per_hour} batches"
    return {"people": people, "messages": len(sent), "budgets_per_hour": budgets,
            "scale": scale, "mapping_s": round(mapped, 1),
            "records": records, "calls": len(calls), "batch_calls": batches,
            "compressed_s": round(took, 1), "real_hours": round(took * scale / 3600, 2),
            "exact_people": right, "over_budget": stats["over_budget"],
            "concurrency_violations": stats["concurrency_violations"],
            "dropped": stats["dropped"]}  # fmt: skip


def _map_before(engine: sa.Engine, config: Config, sent: list[dict[str, Any]]) -> float:
    """Store the messages as /v1/batch requests and map them all, as the worker's intake does."""
    started = time.perf_counter()
    for start in range(0, len(sent), PER_REQUEST):
        body = json.dumps({"batch": sent[start : start + PER_REQUEST]})
        inbox.put(engine, "batch", body, time.time())
    while intake.map_waiting(engine, config):
        pass
    return time.perf_counter() - started


def _quietly(seconds: float) -> bool:
    """Sleep before a costly check (the fake Drip shares this process)."""
    time.sleep(seconds)
    return True


def _pending(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        query = sa.text("SELECT count(*) FROM outbox WHERE state = 'pending'")
        return int(conn.execute(query).scalar_one())


def main(argv: Sequence[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench shapes")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--windows", type=int, default=4)
    parser.add_argument("--shape", action="append", choices=SHAPES)
    parser.add_argument("--mode", action="append", choices=MODES)
    parser.add_argument("--goal", action="store_true", help="the Engage goal instead")
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--scale", type=float, default=30.0)
    args = parser.parse_args(argv)
    if args.goal:
        figures = goal(args.people, args.scale)
        keys = list(figures)
        summary = "\n".join([
            f"## Engage goal: {args.people:,} people x 3 audiences at Drip's budgets "
            f"(3600/h + 50 batches/h for 100,000 people, in proportion below), time compressed "
            f"{args.scale:g}x", "", table(keys, [[figures[k] for k in keys]]), "",
            "target: every person's end state in Drip in under 2 real hours",
        ])  # fmt: skip
        save("engage_goal", figures, summary)
        return
    runs = [run(shape, mode, args.windows)
            for shape in args.shape or SHAPES for mode in args.mode or MODES
            for _ in range(args.runs)]  # fmt: skip
    title = (f"## Drip throughput by shape ({CALLS} calls + {BATCH_CALLS} batch calls "
             f"per {WINDOW:g} s; at most {MAXIMUM} records a window), via /v1/batch")  # fmt: skip
    lines = [title, ""]
    for shape in args.shape or SHAPES:
        mine = [r for r in runs if r["shape"] == shape]
        keys = [k for k in mine[0] if k != "shape"]
        figure = "of_one_record_max" if shape == "engage" else "of_maximum"
        lines += [f"### {shape}", "", table(keys, [[r[k] for k in keys] for r in mine]), ""]
        for mode in args.mode or MODES:
            values = [r[figure] for r in mine if r["mode"] == mode]
            lines.append(f"{mode}: {figure} median {statistics.median(values)}, "
                         f"min {min(values)}, max {max(values)}")  # fmt: skip
        lines.append("")
    lines.append("targets: many, backfill >= 0.9 of the maximum in every run; engage >= 2.0x "
                 "the one-record-per-message maximum with every person exact")  # fmt: skip
    save("shapes", {"runs": runs}, "\n".join(lines))
