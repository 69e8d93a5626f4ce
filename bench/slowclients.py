"""Slow clients: /healthz latency while 50 unauthenticated clients trickle their requests.

Each slow client opens a connection to the Procfile's web process (gunicorn, SQLite) and
sends a `POST /v1/track` one byte a second, half of them trickling the headers, half
sending the headers at once and trickling the body, with no credentials (as anyone on
the internet can: Heroku's router does not buffer request bodies). Meanwhile /healthz
is probed on a fixed schedule, each probe on a new connection with a deadline. The old
settings (`gthread`, one thread per process) and the current ones
(`app/gunicorn_conf.py`) run side by side in one run, each in its own gunicorn.
"""

from __future__ import annotations

import argparse
import http.client
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from app.simulators.server import free_port
from bench.common import BIN, Processes, bridge_env, median, percentile, save, table

# The settings before issue 10 (item 3), given on gunicorn's command line, which
# overrides the configuration file.
OLD_SETTINGS = ("--worker-class", "gthread", "--threads", "1")
BODY = b'{"userId":"u1","event":"Slow","messageId":"slow-1"}'


class SlowClients:
    """Connections that each send a request one byte every `interval` seconds.

    `kind` "headers" trickles the request line and headers; "body" sends the headers
    at once and trickles the body. No credentials: the finished request is a 401.
    """

    def __init__(self, url: str, count: int, interval: float = 1.0) -> None:
        target = urlsplit(url)
        self.address = (target.hostname or "127.0.0.1", target.port or 80)
        self.interval = interval
        self.sockets: list[socket.socket] = []
        self.pending: list[bytes] = []  # what each socket still has to send
        for i in range(count):
            head, body = _request(self.address)
            sock = socket.create_connection(self.address, timeout=10)
            if i % 2:  # "body": the headers at once, then the body byte by byte
                sock.sendall(head)
                self.pending.append(body)
            else:  # "headers": everything byte by byte
                self.pending.append(head + body)
            self.sockets.append(sock)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._trickle, name="slow-clients", daemon=True)
        self._thread.start()

    def _trickle(self) -> None:
        while not self._stop.is_set():
            for i, sock in enumerate(self.sockets):
                if len(self.pending[i]) > 1:  # the last byte waits for finish()
                    try:
                        sock.send(self.pending[i][:1])
                    except OSError:
                        continue
                    self.pending[i] = self.pending[i][1:]
            self._stop.wait(self.interval)

    def waiting(self) -> int:
        """Connections the server has neither answered nor closed."""
        count = 0
        for sock in self.sockets:
            sock.setblocking(False)
            try:
                sock.recv(1, socket.MSG_PEEK)
            except BlockingIOError:
                count += 1
            except OSError:
                pass
            finally:
                sock.setblocking(True)
        return count

    def finish(self, timeout: float = 10.0) -> list[int | str]:
        """Send what is left of every request; each one's status code (or the failure)."""
        self._stop.set()
        self._thread.join(timeout=5)
        statuses: list[int | str] = []
        for i, sock in enumerate(self.sockets):
            try:
                sock.settimeout(timeout)
                sock.sendall(self.pending[i])
                status_line = sock.makefile("rb").readline()
                statuses.append(int(status_line.split()[1]) if status_line else "closed")
            except (OSError, ValueError, IndexError) as exc:
                statuses.append(type(exc).__name__)
        return statuses

    def close(self) -> None:
        self._stop.set()
        for sock in self.sockets:
            sock.close()


