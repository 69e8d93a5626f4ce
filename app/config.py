"""Configuration: read once from the environment, checked at start.

Every reader raises `ConfigError` naming the variable and what is wrong, so a bad
deployment stops with one line (exit status 2) instead of failing later.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

PERIODS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
ADD_POSTGRES = "heroku addons:create heroku-postgresql"


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


@dataclass(frozen=True)
class Rate:
    """A budget of `count` calls per `period` seconds."""

    count: int
    period: float

    def __str__(self) -> str:
        return f"{self.count}/{self.period:g}s"


@dataclass(frozen=True)
class Config:
    drip_account_id: str
    drip_api_token: str = field(repr=False)
    drip_api_url: str = "https://api.getdrip.com"
    drip_campaign_id: str | None = None
    drip_rate_limit: Rate = Rate(3600, 3600)
    drip_batch_rate_limit: Rate = Rate(50, 3600)
    drip_webhook_token: str | None = field(default=None, repr=False)
    drip_forward_events: frozenset[str] | None = None  # None: all but custom events
    drip_coalesce: bool = True  # merge a person's subscriber updates that wait for budget
    segment_write_key: str | None = field(default=None, repr=False)
    segment_api_host: str = "https://api.segment.io"
    segment_shared_secret: str | None = field(default=None, repr=False)
    bridge_write_key: str | None = field(default=None, repr=False)
    # The public key analytics.js pages send with: browser paths only, restricted.
    browser_write_key: str | None = field(default=None, repr=False)
    # Page origins allowed by CORS; ("*",) for any; empty: no browser traffic.
    browser_origins: tuple[str, ...] = ()
    drip_tag_url: str | None = None  # None: Drip's tag for the account (`tag_url`)
    database_url: str = ""
    admin_password: str | None = field(default=None, repr=False)
    metrics_token: str | None = field(default=None, repr=False)
    data_retention: float = 30 * 86400.0  # seconds delivered rows, ids, skips, people are kept
    public_url: str | None = None  # where people reach the bridge (the dashboard's origin)
    port: int = 8000
    log_format: str = "text"
    max_body_bytes: int = 512 * 1024

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Config:
        """Build and check the configuration from `env` (default: `os.environ`)."""
        env = os.environ if env is None else env

        def get(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        return cls(
            drip_account_id=_account_id(get("DRIP_ACCOUNT_ID")),
            drip_api_token=_required("DRIP_API_TOKEN", get("DRIP_API_TOKEN")),
            drip_api_url=_url("DRIP_API_URL", get("DRIP_API_URL") or cls.drip_api_url),
            drip_campaign_id=_digits("DRIP_CAMPAIGN_ID", get("DRIP_CAMPAIGN_ID")),
            drip_rate_limit=parse_rate("DRIP_RATE_LIMIT", get("DRIP_RATE_LIMIT") or "3600/hour"),
            drip_batch_rate_limit=parse_rate(
                "DRIP_BATCH_RATE_LIMIT", get("DRIP_BATCH_RATE_LIMIT") or "50/hour"
            ),
            drip_webhook_token=get("DRIP_WEBHOOK_TOKEN"),
            drip_forward_events=_events(get("DRIP_FORWARD_EVENTS")),
            drip_coalesce=_choice("DRIP_COALESCE", get("DRIP_COALESCE"), ("on", "off"), "on")
            == "on",
            segment_write_key=get("SEGMENT_WRITE_KEY"),
            segment_api_host=_url(
                "SEGMENT_API_HOST", get("SEGMENT_API_HOST") or cls.segment_api_host
            ),
            segment_shared_secret=get("SEGMENT_SHARED_SECRET"),
            bridge_write_key=get("BRIDGE_WRITE_KEY"),
            browser_write_key=_browser_key(get("BROWSER_WRITE_KEY"), get("BRIDGE_WRITE_KEY")),
            browser_origins=_origins(get("BROWSER_ORIGINS")),
            drip_tag_url=_optional_url("DRIP_TAG_URL", get("DRIP_TAG_URL")),
            database_url=_database_url(get("DATABASE_URL"), env),
            admin_password=get("ADMIN_PASSWORD"),
            metrics_token=get("METRICS_TOKEN"),
            public_url=_optional_url("PUBLIC_URL", get("PUBLIC_URL")),
            port=_port(get("PORT")),
            data_retention=_duration("DATA_RETENTION", get("DATA_RETENTION") or "30d"),
            log_format=_choice(
                "LOG_FORMAT", get("LOG_FORMAT"), ("json", "text"), _default_log(env)
            ),
        )

    @property
    def store_name(self) -> str:
        """The kind of store, for people: SQLite or PostgreSQL."""
        return "SQLite" if self.database_url.startswith("sqlite") else "PostgreSQL"

    @property
    def tag_url(self) -> str:
        """Drip's JavaScript tag that /drip.js loads."""
        from app.drip_api import tag_url

        return self.drip_tag_url or tag_url(self.drip_account_id)

    def with_overrides(self, overrides: Mapping[str, Any]) -> Config:
        return replace(self, **overrides)


def _required(name: str, value: str | None) -> str:
    if value is None:
        raise ConfigError(f"{name} is required but not set")
    return value


def _account_id(value: str | None) -> str:
    value = _required("DRIP_ACCOUNT_ID", value)
    if not re.fullmatch(r"\d{7,9}", value):
        raise ConfigError(f'DRIP_ACCOUNT_ID must be 7-9 digits, got "{value}"')
    return value


def _digits(name: str, value: str | None) -> str | None:
    if value is not None and not value.isdigit():
        raise ConfigError(f'{name} must be a number (a Drip campaign id), got "{value}"')
    return value


