"""Ingest: the bridge under gunicorn (Procfile web) against a no-op Flask app, same settings.

Closed loop (wrk, unique messageIds per request) on /v1/track and /v1/batch, the servers
measured alternately round by round; then an open-loop generator at half of the bridge's
peak for its latency. The bridge runs on SQLite (the default) and on PostgreSQL; with
`--baseline <checkout>`, another version of it runs on both stores in the same rounds
(`--baseline .` with `--baseline-gunicorn-args` compares settings of this one).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import http.client
import itertools
import json
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import sqlalchemy as sa

from app.simulators.server import free_port
from bench.common import (
    ROOT,
    WRITE_KEY,
    Processes,
    bridge_env,
    cpu_seconds,
    median,
    percentile,
    postgres_database,
    save,
    table,
)

# One track message; the same template feeds Lua's string.format and Python's %.
# Arguments: a `"type":"track",` prefix (in batches) or "", k, messageId, k, k.
TRACK = (
    '{%s"userId":"u%d","event":"Viewed Product","messageId":"%s","properties":'
    '{"email":"p%d@example.com","product_id":"sku-%d","price":19.99,"currency":"USD",'
    '"category":"Books","url":"https://shop.example.com/p/%d"},"timestamp":"2024-05-01T12:00:00Z"}'
)
AUTH = "Basic " + base64.b64encode(f"{WRITE_KEY}:".encode()).decode()
PERSONS = 100_000
LUA = """
local nonce, path, per = "{nonce}", "{path}", {per}
local template = '{template}'
local n, count = 0, 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "{auth}"
function setup(thread) count = count + 1; thread:set("tid", count) end
local function track(id, k, typed) return string.format(template, typed, k, id, k, k, k) end
function request()
  n = n + 1
  local base = nonce .. "-" .. tid .. "-" .. n
  if per == 0 then return wrk.format(nil, path, nil, track(base, n % {persons}, "")) end
  local parts = {{}}
  for i = 1, per do
    parts[i] = track(base .. "-" .. i, (n * per + i) % {persons}, '"type":"track",')
  end
  return wrk.format(nil, path, nil, '{{"batch":[' .. table.concat(parts, ",") .. ']}}')
end
function done(s, latency, requests)
  local e = s.errors
  io.write(string.format('RESULT {{"requests":%d,"duration_us":%d,"status_errors":%d,' ..
    '"socket_errors":%d,"p50_us":%d,"p99_us":%d}}\\n', s.requests, s.duration, e.status,
    e.connect + e.read + e.write + e.timeout, latency:percentile(50), latency:percentile(99)))
