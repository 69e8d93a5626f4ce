"""`drip-bridge check` against the fake Drip."""

from __future__ import annotations

from flask import Flask

from app.config import Config
from app.factory import create_app
from app.simulators.drip import FakeDrip
from tests.conftest import DRIP_TOKEN, SHARED_SECRET, WEBHOOK_TOKEN


def test_check_tests_the_token_and_prints_what_to_paste(app: Flask, fake_drip: FakeDrip) -> None:
    result = app.test_cli_runner().invoke(args=["check"])
    assert result.exit_code == 0, result.output
    store = "PostgreSQL" if "postgresql" in app.config["BRIDGE"].database_url else "SQLite"
    assert result.output == (
        f"configuration: ok (Drip account 9999999, store {store})\n"
        "Drip credentials: ok (token of owner@example.com)\n"
        "\n"
        "Segment Webhooks destination settings:\n"
        "  Webhook URL:   https://<your-bridge-host>/segment\n"
        "  Shared Secret: the value of SEGMENT_SHARED_SECRET\n"
        "Segment libraries: host=https://<your-bridge-host>, write key = BRIDGE_WRITE_KEY\n"
        "\n"
        "Drip webhook URL (Settings > Webhooks): "
        "https://<your-bridge-host>/drip/webhook?token=<DRIP_WEBHOOK_TOKEN>\n"
    )
    assert [c.path for c in fake_drip.calls()] == ["/v2/user"]
    for secret in (DRIP_TOKEN, SHARED_SECRET, WEBHOOK_TOKEN):
        assert secret not in result.output


def test_check_fails_with_one_line_when_drip_refuses_the_token(
    app: Flask, fake_drip: FakeDrip
) -> None:
    fake_drip.revoke_token()
    result = app.test_cli_runner().invoke(args=["check"])
    assert result.exit_code == 1
    assert result.output.splitlines()[-1].startswith(
        "Error: Drip refused the check (GET /v2/user): "
    )


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