def _events(value: str | None) -> frozenset[str] | None:
    """DRIP_FORWARD_EVENTS: `all`, or Drip event names (`subscriber.` optional)."""
    from app.drip_api import WEBHOOK_EVENTS

    if value is None:
        return None
    if value == "all":
        return frozenset(WEBHOOK_EVENTS)
    names = {n.strip() for n in value.split(",") if n.strip()}
    events = {n if n.startswith("subscriber.") else f"subscriber.{n}" for n in names}
    unknown = sorted(events - set(WEBHOOK_EVENTS))
    if unknown:
        raise ConfigError(
            f"DRIP_FORWARD_EVENTS names unknown Drip events: {', '.join(unknown)} "
            "(use names like opened_email, or all)"
        )
    return frozenset(events)


def _url(name: str, value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f'{name} must be an http(s) URL, got "{value}"')
    return value.rstrip("/")


def _optional_url(name: str, value: str | None) -> str | None:
    return None if value is None else _url(name, value)


DURATION_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}


def _duration(name: str, value: str) -> float:
    """`<n>d`, `<n>h`, `<n>m` or `<n>s`, in seconds."""
    match = re.fullmatch(r"(\d+)([dhms])", value)
    if not match or int(match[1]) == 0:
        raise ConfigError(f'{name} must look like "30d", "12h", "90m" or "45s", got "{value}"')
    return float(int(match[1]) * DURATION_UNITS[match[2]])


def _browser_key(value: str | None, bridge_key: str | None) -> str | None:
    """BROWSER_WRITE_KEY sits in every page's source: it must not be the bridge's key."""
    if value is not None and value == bridge_key:
        raise ConfigError("BROWSER_WRITE_KEY must differ from BRIDGE_WRITE_KEY (pages publish it)")
    return value


def _origins(value: str | None) -> tuple[str, ...]:
    """BROWSER_ORIGINS: `*`, or a comma list of origins (`https://shop.example.com`)."""
    if value is None:
        return ()
    if value == "*":
        return ("*",)
    origins = []
    for item in (o.strip() for o in value.split(",")):
        parts = urlsplit(item)
        exact = f"{parts.scheme}://{parts.netloc}" if parts.netloc else ""
        if parts.scheme not in ("http", "https") or item.rstrip("/") != exact:
            raise ConfigError(
                "BROWSER_ORIGINS must be * or a comma list of origins like "
                f'https://shop.example.com (scheme and host, no path), got "{item}"'
            )
        origins.append(exact.lower())
    return tuple(origins)


def parse_rate(name: str, value: str) -> Rate:
    """Parse `<count>/<period>`: period is second|minute|hour|day or `<n>s`."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(second|minute|hour|day|\d+s)\s*", value)
    if not match or int(match[1]) == 0:
        raise ConfigError(
            f'{name} must look like "3600/hour" or "100/10s" (a positive count), got "{value}"'
        )
    unit = match[2]
    period = PERIODS[unit] if unit in PERIODS else int(unit[:-1])
    if period == 0:
        raise ConfigError(f'{name} period must be at least 1s, got "{value}"')
    return Rate(int(match[1]), float(period))


def default_sqlite_path(env: Mapping[str, str]) -> Path:
    """The one default store: `$XDG_DATA_HOME/drip-bridge/drip-bridge.sqlite3`.

    XDG_DATA_HOME defaults to `~/.local/share`. The same file for every command,
    whatever the current directory and however the package was installed.
    """
    data_home = env.get("XDG_DATA_HOME", "").strip()
    if not data_home or not Path(data_home).is_absolute():  # XDG: relative paths are invalid
        home = env.get("HOME", "").strip()
        data_home = str(Path(home or Path.home()) / ".local" / "share")
    return Path(data_home) / "drip-bridge" / "drip-bridge.sqlite3"


def _database_url(value: str | None, env: Mapping[str, str]) -> str:
    dyno = env.get("DYNO", "").strip()
    if dyno and (value is None or value.startswith("sqlite")):
        # Each dyno has its own disk, wiped on restart: release would migrate a file
        # that web and worker never see.
        what = "is not set" if value is None else "is SQLite"
        raise ConfigError(
            f"DATABASE_URL {what} but this is a platform dyno (DYNO={dyno}), whose disk is "
            f"its own and wiped on restart: attach PostgreSQL with `{ADD_POSTGRES}`"
        )
    if value is None:
        return f"sqlite:///{default_sqlite_path(env)}"
    # Heroku still hands out postgres://, which SQLAlchemy 2 no longer accepts.
    for prefix in ("postgres://", "postgresql://"):
        if value.startswith(prefix):
            return "postgresql+psycopg://" + value[len(prefix) :]
    if value.startswith(("sqlite:", "postgresql+psycopg:")):
        return value
    raise ConfigError(
        f'DATABASE_URL must start with sqlite:/// or postgres(ql)://, got "{_redact(value)}"'
    )


def _redact(url: str) -> str:
    """Hide the password of a database URL."""
    return re.sub(r"://([^:/@]*):[^@]*@", r"://\1:***@", url)


def _port(value: str | None) -> int:
    if value is None:
        return 8000
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise ConfigError(f'PORT must be a number from 1 to 65535, got "{value}"')
    return int(value)


def _choice(name: str, value: str | None, choices: tuple[str, ...], default: str) -> str:
    if value is None:
        return default
    if value not in choices:
        raise ConfigError(f'{name} must be one of {", ".join(choices)}, got "{value}"')
    return value


def _default_log(env: Mapping[str, str]) -> str:
    """JSON under gunicorn and on a platform (every process of a dyno alike), else text."""
    under_gunicorn = "gunicorn" in os.environ.get("SERVER_SOFTWARE", "")
    return "json" if under_gunicorn or env.get("DYNO") else "text"
