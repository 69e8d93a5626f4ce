"""The project built as Heroku's Python buildpack builds it, then run as its Procfile says.

From the tracked files only (a clean clone), `uv sync --locked --no-default-groups`
into a fresh environment without the dev extra (heroku-buildpack-python lib/uv.sh),
then the release command and `honcho start web worker` against a fresh PostgreSQL
database given as `postgres://`, with the fake Drip.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from app.simulators.drip import FakeDrip
from app.simulators.server import answers, free_port, wait_until
from tests.conftest import ACCOUNT_ID, DRIP_TOKEN, WRITE_KEY, postgres_database, required
from tests.processes import BIN, ROOT

pytestmark = pytest.mark.slow
DEV_ONLY = ("pytest", "hypothesis", "ruff", "mypy", "playwright", "honcho")


def find_uv() -> str:
    for candidate in (os.environ.get("UV"), shutil.which("uv"), str(ROOT / ".tools/bin/uv")):
        if candidate and Path(candidate).is_file():
            return str(Path(candidate).resolve())  # the build runs in another folder
    required("uv", "make installs it")


@pytest.fixture
def fresh_postgres() -> Iterator[str]:
    """A new, empty database, as the add-on hands it out: `postgres://...`."""
    with postgres_database("drip_bridge_slug") as database:
        yield database.set(drivername="postgres").render_as_string(hide_password=False)


def clean_clone(into: Path) -> Path:
    """The tracked files of the checkout, as `git clone` would give them."""
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            (into / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, into / name)
    return into


def build(slug: Path, python_home: Path) -> dict[str, str]:
    """Install from uv.lock as the buildpack does; the environment to run the slug in."""
    outside = ("VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT", "DRIP_", "BRIDGE_", "SEGMENT_", "PORT")
    env = {k: v for k, v in os.environ.items() if not k.startswith(outside)}
    sync = subprocess.run(
        [find_uv(), "sync", "--locked", "--no-default-groups", "--no-progress"],
        cwd=slug,
        env=env
        | {
            "UV_PROJECT_ENVIRONMENT": str(python_home),
            "UV_PYTHON_DOWNLOADS": "never",
            "UV_NO_MANAGED_PYTHON": "1",
        },
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert sync.returncode == 0, sync.stderr
    return env | {"PATH": f"{python_home / 'bin'}{os.pathsep}{env['PATH']}"}


def procfile(slug: Path) -> dict[str, str]:
    lines = (slug / "Procfile").read_text().splitlines()
    return {name.strip(): cmd.strip() for name, _, cmd in (ln.partition(":") for ln in lines)}


def running_in(folder: Path) -> list[int]:
    """Pids of the processes whose working directory is `folder`."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if Path(os.readlink(entry / "cwd")) == folder:
                    pids.append(int(entry.name))
            except OSError:
                continue  # gone, or not ours to read
    return pids


def test_built_from_the_lock_without_dev_tools_the_procfile_delivers_and_stops(
    tmp_path: Path, fake_drip: FakeDrip, fresh_postgres: str
) -> None:
    slug = clean_clone(tmp_path / "app")
    python_home = tmp_path / "python"
    env = build(slug, python_home)
    site = next(python_home.glob("lib/python3.*/site-packages"))
    assert site.parent.name == f"python{(slug / '.python-version').read_text().strip()}"
    installed = {p.name.split("-")[0].lower() for p in site.glob("*.dist-info")}
    assert {"flask", "gunicorn", "psycopg", "drip_bridge"} <= installed
    assert not installed & set(DEV_ONLY), "dev tools reached the platform build"

    env |= {
        "DATABASE_URL": fresh_postgres,
        "DRIP_ACCOUNT_ID": ACCOUNT_ID,
        "DRIP_API_TOKEN": DRIP_TOKEN,
        "DRIP_API_URL": fake_drip.url,  # type: ignore[attr-defined]
        "BRIDGE_WRITE_KEY": WRITE_KEY,
        "WEB_CONCURRENCY": "2",
    }
    processes = procfile(slug)
    release = subprocess.run(
        shlex.split(processes["release"]), cwd=slug, env=env, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert (release.returncode, release.stdout) == (0, "database schema is up to date\n")

    port = free_port()
    log = (tmp_path / "honcho.log").open("wb")
    honcho = subprocess.Popen(
        [str(BIN / "honcho"), "start", "--port", str(port), "web", "worker"],
        cwd=slug, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        web = f"http://127.0.0.1:{port}"
        wait_until("the web process", lambda: answers(f"{web}/healthz"), timeout=60)
        batch = {
            "batch": [
                {"type": "identify", "userId": "u-7", "messageId": "m-i",
                 "traits": {"email": "lin@example.com", "firstName": "Lin"}},
                {"type": "track", "userId": "u-7", "messageId": "m-t", "event": "Deployed",
                 "properties": {"platform": "heroku"}, "timestamp": "2026-11-27T10:00:00Z"},
            ]
        }  # fmt: skip
        answer = requests.post(f"{web}/v1/batch", json=batch, auth=(WRITE_KEY, ""), timeout=10)
        assert (answer.status_code, answer.json()) == (200, {"success": True})
        wait_until("both at Drip", lambda: len(fake_drip.records("event")) == 1, timeout=60)
        assert fake_drip.records("subscriber") == [
            {"email": "lin@example.com", "user_id": "u-7", "first_name": "Lin"}
        ]
        assert fake_drip.records("event") == [
            {"email": "lin@example.com", "action": "Deployed",
             "properties": {"platform": "heroku"}, "occurred_at": "2026-11-27T10:00:00Z"}
        ]  # fmt: skip

        started = running_in(slug)
        assert len(started) >= 3  # at least gunicorn's master, one of its workers, the worker
        honcho.send_signal(signal.SIGTERM)
        honcho.wait(timeout=30)
        wait_until("every process of the slug to exit", lambda: not running_in(slug), timeout=5)
    finally:
        if honcho.poll() is None:
            os.killpg(honcho.pid, signal.SIGKILL)
            honcho.wait()
        log.close()
    output = (tmp_path / "honcho.log").read_text()
    for process in ("web.1", "worker.1"):
        assert f"{process} stopped" in output, output
