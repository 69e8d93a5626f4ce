"""gunicorn's own settings from the environment (issue 10, item 9): a bad WEB_CONCURRENCY
stops the real web process with one line naming it and exit status 2.

gunicorn reads WEB_CONCURRENCY with int() when it is imported, before any configuration
file: "two" can only be caught before gunicorn, by `python -m app.web_process` (the web process
of the Procfile); "0", which gunicorn accepts, is caught by app/gunicorn_conf.py too.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.web_process import cpu_quota, usable_cpus
from tests.processes import BIN, ROOT

GOOD = {"DRIP_ACCOUNT_ID": "1234567", "DRIP_API_TOKEN": "t", "BRIDGE_WRITE_KEY": "k"}


WEB = [sys.executable, "-m", "app.web_process"]
GUNICORN = [str(BIN / "gunicorn"), "-c", "python:app.gunicorn_conf"]


def run(argv: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k != "WEB_CONCURRENCY"}
    return subprocess.run([*argv, "--bind", "127.0.0.1:0", "wsgi:app"], env=clean | GOOD | env,
                          cwd=ROOT, capture_output=True, text=True, timeout=60)  # fmt: skip


def one_line(value: str) -> str:
    return f'drip-bridge: WEB_CONCURRENCY must be a whole number of at least 1, got "{value}"\n'


@pytest.mark.parametrize("value", ["two", "2.5", "0", "-1"])
def test_a_bad_web_concurrency_stops_the_web_process_with_one_line_and_status_2(
    value: str,
) -> None:
    result = run(WEB, WEB_CONCURRENCY=value)
    assert (result.returncode, result.stderr) == (2, one_line(value))


def test_a_blank_web_concurrency_is_unset_and_the_web_process_goes_on_to_check_the_rest() -> None:
    result = run(WEB, WEB_CONCURRENCY=" ", DRIP_API_TOKEN="")
    assert (result.returncode, result.stderr.splitlines()[-1]) == (
        2, "drip-bridge: DRIP_API_TOKEN is required but not set")  # fmt: skip


def test_gunicorn_itself_stops_with_one_line_for_0_workers() -> None:
    result = run(GUNICORN, WEB_CONCURRENCY="0")
    assert (result.returncode, result.stderr) == (2, one_line("0"))


@pytest.mark.parametrize(
    ("value", "last_line"),
    [("two", "ValueError: invalid literal for int() with base 10: 'two'"),
     ("-1", "Error: Value must be positive: -1")],
)  # fmt: skip
def test_gunicorn_alone_fails_on_its_own_before_reading_our_configuration(
    value: str, last_line: str
) -> None:
    """Why the web process is `python -m app.web_process`: gunicorn checks these on import."""
    result = run(GUNICORN, WEB_CONCURRENCY=value)
    assert (result.returncode, result.stderr.splitlines()[-1]) == (1, last_line)


@pytest.mark.parametrize(
    ("cpu_max", "cpus"),
    [("max 100000\n", None), ("200000 100000\n", 2), ("150000 100000\n", 2),
     ("10000 100000\n", 1), ("", None), ("lots 100000\n", None)],
    ids=["no quota", "two", "one and a half rounds up", "a tenth is one", "empty", "garbled"],
)  # fmt: skip
def test_the_cgroup_cpu_quota_is_read_from_cpu_max(
    tmp_path: Path, cpu_max: str, cpus: int | None
) -> None:
    path = tmp_path / "cpu.max"
    path.write_text(cpu_max)
    assert cpu_quota(path) == cpus


def test_without_web_concurrency_one_process_per_cpu_the_container_may_use(
    tmp_path: Path,
) -> None:
    """A `--cpus 1` container on a many-core host starts one, not one per host core."""
    path = tmp_path / "cpu.max"
    path.write_text("100000 100000\n")
    assert usable_cpus(path) == 1
    path.write_text("max 100000\n")
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    assert usable_cpus(path) == (affinity or os.cpu_count())
    assert usable_cpus(tmp_path / "absent") == usable_cpus(path)
