"""Serve a WSGI app on 127.0.0.1 in a background thread, or as its own process."""

from __future__ import annotations

import argparse
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import TYPE_CHECKING

import requests
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

if TYPE_CHECKING:
    from wsgiref.types import WSGIApplication

HOST = "127.0.0.1"


class _QuietHandler(WSGIRequestHandler):
    """Werkzeug logs every request to stderr; benchmarks send tens of thousands."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return None


def _make(app: WSGIApplication, host: str, port: int) -> BaseWSGIServer:
    # threaded=True also switches the handler to HTTP/1.1, so clients keep connections alive.
    return make_server(host, port, app, threaded=True, request_handler=_QuietHandler)


class ServedApp:
    """A WSGI app listening on `url` until `close()` (or the end of a `with` block)."""

    def __init__(self, app: WSGIApplication, host: str = HOST, port: int = 0) -> None:
        self._server = _make(app, host, port)
        self.host = host
        self.port = self._server.server_port
        self.url = f"http://{host}:{self.port}"
        # A short poll makes close() quick (shutdown waits for one poll); idle cost is tiny.
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"fake-server-{self.port}",
            daemon=True,
        )
        self._thread.start()

    def close(self) -> None:
        """Stop accepting requests and free the port; safe to call twice."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(timeout=5)
        self._server.server_close()

    def __enter__(self) -> ServedApp:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def serve(app: WSGIApplication, port: int = 0) -> ServedApp:
    """Start `app` on a free port (or `port`) of 127.0.0.1 in a daemon thread."""
    return ServedApp(app, HOST, port)


def free_port() -> int:
    """A port of 127.0.0.1 free right now (for a server started in another process)."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def answers(url: str) -> bool:
    """Whether an HTTP server answers GET `url` (any status below 500)."""
    try:
        return requests.get(url, timeout=1).status_code < 500
    except requests.RequestException:
        return False


def wait_until(what: str, done: Callable[[], bool], timeout: float = 30.0) -> None:
    """Poll `done` until it holds; raise TimeoutError naming `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.1)


def stop(processes: Sequence[subprocess.Popen[bytes]], timeout: float = 20.0) -> None:
    """SIGTERM every process still running, then wait; kill what outlives `timeout`."""
    for proc in processes:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in processes:
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main(
    description: str,
    add_arguments: Callable[[argparse.ArgumentParser], None],
    build: Callable[[argparse.Namespace], WSGIApplication],
    argv: Sequence[str] | None = None,
) -> None:
    """Run a fake in the foreground: `python -m app.simulators.drip --port 8001`.

    Prints `listening on <url>` once bound, so a parent process that asked for
    port 0 can read the port from the first line of stdout.
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--host", default=HOST)
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    add_arguments(parser)
    args = parser.parse_args(argv)
    server = _make(build(args), args.host, args.port)
    print(f"listening on http://{args.host}:{server.server_port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        sys.stdout.flush()
