"""One machine without DATABASE_URL: one store for every command, loopback unless asked."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from app.simulators.drip import FakeDrip
from app.simulators.server import answers, free_port, stop, wait_until
from tests.conftest import ACCOUNT_ID, DRIP_TOKEN, WRITE_KEY
from tests.processes import BIN, ROOT

pytestmark = pytest.mark.slow
UNSET = ("DRIP_", "BRIDGE_", "SEGMENT_", "DATABASE_URL", "DYNO", "PORT", "XDG_DATA_HOME")


class Local:
    """Commands started as a user would, from any directory, with a given HOME."""

    def __init__(self, home: Path, drip_url: str) -> None:
        self.home = home
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(UNSET)} | {
            "HOME": str(home),
            "DRIP_ACCOUNT_ID": ACCOUNT_ID,
            "DRIP_API_TOKEN": DRIP_TOKEN,
            "DRIP_API_URL": drip_url,
            "BRIDGE_WRITE_KEY": WRITE_KEY,
            "WEB_CONCURRENCY": "1",
        }
        self.started: list[subprocess.Popen[bytes]] = []

    def folder(self, name: str) -> Path:
        path = self.home / name
        path.mkdir(exist_ok=True)
        return path

    def run(self, *argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            argv, env=self.env, cwd=cwd, capture_output=True, text=True, timeout=60
        )

    def start(self, *argv: str, cwd: Path, **env: str) -> subprocess.Popen[bytes]:
        log = open(self.home / f"{len(self.started)}.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen(argv, env=self.env | env, cwd=cwd, stdout=log, stderr=log)
        self.started.append(proc)
        return proc


@pytest.fixture
def local(tmp_path: Path, fake_drip: FakeDrip) -> Iterator[Local]:
    made = Local(tmp_path, fake_drip.url)  # type: ignore[attr-defined]
    yield made
    stop(made.started)


def identify(url: str, n: int) -> None:
    body = {"userId": f"u{n}", "traits": {"email": f"p{n}@example.com"}, "messageId": f"m{n}"}
    answer = requests.post(f"{url}/v1/identify", json=body, auth=(WRITE_KEY, ""), timeout=10)
    assert answer.status_code == 200, answer.text


def test_every_command_from_any_directory_uses_one_default_store(
    local: Local, fake_drip: FakeDrip
) -> None:
    store = local.home / ".local/share/drip-bridge/drip-bridge.sqlite3"
    upgrade = local.run(str(BIN / "drip-bridge"), "db", "upgrade", cwd=local.folder("a"))
    assert upgrade.returncode == 0, upgrade.stderr
    assert store.is_file()

    # The Procfile's web line, from the checkout (where wsgi.py is).
    port = free_port()
    local.start(sys.executable, "-m", "app.web_process", "--bind",
                f"127.0.0.1:{port}", "wsgi:app", cwd=ROOT)  # fmt: skip
    web = f"http://127.0.0.1:{port}"
    wait_until("gunicorn to serve", lambda: answers(f"{web}/healthz"))
    identify(web, 1)  # 200: the tables `db upgrade` made are the ones gunicorn writes to

    local.start(str(BIN / "drip-bridge"), "worker", cwd=local.folder("b"))
    wait_until("the worker to deliver", lambda: len(fake_drip.records("subscriber")) == 1)

    serve_port = free_port()
    local.start(str(BIN / "drip-bridge"), "serve", "--no-worker", "--port", str(serve_port),
                cwd=local.folder("c"))  # fmt: skip
    served = f"http://127.0.0.1:{serve_port}"
    wait_until("serve to serve", lambda: answers(f"{served}/healthz"), timeout=60)
    identify(served, 2)
    wait_until("the worker to deliver", lambda: len(fake_drip.records("subscriber")) == 2)

    assert [r["email"] for r in fake_drip.records("subscriber")] == [
        "p1@example.com",
        "p2@example.com",
    ]
    made = sorted(p.name for p in store.parent.iterdir() if p.name.endswith(".sqlite3"))
    assert made == ["drip-bridge.sqlite3"]
    for name in ("a", "b", "c"):
        assert list(local.folder(name).iterdir()) == []  # no ./instance anywhere


def listening(port: int) -> set[str]:
    """The IPv4 addresses listening on `port` (from /proc/net/tcp)."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local_address, state = line.split()[1], line.split()[3]
        address, hex_port = local_address.split(":")
        if state == "0A" and int(hex_port, 16) == port:
            found.add(".".join(str(b) for b in reversed(bytes.fromhex(address))))
    return found


@pytest.mark.parametrize(
    ("args", "env", "address"),
    [([], {}, "127.0.0.1"),
     (["--host", "0.0.0.0"], {}, "0.0.0.0"),
     ([], {"DYNO": "web.1"}, "0.0.0.0")],
    ids=["loopback by default", "--host", "on a platform"],
)  # fmt: skip
def test_serve_listens_on_loopback_unless_asked(
    local: Local,
    args: list[str],
    env: dict[str, str],
    address: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    port = free_port()
    # A dyno needs PostgreSQL; elsewhere a SQLite file will do.
    database = (
        request.getfixturevalue("postgres_url") if "DYNO" in env else f"sqlite:///{tmp_path}/s.db"
    )
    argv = [str(BIN / "drip-bridge"), "serve", "--no-worker", "--port", str(port), *args]
    local.start(*argv, cwd=local.folder("d"), DATABASE_URL=database, **env)
    wait_until("the server to listen", lambda: bool(listening(port)), timeout=60)
    assert listening(port) == {address}
