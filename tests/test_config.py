"""Configuration: checked at start, one line naming the variable, exit status 2."""

from __future__ import annotations

import os
import subprocess

import pytest

from app.config import Config, ConfigError, Rate, parse_rate
from tests.processes import BIN, ROOT

GOOD = {"DRIP_ACCOUNT_ID": "1234567", "DRIP_API_TOKEN": "secret-token"}


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DRIP_ACCOUNT_ID": "abc"}, 'DRIP_ACCOUNT_ID must be 7-9 digits, got "abc"'),
        ({"DRIP_ACCOUNT_ID": "123456"}, 'DRIP_ACCOUNT_ID must be 7-9 digits, got "123456"'),
        ({"DRIP_API_TOKEN": ""}, "DRIP_API_TOKEN is required but not set"),
        ({"DRIP_API_URL": "getdrip.com"}, 'DRIP_API_URL must be an http(s) URL, got "getdrip.com"'),
        ({"DRIP_RATE_LIMIT": "lots"},
         'DRIP_RATE_LIMIT must look like "3600/hour" or "100/10s" (a positive count), got "lots"'),
        ({"DRIP_BATCH_RATE_LIMIT": "0/hour"},
         'DRIP_BATCH_RATE_LIMIT must look like "3600/hour" or "100/10s" (a positive count), '
         'got "0/hour"'),
        ({"DRIP_CAMPAIGN_ID": "x1"},
         'DRIP_CAMPAIGN_ID must be a number (a Drip campaign id), got "x1"'),
        ({"PORT": "http"}, 'PORT must be a number from 1 to 65535, got "http"'),
        ({"DRIP_COALESCE": "maybe"}, 'DRIP_COALESCE must be one of on, off, got "maybe"'),
        ({"LOG_FORMAT": "xml"}, 'LOG_FORMAT must be one of json, text, got "xml"'),
        ({"DATABASE_URL": "mysql://u:pw@h/db"},
         'DATABASE_URL must start with sqlite:/// or postgres(ql)://, got "mysql://u:***@h/db"'),
        ({"DRIP_FORWARD_EVENTS": "opened_email,sent_fax"},
         "DRIP_FORWARD_EVENTS names unknown Drip events: subscriber.sent_fax "
         "(use names like opened_email, or all)"),
    ],
    ids=["letters", "too short", "no token", "not a url", "bad rate", "zero rate",
         "campaign", "port", "coalesce", "log format", "other database", "unknown event"],
)  # fmt: skip
def test_a_bad_setting_names_the_variable_and_what_is_wrong(
    env: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError) as error:
        Config.from_env(GOOD | env)
    assert str(error.value) == message


@pytest.mark.parametrize(
    ("text", "rate"),
    [("3600/hour", Rate(3600, 3600)), ("50/hour", Rate(50, 3600)), ("100/10s", Rate(100, 10)),
     ("5/second", Rate(5, 1)), ("7/minute", Rate(7, 60)), ("1/day", Rate(1, 86400))],
)  # fmt: skip
def test_rates_read_like_the_spec(text: str, rate: Rate) -> None:
    assert parse_rate("DRIP_RATE_LIMIT", text) == rate


def test_merging_is_on_unless_drip_coalesce_is_off() -> None:
    assert Config.from_env(GOOD).drip_coalesce is True
    assert Config.from_env(GOOD | {"DRIP_COALESCE": "off"}).drip_coalesce is False


def test_heroku_postgres_urls_are_accepted_and_secrets_stay_out_of_repr() -> None:
    config = Config.from_env(GOOD | {"DATABASE_URL": "postgres://u:pw@db:5432/app",
                                     "BRIDGE_WRITE_KEY": "wk-secret"})  # fmt: skip
    assert config.database_url == "postgresql+psycopg://u:pw@db:5432/app"
    assert "secret" not in repr(config)


def run(*argv: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DRIP_", "BRIDGE_"))}
    return subprocess.run(argv, env=clean | env, cwd=ROOT, capture_output=True, text=True,
                          timeout=60)  # fmt: skip


def test_the_cli_stops_with_one_line_and_status_2() -> None:
    result = run(str(BIN / "drip-bridge"), "worker", DRIP_ACCOUNT_ID="abc", DRIP_API_TOKEN="t")
    assert result.returncode == 2
    assert result.stderr == 'drip-bridge: DRIP_ACCOUNT_ID must be 7-9 digits, got "abc"\n'


def test_gunicorn_stops_with_one_line_and_status_2_before_any_worker_starts() -> None:
    result = run(str(BIN / "gunicorn"), "-c", "python:app.gunicorn_conf", "--bind",
                 "127.0.0.1:0", "wsgi:app", DRIP_ACCOUNT_ID="1234567")  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1] == "drip-bridge: DRIP_API_TOKEN is required but not set"
    assert "Booting worker" not in result.stderr