end
"""


@dataclass(frozen=True)
class Endpoint:
    name: str
    path: str
    per: int  # messages per request; 0 = a single /v1/track message

    @property
    def messages(self) -> int:
        return max(1, self.per)


ENDPOINTS = (Endpoint("track", "/v1/track", 0), Endpoint("batch20", "/v1/batch", 20))


def body(endpoint: Endpoint, base: str, n: int) -> bytes:
    """The same bodies as the Lua script builds."""
    if endpoint.per == 0:
        k = n % PERSONS
        return (TRACK % ("", k, base, k, k, k)).encode()
    items = []
    for i in range(1, endpoint.per + 1):
        k = (n * endpoint.per + i) % PERSONS
        items.append(TRACK % ('"type":"track",', k, f"{base}-{i}", k, k, k))
    return ('{"batch":[' + ",".join(items) + "]}").encode()


class Server(NamedTuple):
    url: str
    pid: int  # gunicorn's master: its workers' CPU time is read from /proc


def wrk(
    server: Server, endpoint: Endpoint, seconds: float, connections: int, work: Path
) -> dict[str, Any]:
    """One closed-loop wrk run; requests/s, latency percentiles (ms), errors, and the
    server's CPU time per request (steadier than requests/s on a shared machine)."""
    script = work / f"{uuid.uuid4().hex}.lua"
    script.write_text(
        LUA.format(
            nonce=uuid.uuid4().hex[:12],
            path=endpoint.path,
            per=endpoint.per,
            template=TRACK,
            auth=AUTH,
            persons=PERSONS,
        )
    )
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "5s",
            "-s", str(script), server.url]  # fmt: skip
    cpu = cpu_seconds(server.pid)
    out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 30).stdout
    cpu = cpu_seconds(server.pid) - cpu
    line = next(ln for ln in out.splitlines() if ln.startswith("RESULT "))
    raw = json.loads(line.removeprefix("RESULT "))
    script.unlink()
    return {
        "rps": raw["requests"] / (raw["duration_us"] / 1e6),
        "p50_ms": raw["p50_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "requests": raw["requests"],
        "errors": raw["status_errors"] + raw["socket_errors"],
        "cpu_us": cpu / max(1, raw["requests"]) * 1e6,
    }


def alternate(
    servers: dict[str, Server], args: argparse.Namespace, work: Path
) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """Every endpoint on every server, round by round (order rotated each round)."""
    names = list(servers)
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {
        e.name: {key: [] for n in names for key in (n, f"{n}:warmup")} for e in ENDPOINTS
    }
    for endpoint in ENDPOINTS:
        for name in names:  # warm-up: counted in what was sent, not in the figures
            runs[endpoint.name][f"{name}:warmup"].append(
                wrk(servers[name], endpoint, 2, args.connections, work)
            )
        for r in range(args.rounds):
            for name in names[r % len(names) :] + names[: r % len(names)]:
                result = wrk(servers[name], endpoint, args.seconds, args.connections, work)
                runs[endpoint.name][name].append(result)
                print(f"  {endpoint.name:8} round {r + 1} {name:14} {result['rps']:8.1f} req/s "
                      f"p50 {result['p50_ms']:.1f} ms p99 {result['p99_ms']:.1f} ms")  # fmt: skip
    return runs


def open_loop(
    url: str, endpoint: Endpoint, rate: float, seconds: float, threads: int = 32
) -> dict[str, Any]:
    """Requests sent on a fixed schedule; latency counted from each one's scheduled time."""
    target = urlsplit(url)
    total, start = int(rate * seconds), time.perf_counter() + 0.2
    indexes, latencies, errors = itertools.count(), [], [0]
    nonce = uuid.uuid4().hex[:12]

    def client() -> None:
        conn = http.client.HTTPConnection(target.hostname or "", target.port, timeout=10)
        while (i := next(indexes)) < total:
            due = start + i / rate
            time.sleep(max(0.0, due - time.perf_counter()))
            ok = _post(conn, endpoint.path, body(endpoint, f"{nonce}-{i}", i))
            latencies.append(time.perf_counter() - due)
            errors[0] += not ok
        conn.close()

    workers = [threading.Thread(target=client, daemon=True) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=seconds + 60)
    elapsed = time.perf_counter() - start
    return {
        "target_rps": rate,
        "achieved_rps": len(latencies) / elapsed,
        "p50_ms": percentile(latencies, 50) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
        "requests": len(latencies),
        "errors": errors[0],
    }


def _post(conn: http.client.HTTPConnection, path: str, payload: bytes) -> bool:
    headers = {"Content-Type": "application/json", "Authorization": AUTH}
    for attempt in range(2):  # a kept-alive connection the server closed: reconnect once
        try:
            conn.request("POST", path, body=payload, headers=headers)
            response = conn.getresponse()
            response.read()
            return response.status == 200
        except (http.client.HTTPException, OSError):
            conn.close()
            if attempt:
                return False
    return False


class Bridge(NamedTuple):
    database_url: str
    checkout: Path  # the code it runs: this one, or --baseline's
    gunicorn_args: Sequence[str] = ()  # over `extra`, for this bridge alone


def start_servers(
    procs: Processes, work: Path, bridges: dict[str, Bridge], extra: Sequence[str] = ()
) -> dict[str, Server]:
    """The no-op app and each bridge, each its own gunicorn (`extra`: gunicorn options
    over the configuration file's, for all of them)."""
    servers: dict[str, Server] = {}
    noop_env = bridge_env(f"sqlite:///{work}/noop.sqlite3") | {
        "PROMETHEUS_MULTIPROC_DIR": _metrics_dir(work)
    }
    url = procs.gunicorn("bench.noop:app", free_port(), noop_env, "noop", extra)
    servers["noop"] = Server(url, procs.started[-1].pid)
    for name, bridge in bridges.items():
        env = bridge_env(bridge.database_url) | {"PROMETHEUS_MULTIPROC_DIR": _metrics_dir(work)}
        # The checkout's own code first on the path (`-m` and `-c` put the working folder there).
        upgrade = [sys.executable, "-m", "app", "db", "upgrade"]
        subprocess.run(upgrade, env=env, cwd=bridge.checkout, check=True, capture_output=True,
                       timeout=120)  # fmt: skip
        options = [*extra, *bridge.gunicorn_args]
        url = procs.gunicorn("wsgi:app", free_port(), env, name, options, cwd=bridge.checkout)
        servers[name] = Server(url, procs.started[-1].pid)
    return servers


def _metrics_dir(work: Path) -> str:
    return tempfile.mkdtemp(prefix="metrics-", dir=work)


def stored(url: str) -> int:
    """Messages the bridge committed: in its inbox (no worker runs here), by request kind."""
    per_request = {e.path.removeprefix("/v1/"): e.messages for e in ENDPOINTS}
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT kind, count(*) FROM inbox GROUP BY kind"))
        count = sum(per_request[kind] * n for kind, n in rows)
    engine.dispose()
    return count


def half_peak(
    servers: dict[str, Server], peaks: dict[str, dict[str, float]], seconds: float
) -> dict[str, dict[str, Any]]:
    """Each bridge's latency, open loop, at half of its own measured peak."""
    results: dict[str, dict[str, Any]] = {e.name: {} for e in ENDPOINTS}
    for endpoint in ENDPOINTS:
        for name, server in servers.items():
            if name != "noop":
                rate = peaks[endpoint.name][name] / 2
                results[endpoint.name][name] = open_loop(server.url, endpoint, rate, seconds)
                print(
                    f"  {endpoint.name:8} open loop {name:14} {_fmt(results[endpoint.name][name])}"
                )
    return results


def _fmt(r: dict[str, Any]) -> str:
    return (f"{r['achieved_rps']:.0f}/{r['target_rps']:.0f} req/s p50 {r['p50_ms']:.1f} ms "
            f"p99 {r['p99_ms']:.1f} ms errors {r['errors']}")  # fmt: skip


def summarise(runs: dict[str, dict[str, list[dict[str, Any]]]]) -> dict[str, Any]:
    """Medians per server and the median of the per-round ratios bridge/no-op (of
    requests/s, and of the no-op's CPU time per request over the bridge's)."""
    out: dict[str, Any] = {}
    for endpoint, by_server in runs.items():
        out[endpoint] = {name: _summary(rs, by_server["noop"]) for name, rs in by_server.items()}
    return out


def _summary(rounds: list[dict[str, Any]], noop: list[dict[str, Any]]) -> dict[str, Any]:
    ratios = [r["rps"] / n["rps"] for r, n in zip(rounds, noop, strict=True)]
    cpu_ratios = [n["cpu_us"] / r["cpu_us"] for r, n in zip(rounds, noop, strict=True)]
    return {
        "rps": median([r["rps"] for r in rounds]),
        "p50_ms": median([r["p50_ms"] for r in rounds]),
        "p99_ms": median([r["p99_ms"] for r in rounds]),
        "errors": sum(r["errors"] for r in rounds),
        "ratio_to_noop": median(ratios),
        "ratio_range": [min(ratios), max(ratios)],
        "cpu_us": median([r["cpu_us"] for r in rounds]),
        "cpu_ratio": median(cpu_ratios),
        "rounds": rounds,
    }


def render(figures: dict[str, Any]) -> str:
    closed, opened = figures["closed_loop"], figures["half_peak"]
    rows = [
        [endpoint, name, f"{s['rps']:.0f}", f"{s['ratio_to_noop']:.2f}",
         "{:.2f}-{:.2f}".format(*s["ratio_range"]), f"{s['cpu_us']:.0f}",
         f"{s['cpu_ratio']:.2f}", f"{s['p50_ms']:.1f}", f"{s['p99_ms']:.1f}", s["errors"]]
        for endpoint, by_server in closed.items() for name, s in by_server.items()
    ]  # fmt: skip
    half = [
        [endpoint, name, f"{r['target_rps']:.0f}", f"{r['achieved_rps']:.0f}",
         f"{r['p50_ms']:.1f}", f"{r['p99_ms']:.1f}", r["errors"]]
        for endpoint, by_server in opened.items() for name, r in by_server.items()
    ]  # fmt: skip
    p = figures["parameters"]
    return "\n\n".join([
        f"## Ingest ({p['rounds']} alternating rounds of {p['seconds']:g} s, "
        f"wrk -c{p['connections']}, WEB_CONCURRENCY default, gunicorn "
        f"`{p.get('gunicorn_args') or 'app/gunicorn_conf.py'}`; medians; "
        "ratio = median of per-round bridge/no-op; target >= 0.6)",
        table(["endpoint", "server", "req/s", "ratio", "per-round ratios", "server CPU us/req",
               "CPU ratio", "p50 ms", "p99 ms", "errors"], rows),
        f"### Open loop at half of each bridge's peak ({p['open_seconds']:g} s; "
        "target p99 < 50 ms)",
        table(["endpoint", "server", "target req/s", "achieved", "p50 ms", "p99 ms", "errors"],
              half),
        "Messages stored / answered (stored may exceed: requests in flight when wrk stops): "
        + ", ".join(
            f"{k} {v['stored']}/{v['sent']}" for k, v in figures["stored"].items()),
    ])  # fmt: skip


def parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench ingest", description=__doc__)
    # Many short rounds: the machine's noise moves the no-op by tens of percent.
    parser.add_argument("--seconds", type=float, default=4.0, help="per closed-loop run")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--open-seconds", type=float, default=10.0, help="per open-loop run")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    parser.add_argument(
        "--baseline",
        type=Path,
        help="another checkout (e.g. `git worktree add /tmp/before <commit>`), measured on "
        "each store in the same rounds, as baseline-sqlite and baseline-postgres",
    )
    parser.add_argument(
        "--baseline-gunicorn-args",
        default="",
        help='gunicorn options for the baseline alone, e.g. --baseline . and "--workers 4"',
    )
    parser.add_argument(
        "--gunicorn-args",
        default="",
        help='gunicorn options over app/gunicorn_conf.py for every server, e.g. "--threads 4"',
    )
    parser.add_argument(
        "--save-as", default="ingest", help="results file name (bench/results/<name>.json)"
    )
    return parser.parse_args(argv)


