"""`drip-bridge check` against the fake Drip and a real database."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory
from flask import Flask

from app.commands import MIGRATIONS
from app.config import Config
from app.factory import create_app
from app.simulators.drip import FakeDrip
from app.simulators.server import free_port
from app.store import upgrade
from tests.conftest import (
    DRIP_TOKEN,
    SEGMENT_KEY,
    SHARED_SECRET,
    WEBHOOK_TOKEN,
    WRITE_KEY,
    make_config,
)

PASTE = (
    "\n"
    "Segment Webhooks destination settings:\n"
    "  Webhook URL:   {base}/segment\n"
    "  Shared Secret: the value of SEGMENT_SHARED_SECRET\n"
    "Segment libraries: host={base}, write key = BRIDGE_WRITE_KEY\n"
    "\n"
    "Drip webhook URL (Settings > Webhooks): {base}/drip/webhook?token=<DRIP_WEBHOOK_TOKEN>\n"
)
HEAD = ScriptDirectory(str(MIGRATIONS)).get_current_head()  # the newest migration
HINT = "\n(pass --base-url https://your-bridge.example.com to print the real URLs)\n"


def where(app: Flask) -> tuple[str, str]:
    """The store's kind and its URL as check prints it (password hidden)."""
    engine: sa.Engine = app.extensions["engine"]
    kind = "SQLite" if engine.dialect.name == "sqlite" else "PostgreSQL"
    return kind, engine.url.render_as_string(hide_password=True)


def test_check_tests_database_token_and_campaign_and_prints_what_to_paste(
    app: Flask, fake_drip: FakeDrip
) -> None:
    app.config["BRIDGE"] = app.config["BRIDGE"].with_overrides({"drip_campaign_id": "1111"})
    result = app.test_cli_runner().invoke(args=["check"])
    assert result.exit_code == 0, result.output
    kind, url = where(app)
    assert result.output == (
        f"configuration: ok (Drip account 9999999, store {kind})\n"
        f"database: ok ({url}, schema {HEAD})\n"
        "Drip credentials: ok (token of owner@example.com)\n"
        'Drip campaign 1111: ok ("Campaign 1111", active)\n'
        + PASTE.format(base="https://<your-bridge-host>")
        + HINT
    )
    assert [c.path for c in fake_drip.calls()] == ["/v2/user", "/v2/9999999/campaigns/1111"]
    for secret in (DRIP_TOKEN, SHARED_SECRET, WEBHOOK_TOKEN, WRITE_KEY, SEGMENT_KEY):
        assert secret not in result.output


def test_check_prints_the_real_urls_for_base_url(app: Flask) -> None:
    result = app.test_cli_runner().invoke(args=["check", "--base-url", "https://b.example.com/"])
    assert result.exit_code == 0, result.output
    assert result.output.endswith(PASTE.format(base="https://b.example.com"))


def test_check_refuses_a_base_url_that_is_not_http(app: Flask) -> None:
    result = app.test_cli_runner().invoke(args=["check", "--base-url", "b.example.com"])
    assert result.exit_code == 2
    assert "Invalid value for '--base-url': must be an http(s) URL, got \"b.example.com\"" in (
        result.output
    )


def test_check_fails_with_one_line_when_drip_refuses_the_token(
    app: Flask, fake_drip: FakeDrip
) -> None:
    fake_drip.revoke_token()
    result = app.test_cli_runner().invoke(args=["check"])
    assert result.exit_code == 1
    assert "Drip credentials: FAILED: " in result.output
    assert result.output.splitlines()[-1].startswith(
        "Error: Drip refused the check (GET /v2/user): "
    )


def test_check_fails_when_the_campaign_does_not_exist(app: Flask, fake_drip: FakeDrip) -> None:
    app.config["BRIDGE"] = app.config["BRIDGE"].with_overrides({"drip_campaign_id": "4242"})
    result = app.test_cli_runner().invoke(args=["check"])
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert (
        "Drip campaign 4242 (DRIP_CAMPAIGN_ID): FAILED: no such campaign in Drip account 9999999"
        in lines
    )
    assert lines[-1] == "Error: DRIP_CAMPAIGN_ID 4242: no such campaign in Drip account 9999999"


