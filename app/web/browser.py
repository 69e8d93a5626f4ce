"""GET /drip.js: the device-mode plugin (Drip's tag in the page), with the server's rules."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources

from flask import Blueprint, Response, current_app

from app import __version__
from app.config import Config
from app.mapping.device import plugin_table

bp = Blueprint("browser", __name__)
# Pages load it on every view; a deploy's change reaches them within five minutes.
CACHE_SECONDS = 300


@cache
def _source() -> str:
    return resources.files("app.web").joinpath("static/drip.js").read_text(encoding="utf-8")


def plugin_script(config: Config) -> str:
    """The plugin with this bridge's account, tag, campaign and mapping rules filled in."""
    settings = {
        "account": config.drip_account_id,
        "tagUrl": config.tag_url,
        "campaignId": config.drip_campaign_id,
        "version": __version__,
        "rules": plugin_table(),
    }
    return _source().replace("__BRIDGE__", json.dumps(settings, indent=1, sort_keys=True))


@bp.get("/drip.js")
def drip_js() -> Response:
    config: Config = current_app.config["BRIDGE"]
    response = Response(plugin_script(config), mimetype="text/javascript")
    response.cache_control.public = True
    response.cache_control.max_age = CACHE_SECONDS
    return response
