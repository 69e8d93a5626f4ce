"""The files a platform reads: .python-version, uv.lock, app.json, Dockerfile, LICENSE."""

from __future__ import annotations

import json
import re
import subprocess
import tomllib

from tests.processes import ROOT
from tests.test_platform_build import find_uv

# SPEC section 2, less what the platform itself sets: DATABASE_URL (the
# heroku-postgresql add-on) and PORT (the router). DRIP_FORWARD_EVENTS is the
# bridge's own addition (README, "Choices where the specification is silent").
CONFIG_VARS = {
    "DRIP_ACCOUNT_ID", "DRIP_API_TOKEN", "DRIP_CAMPAIGN_ID", "DRIP_API_URL",
    "DRIP_RATE_LIMIT", "DRIP_BATCH_RATE_LIMIT", "DRIP_WEBHOOK_TOKEN", "SEGMENT_WRITE_KEY",
    "SEGMENT_API_HOST", "SEGMENT_SHARED_SECRET", "BRIDGE_WRITE_KEY", "ADMIN_PASSWORD",
    "LOG_FORMAT", "BROWSER_WRITE_KEY", "BROWSER_ORIGINS", "DRIP_TAG_URL", "DRIP_COALESCE",
    "DATA_RETENTION", "METRICS_TOKEN", "DRIP_FORWARD_EVENTS", "PUBLIC_URL",
}  # fmt: skip
GENERATED = {"BRIDGE_WRITE_KEY", "DRIP_WEBHOOK_TOKEN", "ADMIN_PASSWORD"}


def test_the_python_version_file_names_the_oldest_python_the_package_allows() -> None:
    # What the platform builds with, and the suite's first run (`make test` runs it again
    # on each newer Python, NEWER in the Makefile).
    version = (ROOT / ".python-version").read_text().strip()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["requires-python"] == f">={version}"
    newer = re.search(r"^NEWER := (.+)$", (ROOT / "Makefile").read_text(), re.M)
    assert newer is not None and newer.group(1).split() == ["3.12", "3.13"]


def test_the_lock_matches_pyproject() -> None:
    result = subprocess.run(
        [find_uv(), "lock", "--check", "--offline"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


def test_the_lock_keeps_dev_tools_out_of_the_platform_build() -> None:
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    (bridge,) = [p for p in lock["package"] if p["name"] == "drip-bridge"]
    runtime = {d["name"] for d in bridge["dependencies"]}
    dev = {d["name"] for d in bridge["optional-dependencies"]["dev"]}
    assert {"flask", "gunicorn", "psycopg", "alembic"} <= runtime
    assert {"pytest", "ruff", "mypy", "honcho"} <= dev
    assert not runtime & dev


def test_app_json_describes_the_addon_formation_and_every_config_var() -> None:
    app = json.loads((ROOT / "app.json").read_text())
    assert app["addons"] == ["heroku-postgresql"]
    assert app["formation"] == {"web": {"quantity": 1}, "worker": {"quantity": 1}}
    assert app["buildpacks"] == [{"url": "heroku/python"}]
    env = app["env"]
    assert set(env) == CONFIG_VARS
    assert all(v["description"] for v in env.values())
    assert {k for k, v in env.items() if v.get("generator") == "secret"} == GENERATED
    assert {k for k, v in env.items() if v.get("required", True)} == {
        "DRIP_ACCOUNT_ID", "DRIP_API_TOKEN", *GENERATED
    }  # fmt: skip
    assert all("value" not in v for v in env.values())  # defaults stay in the code


def test_the_dockerfile_installs_from_the_lock_and_runs_web_as_a_user() -> None:
    lines = (ROOT / "Dockerfile").read_text().splitlines()
    assert [ln for ln in lines if ln.startswith("FROM ")] == [
        "FROM python:3.11-slim AS build",
        "FROM python:3.11-slim",
    ]
    runs = [ln for ln in lines if ln.startswith("RUN uv sync")]
    assert runs and all("--locked --no-dev" in ln for ln in runs)
    users = [ln.split()[1] for ln in lines if ln.startswith("USER ")]
    assert users == ["bridge"]
    # run by test_platform_process.py against a real web process
    assert len([ln for ln in lines if ln.startswith("HEALTHCHECK ")]) == 1
    web = (ROOT / "Procfile").read_text().splitlines()[0].removeprefix("web: ").split()
    assert lines[-1] == "CMD " + json.dumps(web)


def test_the_license_is_the_mit_license_pyproject_declares() -> None:
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License\n\nCopyright (c) 2026 drip-bridge contributors\n")
    assert tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["license"] == "MIT"
    assert re.search(r"THE SOFTWARE IS PROVIDED \"AS IS\"", text)
