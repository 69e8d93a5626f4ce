"""The application factory: defaults, then the environment, then a test override."""

from __future__ import annotations

from flask import Flask

from app import commands, dashboard, dead_letters, logs, preview, store, web
from app.config import Config
from app.delivery import runner


def create_app(config: Config | None = None) -> Flask:
    """Build the bridge. `config` (tests) defaults to the environment (raises ConfigError)."""
    app = Flask(__name__)
    bridge = config or Config.from_env()
    app.config["BRIDGE"] = bridge
    # One byte over the largest body a route takes: a chunked body (no Content-Length)
    # is cut at this cap, and the route must see that it went over, not a cut body.
    app.config["MAX_CONTENT_LENGTH"] = bridge.max_body_bytes + 1
    logs.init_app(app)
    store.init_app(app)
    web.init_app(app)
    runner.init_app(app)
    commands.init_app(app)
    dashboard.init_app(app)
    preview.init_app(app)
    dead_letters.init_app(app)
    return app