def _request(address: tuple[str, int]) -> tuple[bytes, bytes]:
    head = (
        f"POST /v1/track HTTP/1.1\r\nHost: {address[0]}:{address[1]}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(BODY)}\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    return head, BODY


def probe(url: str, timeout: float) -> float | None:
    """Seconds /healthz took to answer 200 on a new connection; None past `timeout`."""
    target = urlsplit(url)
    start = time.perf_counter()
    conn = http.client.HTTPConnection(target.hostname or "", target.port, timeout=timeout)
    try:
        conn.request("GET", "/healthz")
        response = conn.getresponse()
        response.read()
        ok = response.status == 200
    except (OSError, http.client.HTTPException):
        ok = False
    finally:
        conn.close()
    elapsed = time.perf_counter() - start
    return elapsed if ok and elapsed <= timeout else None


def probes(url: str, seconds: float, every: float, timeout: float) -> list[float | None]:
    """Probes started every `every` seconds for `seconds`, each in its own thread
    (open loop: a stuck probe does not delay the next one)."""
    results: list[float | None] = []
    lock = threading.Lock()

    def one() -> None:
        latency = probe(url, timeout)
        with lock:
            results.append(latency)

    threads = []
    start = time.perf_counter()
    for i in range(int(seconds / every)):
        time.sleep(max(0.0, start + i * every - time.perf_counter()))
        threads.append(threading.Thread(target=one, daemon=True))
        threads[-1].start()
    for thread in threads:
        thread.join(timeout + 5)
    return results


def summary(results: list[float | None], timeout: float) -> dict[str, Any]:
    """p50/p99/max in ms, a probe that got no answer counted at the deadline."""
    answered = [r for r in results if r is not None]
    counted = [timeout if r is None else r for r in results]
    return {
        "probes": len(results),
        "answered": len(answered),
        "timed_out": len(results) - len(answered),
        "p50_ms": percentile(counted, 50) * 1000,
        "p99_ms": percentile(counted, 99) * 1000,
        "max_ms": max(counted) * 1000 if counted else float("nan"),
        "median_answered_ms": median(answered) * 1000,
    }


def measure(
    name: str, extra: Sequence[str], args: argparse.Namespace, procs: Processes, work: Path
) -> dict[str, Any]:
    env = bridge_env(f"sqlite:///{work}/{name}.sqlite3") | {
        "PROMETHEUS_MULTIPROC_DIR": tempfile.mkdtemp(prefix="metrics-", dir=work)
    }
    subprocess.run([str(BIN / "drip-bridge"), "db", "upgrade"], env=env, check=True,
                   capture_output=True, timeout=120)  # fmt: skip
    url = procs.gunicorn("wsgi:app", free_port(), env, name, extra)
    quiet = summary(probes(url, args.quiet_seconds, args.every, args.timeout), args.timeout)
    print(f"  {name:4} no slow clients:  {_fmt(quiet)}")
    slow = SlowClients(url, args.clients, args.interval)
    try:
        time.sleep(2 * args.interval)  # every slow client has sent its first bytes
        loaded = summary(probes(url, args.seconds, args.every, args.timeout), args.timeout)
        waiting = slow.waiting()
    finally:
        slow.close()
    print(f"  {name:4} {args.clients} slow clients: {_fmt(loaded)}; still held open {waiting}")
    return {"settings": " ".join(extra) or "app/gunicorn_conf.py", "quiet": quiet,
            "slow": loaded | {"slow_clients_still_open": waiting}}  # fmt: skip


def _fmt(s: dict[str, Any]) -> str:
    return (f"p50 {s['p50_ms']:.1f} ms p99 {s['p99_ms']:.1f} ms max {s['max_ms']:.1f} ms, "
            f"{s['timed_out']}/{s['probes']} without an answer")  # fmt: skip


def render(figures: dict[str, Any]) -> str:
    p = figures["parameters"]
    rows = []
    for name, result in figures["servers"].items():
        for phase in ("quiet", "slow"):
            s = result[phase]
            rows.append([
                name, f"`{result['settings']}`",
                "none" if phase == "quiet" else str(p["clients"]),
                f"{s['p50_ms']:.1f}", f"{s['p99_ms']:.1f}", f"{s['max_ms']:.1f}",
                f"{s['timed_out']}/{s['probes']}",
                str(s.get("slow_clients_still_open", "")),
            ])  # fmt: skip
    return "\n\n".join([
        f"## Slow clients ({p['clients']} connections trickling `POST /v1/track` one byte "
        f"every {p['interval']:g} s, no auth; /healthz probed every {p['every']:g} s for "
        f"{p['seconds']:g} s, each with a {p['timeout']:g} s deadline; WEB_CONCURRENCY "
        "default; SQLite)",
        table(["server", "settings", "slow clients", "/healthz p50 ms", "p99 ms", "max ms",
               "no answer", "slow clients still open at the end"], rows),
        "A probe without an answer is counted at the deadline, so p99 and max of the old "
        "settings are a floor, not a measure. Under gevent, gunicorn gives a request's "
        "headers `keepalive` (5 s) to arrive and then closes the connection: the clients "
        "trickling headers are gone at the end, those trickling a body are still open.",
    ])  # fmt: skip


def parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench slowclients", description=__doc__)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between bytes")
    parser.add_argument("--seconds", type=float, default=20.0, help="probing under slow clients")
    parser.add_argument("--quiet-seconds", type=float, default=5.0, help="probing without")
    parser.add_argument("--every", type=float, default=0.2, help="seconds between probes")
    parser.add_argument("--timeout", type=float, default=10.0, help="a probe's deadline")
    return parser.parse_args(argv)


def main(argv: Sequence[str] = ()) -> None:
    args = parse(argv)
    servers = {"old": OLD_SETTINGS, "new": ()}
    figures: dict[str, Any] = {"servers": {}}
    with tempfile.TemporaryDirectory(prefix="bench-slowclients-") as tmp:
        procs = Processes(Path(tmp))
        try:
            for name, extra in servers.items():
                figures["servers"][name] = measure(name, extra, args, procs, Path(tmp))
        finally:
            procs.stop_all()
    figures["parameters"] = vars(args)
    save("slowclients", figures, render(figures))
