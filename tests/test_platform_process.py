"""The web process as a platform runs it (issue 19): it stops in time, also while its
workers boot, removes the metrics folder it made, and answers the image's HEALTHCHECK.

A platform stops a process with SIGTERM, then SIGKILL after its grace (Heroku 30 s,
`docker stop` 10 s); a deploy or a restart may come while workers are still booting.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa

from app.simulators.drip import FakeDrip
from app.simulators.server import answers, free_port, wait_until
from app.store import create_engine, upgrade
from tests.processes import ROOT

pytestmark = pytest.mark.slow
GOOD = {"DRIP_ACCOUNT_ID": "1234567", "DRIP_API_TOKEN": "t", "BRIDGE_WRITE_KEY": "k"}


def start_web(tmp_path: Path, **env: str) -> tuple[subprocess.Popen[bytes], str, Path]:
    """The Procfile's web process on a free port, with TMPDIR in `tmp_path`: (process, URL, log)."""
    port = free_port()
    log = tmp_path / "web.log"
    clean = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.web_process", "--bind", f"127.0.0.1:{port}", "wsgi:app"],
        env=clean | GOOD | {"DATABASE_URL": f"sqlite:///{tmp_path}/s.db", "TMPDIR": str(tmp_path),
                            "WEB_CONCURRENCY": "2"} | env,
        cwd=ROOT, stdout=log.open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    return proc, f"http://127.0.0.1:{port}", log


def stop_time(proc: subprocess.Popen[bytes]) -> float:
    """SIGTERM `proc`; seconds until it exits (killed after 60 s)."""
    began = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    return time.monotonic() - began


def test_serve_stops_claiming_at_the_sigterm_while_a_slow_client_keeps_a_connection(
    tmp_path: Path,
) -> None:
    """The delivery thread used to be told to stop only once the open connections were
    served: it started a Drip call every 2 s until the master killed it mid-call, and
    that row went out again when its lease ended."""
    fake = FakeDrip(token="t", account_id=GOOD["DRIP_ACCOUNT_ID"], latency=2.0)
    database = f"sqlite:///{tmp_path}/s.db"
    engine = create_engine(database)
    upgrade(engine)
    with fake.serve():
        proc, url, log = start_web(tmp_path, BRIDGE_DELIVERY_IN_WEB="1", WEB_CONCURRENCY="1",
                                   DRIP_API_URL=fake.url, DRIP_COALESCE="off")  # fmt: skip
        wait_until("gunicorn to serve", lambda: answers(f"{url}/healthz"), timeout=60)
        tracks = [{"type": "track", "userId": f"u{n}", "event": "Signed Up", "messageId": f"m{n}",
                   "properties": {"email": f"p{n}@example.com"}} for n in range(20)]  # fmt: skip
        headers = {"Authorization": f"Bearer {GOOD['BRIDGE_WRITE_KEY']}"}
        requests.post(f"{url}/segment", json=tracks, headers=headers, timeout=10).raise_for_status()
        wait_until("the first call to Drip", lambda: bool(fake.calls()))
        with socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1]))) as slow:
            slow.sendall(b"POST /segment HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n[")
            time.sleep(1.0)  # read by now: the server waits for the rest of its body
            signalled = time.time()
            stop_time(proc)
        started = [call.at - signalled for call in fake.calls() if call.at > signalled]
    assert started == [], log.read_text()
    with engine.connect() as conn:  # the call in flight settled, nothing left leased
        leased = conn.execute(sa.text("SELECT count(*) FROM outbox WHERE state = 'pending' "
                                      "AND available_at > :now"), {"now": time.time()})  # fmt: skip
        assert leased.scalar_one() == 0
    engine.dispose()


def metrics_folders(tmp_path: Path) -> list[Path]:
    return sorted(tmp_path.glob("drip-bridge-metrics-*"))


def test_a_sigterm_while_the_workers_boot_stops_the_server_within_seconds(
    tmp_path: Path,
) -> None:
    """Signalled as soon as both workers are forked (still patching and importing):
    gunicorn used to lose the signal there and wait out graceful_timeout (about 21 s)."""
    proc, _, log = start_web(tmp_path)
    wait_until("both workers to fork", lambda: log.read_text().count("Booting worker") == 2)
    assert stop_time(proc) < 10, log.read_text()
    assert log.read_text().count("Worker exiting") == 2  # each stopped itself, none was killed
    assert proc.returncode == 0


def test_a_sigterm_once_the_workers_serve_stops_the_server_within_seconds(
    tmp_path: Path,
) -> None:
    proc, url, log = start_web(tmp_path)
    wait_until("gunicorn to serve", lambda: answers(f"{url}/healthz"), timeout=60)
    assert stop_time(proc) < 10, log.read_text()
    assert proc.returncode == 0


def test_the_metrics_folder_the_server_made_is_removed_when_it_stops(tmp_path: Path) -> None:
    proc, url, log = start_web(tmp_path)
    wait_until("gunicorn to serve", lambda: answers(f"{url}/healthz"), timeout=60)
    assert len(metrics_folders(tmp_path)) == 1  # in use while it serves
    stop_time(proc)
    assert metrics_folders(tmp_path) == [], log.read_text()


def test_a_metrics_folder_given_by_the_user_is_kept(tmp_path: Path) -> None:
    given = tmp_path / "metrics"
    given.mkdir()
    proc, url, log = start_web(tmp_path, PROMETHEUS_MULTIPROC_DIR=str(given))
    wait_until("gunicorn to serve", lambda: answers(f"{url}/healthz"), timeout=60)
    stop_time(proc)
    assert given.is_dir() and metrics_folders(tmp_path) == [], log.read_text()


def test_a_server_that_refuses_its_configuration_leaves_no_metrics_folder(tmp_path: Path) -> None:
    proc, _, log = start_web(tmp_path, DRIP_API_TOKEN="")
    assert proc.wait(timeout=60) == 2, log.read_text()
    assert metrics_folders(tmp_path) == []


def healthcheck() -> list[str]:
    """The Dockerfile's HEALTHCHECK command (this machine cannot build the image)."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", "")
    (line,) = [ln for ln in text.splitlines() if ln.startswith("HEALTHCHECK ")]
    argv: list[str] = json.loads(line.split(" CMD ", 1)[1])
    return [sys.executable, *argv[1:]] if argv[0] == "python" else argv


def test_the_images_healthcheck_passes_while_the_web_process_serves(tmp_path: Path) -> None:
    proc, url, log = start_web(tmp_path)
    wait_until("gunicorn to serve", lambda: answers(f"{url}/healthz"), timeout=60)
    port = url.rsplit(":", 1)[1]
    check = subprocess.run(healthcheck(), env=os.environ | {"PORT": port}, timeout=10)
    assert check.returncode == 0, log.read_text()
    stop_time(proc)
    check = subprocess.run(healthcheck(), env=os.environ | {"PORT": port},
                           capture_output=True, timeout=10)  # fmt: skip
    assert check.returncode != 0