def sent(runs: dict[str, dict[str, list[dict[str, Any]]]], half: dict[str, Any], name: str) -> int:
    """Messages in requests answered (closed and open loop, warm-ups included)."""
    total = 0
    for endpoint in ENDPOINTS:
        rs = runs[endpoint.name][name] + runs[endpoint.name].get(f"{name}:warmup", [])
        total += sum(r["requests"] - r["errors"] for r in rs) * endpoint.messages
        h = half[endpoint.name][name]
        total += (h["requests"] - h["errors"]) * endpoint.messages
    return total


def measure(args: argparse.Namespace, work: Path, bridges: dict[str, Bridge]) -> dict[str, Any]:
    procs = Processes(work)
    try:
        servers = start_servers(procs, work, bridges, args.gunicorn_args.split())
        print(f"ingest: servers {', '.join(servers)}")
        runs = alternate(servers, args, work)
        closed = summarise({e: {k: rs[k] for k in servers} for e, rs in runs.items()})
        peaks = {e: {k: s["rps"] for k, s in by.items()} for e, by in closed.items()}
        half = half_peak(servers, peaks, args.open_seconds)
    finally:
        procs.stop_all()
    stored_counts = {
        name: {"stored": stored(bridge.database_url), "sent": sent(runs, half, name)}
        for name, bridge in bridges.items()
    }
    return {"closed_loop": closed, "half_peak": half, "stored": stored_counts}


def main(argv: Sequence[str] = ()) -> None:
    args = parse(argv)
    with contextlib.ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-ingest-")))
        bridges: dict[str, Bridge] = {}
        checkouts = {"bridge": ROOT} | ({"baseline": args.baseline} if args.baseline else {})
        for name, checkout in checkouts.items():
            options = args.baseline_gunicorn_args.split() if name == "baseline" else []
            sqlite_url = f"sqlite:///{work}/{name}.sqlite3"
            bridges[f"{name}-sqlite"] = Bridge(sqlite_url, checkout, options)
            pg_url = (
                None if args.no_postgres else stack.enter_context(postgres_database("drip_bench"))
            )
            if pg_url:
                bridges[f"{name}-postgres"] = Bridge(pg_url, checkout, options)
        figures = measure(args, work, bridges)
    figures["parameters"] = vars(args) | {
        "wrk_threads": 1,
        "open_loop_threads": 32,
        "baseline": str(args.baseline or ""),
    }
    save(args.save_as, figures, render(figures))
