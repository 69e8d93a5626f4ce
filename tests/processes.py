"""Real processes for end-to-end tests: gunicorn, `drip-bridge worker`, ..."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from app.simulators.server import answers, free_port, stop, wait_until

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


class Processes:
    """Starts commands with the bridge's environment; kills what is left at the end."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env = os.environ | env
        self.logs = logs
        self.started: list[subprocess.Popen[bytes]] = []

    def start(self, *argv: str, name: str) -> subprocess.Popen[bytes]:
        log = open(self.logs / f"{name}.log", "ab")  # noqa: SIM115 (closed with the process)
        proc = subprocess.Popen(argv, env=self.env, cwd=ROOT, stdout=log, stderr=log)
        self.started.append(proc)
        return proc

    def run(self, *argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            argv, env=self.env, cwd=ROOT, capture_output=True, text=True, timeout=60
        )

    def web(self, *extra: str) -> str:
        """Migrate the store, then the Procfile's web process on a free port; its URL."""
        upgrade = self.run(str(BIN / "drip-bridge"), "db", "upgrade")
        assert upgrade.returncode == 0, upgrade.stderr
        port = free_port()
        self.start(
            sys.executable, "-m", "app.web_process", "--bind",
            f"127.0.0.1:{port}", *extra, "wsgi:app", name=f"gunicorn-{port}",
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        wait_until("gunicorn to serve", lambda: answers(f"{url}/healthz"))
        return url

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")

    def stop_all(self) -> None:
        stop(self.started)


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Callable[[dict[str, str]], Processes]]:
    made: list[Processes] = []

    def make(env: dict[str, str]) -> Processes:
        made.append(Processes(env, tmp_path))
        return made[-1]

    yield make
    for p in made:
        p.stop_all()
