"""Shared helpers: processes, ports, throwaway PostgreSQL databases, result files."""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from app.simulators.postgres import fresh_database
from app.simulators.server import answers, stop, wait_until

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
RESULTS = Path(__file__).resolve().parent / "results"
POSTGRES_ADMIN_URL = os.environ.get(
    "BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
WRITE_KEY = "bench-write-key"
ACCOUNT_ID = "9999999"
DRIP_TOKEN = "x"


def bridge_env(database_url: str, drip_url: str = "http://127.0.0.1:9") -> dict[str, str]:
    """The bridge's environment as in tests/test_end_to_end.py (WEB_CONCURRENCY default)."""
    env = {k: v for k, v in os.environ.items() if k not in ("WEB_CONCURRENCY", "DATABASE_URL")}
    return env | {
        "DRIP_ACCOUNT_ID": ACCOUNT_ID,
        "DRIP_API_TOKEN": DRIP_TOKEN,
        "DRIP_API_URL": drip_url,
        "BRIDGE_WRITE_KEY": WRITE_KEY,
        "DATABASE_URL": database_url,
        "DRIP_RATE_LIMIT": "1000000/hour",
    }


class Processes:
    """Processes started by a benchmark; `stop_all` ends each of them by its own pid."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.started: list[subprocess.Popen[bytes]] = []

    def start(
        self, argv: Sequence[str], env: dict[str, str], name: str, cwd: Path = ROOT
    ) -> subprocess.Popen[bytes]:
        log = open(self.logs / f"{name}.log", "ab")  # noqa: SIM115 (closed with the process)
        proc = subprocess.Popen(list(argv), env=env, cwd=cwd, stdout=log, stderr=log)
        self.started.append(proc)
        return proc

    def gunicorn(
        self,
        app: str,
        port: int,
        env: dict[str, str],
        name: str,
        extra: Sequence[str] = (),
        cwd: Path = ROOT,
    ) -> str:
        """`python -m app.web_process <app>` (the Procfile's web, gunicorn) on `port`, with
        the code of the checkout `cwd`; `extra` options override the configuration file's."""
        argv = [sys.executable, "-m", "app.web_process", "--bind",
                f"127.0.0.1:{port}", *extra, app]  # fmt: skip
        proc = self.start(argv, env, name, cwd)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_until(
                f"{name} to serve", lambda: proc.poll() is None and answers(f"{url}/healthz")
            )
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}; its log ends:\n{self.tail(name)}") from exc
        return url

    def tail(self, name: str, lines: int = 20) -> str:
        text = (self.logs / f"{name}.log").read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def stop_all(self) -> None:
        stop(self.started)


@contextlib.contextmanager
def postgres_database(prefix: str) -> Iterator[str | None]:
    """A fresh database on the local PostgreSQL (None when unreachable), dropped afterwards."""
    with contextlib.ExitStack() as stack:
        try:
            database = stack.enter_context(fresh_database(POSTGRES_ADMIN_URL, prefix))
        except sa.exc.OperationalError as exc:
            print(f"PostgreSQL unreachable, skipped: {type(exc).__name__}", file=sys.stderr)
            yield None
            return
        yield database.render_as_string(hide_password=False)


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) spent so far by `pid` and its child processes."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    ticks = 0
    for each in [pid, *map(int, children)]:
        fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def vm_hwm_mb(pid: int) -> float:
    """Peak resident set size of `pid` (VmHWM) in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for pid {pid}")


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def percentile(values: Sequence[float], pct: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * pct / 100))]


def save(name: str, figures: dict[str, Any], summary: str) -> None:
    """bench/results/<name>.json and .md, and the summary on stdout."""
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(figures, indent=2) + "\n")
    (RESULTS / f"{name}.md").write_text(summary + "\n")
    print(summary)


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def drip_records(body: Any) -> int:
    """The records one call to Drip carried (a batch call's, or one)."""
    if "batches" in body:
        return sum(len(next(iter(b.values()))) for b in body["batches"])
    return len(next(iter(body.values())))