def test_check_warns_for_each_missing_side(app: Flask) -> None:
    app.config["BRIDGE"] = app.config["BRIDGE"].with_overrides(
        {
            "bridge_write_key": None,
            "segment_shared_secret": None,
            "segment_write_key": None,
            "drip_webhook_token": None,
        }
    )
    result = app.test_cli_runner().invoke(args=["check"])
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.output.splitlines() if line.startswith("warning: ")]
    assert warnings == [
        "warning: neither BRIDGE_WRITE_KEY nor SEGMENT_SHARED_SECRET is set: "
        "/segment and /v1 are closed (503)",
        "warning: SEGMENT_WRITE_KEY is not set: Drip's events are not forwarded to Segment "
        "(webhooks are stored and wait)",
        "warning: DRIP_WEBHOOK_TOKEN is not set: Drip webhooks are refused (503)",
    ]
    assert "Drip webhooks: set DRIP_WEBHOOK_TOKEN to receive them" in result.output


def test_check_warns_that_v1_is_closed_with_only_the_shared_secret(app: Flask) -> None:
    app.config["BRIDGE"] = app.config["BRIDGE"].with_overrides({"bridge_write_key": None})
    result = app.test_cli_runner().invoke(args=["check"])
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.output.splitlines() if line.startswith("warning: ")]
    assert warnings == [
        "warning: BRIDGE_WRITE_KEY is not set: /v1 (Segment libraries) is closed (503)"
    ]


@pytest.fixture
def unmigrated(tmp_path: object, fake_drip: FakeDrip) -> Iterator[Flask]:
    app = create_app(make_config(f"sqlite:///{tmp_path}/new.sqlite3", fake_drip.url))  # type: ignore[attr-defined]
    yield app
    app.extensions["engine"].dispose()


def test_check_warns_when_the_schema_is_missing_then_is_quiet_once_upgraded(
    unmigrated: Flask,
) -> None:
    result = unmigrated.test_cli_runner().invoke(args=["check"])
    assert result.exit_code == 0, result.output
    assert "database: ok (" in result.output and ", schema none)\n" in result.output
    assert (
        f"warning: the schema does not exist yet (newest {HEAD}): run `drip-bridge db upgrade`\n"
        in result.output
    )
    upgrade(unmigrated.extensions["engine"])
    again = unmigrated.test_cli_runner().invoke(args=["check"])
    assert f", schema {HEAD})\n" in again.output
    assert "warning" not in again.output


def test_check_fails_with_one_line_when_the_database_is_unreachable(fake_drip: FakeDrip) -> None:
    port = free_port()  # nothing listens there
    url = f"postgresql+psycopg://bridge:hunter2@127.0.0.1:{port}/bridge"
    app = create_app(make_config(url, fake_drip.url))  # type: ignore[attr-defined]
    try:
        result = app.test_cli_runner().invoke(args=["check"])
    finally:
        app.extensions["engine"].dispose()
    assert result.exit_code == 1
    shown = f"postgresql+psycopg://bridge:***@127.0.0.1:{port}/bridge"
    last = result.output.splitlines()[-1]
    assert last.startswith(f"Error: database unreachable ({shown}): "), last
    assert "connection" in last.lower() or "connect" in last.lower()
    assert f"database: FAILED: database unreachable ({shown}): " in result.output
    assert "hunter2" not in result.output
    assert "Drip credentials: ok" in result.output  # the other checks still ran


def test_check_prints_the_browser_settings_when_pages_may_send(config: Config) -> None:
    pages = {"browser_write_key": "page-key", "browser_origins": ("https://shop.example",)}
    app = create_app(config.with_overrides(pages))
    result = app.test_cli_runner().invoke(args=["check"])
    assert result.exit_code == 0, result.output
    assert (
        "analytics.js on https://shop.example: write key = BROWSER_WRITE_KEY, "
        'integrations["Segment.io"].apiHost = "<your-bridge-host>/v1"\n'
        '  device mode: <script src="https://<your-bridge-host>/drip.js"></script> and '
        "analytics.register(DripBridge)\n"
    ) in result.output
    assert "page-key" not in result.output
    app.extensions["engine"].dispose()
