"""Configuration: checked at start, one line naming the variable, exit status 2."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from app import __version__
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
        ({"BROWSER_ORIGINS": "https://shop.example/page"},
         "BROWSER_ORIGINS must be * or a comma list of origins like https://shop.example.com "
         '(scheme and host, no path), got "https://shop.example/page"'),
        ({"BROWSER_ORIGINS": "https://a.example, shop.example"},
         "BROWSER_ORIGINS must be * or a comma list of origins like https://shop.example.com "
         '(scheme and host, no path), got "shop.example"'),
        ({"BROWSER_WRITE_KEY": "same", "BRIDGE_WRITE_KEY": "same"},
         "BROWSER_WRITE_KEY must differ from BRIDGE_WRITE_KEY (pages publish it)"),
        ({"DRIP_TAG_URL": "tag.js"}, 'DRIP_TAG_URL must be an http(s) URL, got "tag.js"'),
    ],
    ids=["letters", "too short", "no token", "not a url", "bad rate", "zero rate",
         "campaign", "port", "coalesce", "log format", "other database", "unknown event",
         "origin with a path", "origin without scheme", "browser key is the bridge key",
         "tag url"],
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


def test_browser_settings_read_like_the_readme() -> None:
    config = Config.from_env(GOOD | {"BROWSER_ORIGINS": "https://Shop.example, http://localhost:3000",
                                     "BROWSER_WRITE_KEY": "public-key"})  # fmt: skip
    assert config.browser_origins == ("https://shop.example", "http://localhost:3000")
    assert config.browser_write_key == "public-key"
    assert "public-key" not in repr(config)
    assert config.tag_url == "https://tag.getdrip.com/1234567.js"
    assert Config.from_env(GOOD | {"BROWSER_ORIGINS": "*"}).browser_origins == ("*",)
    assert Config.from_env(GOOD).browser_origins == ()  # no browser traffic
    tagged = Config.from_env(GOOD | {"DRIP_TAG_URL": "http://127.0.0.1:9/tag.js"})
    assert tagged.tag_url == "http://127.0.0.1:9/tag.js"


def run(*argv: str, **env: str) -> subprocess.CompletedProcess[str]:
    bridge = ("DRIP_", "BRIDGE_", "SEGMENT_", "DATABASE_URL", "DYNO", "PORT", "XDG_DATA_HOME")
    clean = {k: v for k, v in os.environ.items() if not k.startswith(bridge)}
    return subprocess.run(argv, env=clean | env, cwd=ROOT, capture_output=True, text=True,
                          timeout=60)  # fmt: skip


def test_the_cli_stops_with_one_line_and_status_2() -> None:
    result = run(str(BIN / "drip-bridge"), "worker", DRIP_ACCOUNT_ID="abc", DRIP_API_TOKEN="t")
    assert result.returncode == 2
    assert result.stderr == 'drip-bridge: DRIP_ACCOUNT_ID must be 7-9 digits, got "abc"\n'


def test_gunicorn_stops_with_one_line_and_status_2_before_any_worker_starts() -> None:
    result = run(*procfile("web")[:-1], "--bind", "127.0.0.1:0", "wsgi:app",
                 DRIP_ACCOUNT_ID="1234567")  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1] == "drip-bridge: DRIP_API_TOKEN is required but not set"
    assert "Booting worker" not in result.stderr


ON_A_DYNO = (
    "drip-bridge: DATABASE_URL is not set but this is a platform dyno (DYNO=web.1), whose disk "
    "is its own and wiped on restart: attach PostgreSQL with "
    "`heroku addons:create heroku-postgresql`"
)


def procfile(process: str) -> list[str]:
    """The Procfile's command for `process`, its program taken from this venv."""
    for line in (ROOT / "Procfile").read_text().splitlines():
        name, _, command = line.partition(":")
        if name.strip() == process:
            argv = shlex.split(command)
            program = sys.executable if argv[0] == "python" else str(BIN / argv[0])
            return [program, *argv[1:]]
    raise AssertionError(f"no {process} in the Procfile")


@pytest.mark.parametrize("process", ["web", "worker", "release"])
def test_on_a_dyno_without_database_url_every_process_refuses_naming_it(process: str) -> None:
    result = run(*procfile(process), DYNO="web.1", PORT="5999", **GOOD)
    assert result.returncode == 2
    if process == "web":  # gunicorn logs its own start first, then stops before any worker
        assert result.stderr.splitlines()[-1] == ON_A_DYNO
        assert "Booting worker" not in result.stderr
    else:
        assert result.stderr == ON_A_DYNO + "\n"


def test_the_procfile_runs_what_the_platform_expects() -> None:
    assert procfile("worker")[1:] == ["worker"]
    assert procfile("release")[1:] == ["db", "upgrade"]
    assert procfile("web")[1:] == ["-m", "app.web_process", "wsgi:app"]


def test_on_a_dyno_a_sqlite_database_url_is_refused_too() -> None:
    with pytest.raises(ConfigError) as error:
        Config.from_env(GOOD | {"DYNO": "worker.1", "DATABASE_URL": "sqlite:////tmp/x.sqlite3"})
    assert str(error.value) == (
        "DATABASE_URL is SQLite but this is a platform dyno (DYNO=worker.1), whose disk is its "
        "own and wiped on restart: attach PostgreSQL with `heroku addons:create heroku-postgresql`"
    )


def test_on_a_dyno_postgres_is_accepted() -> None:
    config = Config.from_env(GOOD | {"DYNO": "web.1", "DATABASE_URL": "postgres://u:p@db/app"})
    assert config.database_url == "postgresql+psycopg://u:p@db/app"


@pytest.mark.parametrize(
    ("env", "path"),
    [({"HOME": "/home/ada"}, "/home/ada/.local/share/drip-bridge/drip-bridge.sqlite3"),
     ({"HOME": "/home/ada", "XDG_DATA_HOME": "/data"}, "/data/drip-bridge/drip-bridge.sqlite3"),
     ({"HOME": "/home/ada", "XDG_DATA_HOME": "rel"},
      "/home/ada/.local/share/drip-bridge/drip-bridge.sqlite3")],
    ids=["home", "xdg", "relative xdg is ignored"],
)  # fmt: skip
def test_the_default_store_is_in_the_xdg_data_folder_whatever_the_directory(
    env: dict[str, str], path: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    config = Config.from_env(GOOD | env)
    assert config.database_url == f"sqlite:///{path}"


def test_help_and_version_need_no_configuration(tmp_path: Path) -> None:
    bare = {"HOME": str(tmp_path)}  # no DRIP_*, no DATABASE_URL
    top = run(str(BIN / "drip-bridge"), "--help", **bare)
    assert top.returncode == 0, top.stderr
    assert top.stderr == ""
    commands = [line.split()[0] for line in top.stdout.split("Commands:\n")[1].splitlines()]
    assert commands == ["check", "db", "dead-letters", "demo", "preview", "serve", "worker"]
    assert "--env-file" not in top.stdout and "--app" not in top.stdout
    for argv in (["serve"], ["worker"], ["check"], ["db", "upgrade"], ["dead-letters", "list"]):
        sub = run(str(BIN / "drip-bridge"), *argv, "--help", **bare)
        assert sub.returncode == 0, sub.stderr
        assert sub.stdout.startswith(f"Usage: drip-bridge {' '.join(argv)} [OPTIONS]")
        assert sub.stderr == ""
    version = run(str(BIN / "drip-bridge"), "--version", **bare)
    assert (version.returncode, version.stdout) == (0, f"drip-bridge {__version__}\n")
    assert not (tmp_path / ".local").exists()  # describing commands created no store


def test_flasks_env_file_option_is_gone() -> None:
    result = run(str(BIN / "drip-bridge"), "-e", ".env", "worker", **GOOD)
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1] == "Error: No such option '-e'."


def test_on_a_platform_every_process_logs_json_unless_told_otherwise() -> None:
    platform = GOOD | {"DYNO": "worker.1", "DATABASE_URL": "postgres://u@db:5432/d"}
    assert Config.from_env(platform).log_format == "json"
    assert Config.from_env(platform | {"LOG_FORMAT": "text"}).log_format == "text"
    assert Config.from_env(GOOD).log_format == "text"  # a terminal
