"""A site on another origin than the bridge: its page loads Segment's real analytics-next
(from npm, `tests/browser/package.json`) with the bridge as API host.

The site also plays Segment's CDN for analytics-next (the source settings and the
library's lazy bundles) and serves a stub of Drip's tag that records what it is given.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask import Flask, Response, abort, send_from_directory

NODE_MODULES = Path(__file__).parent / "browser" / "node_modules"
BUNDLES = NODE_MODULES / "@segment" / "analytics-next" / "dist" / "umd"

# Drip's tag, played by a stub: it records the account and every `_dcq` call, as
# JSON (what would leave for Drip), in `window.dripStub`.
STUB_TAG = """
window.dripStub = {src: document.currentScript.src, account: window._dcs.account, calls: []};
function record(call) { window.dripStub.calls.push(JSON.parse(JSON.stringify(call))); }
window._dcq.forEach(record);
window._dcq = {push: record};
"""

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>shop</title>
<script>
  window.failures = [];
  window.analytics = [];
  window.analytics._writeKey = {write_key};
  window.analytics._cdn = location.origin;
  window.analytics._loadOptions = {load_options};
</script>
{plugin}
<script src="/analytics-next/bundles/standalone.js"></script>
<script>
  window.ready = new Promise(function (resolve) {
    (function wait() {
      if (window.analytics.initialized) {
        window.analytics.on('error', function (e) { window.failures.push(String(e.code)); });
        resolve(window.analytics);
      } else {
        setTimeout(wait, 20);
      }
    })();
  });
</script>
</head><body>shop</body></html>
"""


@dataclass
class Site:
    """What the page does: the key it sends with, where the bridge is, how it delivers."""

    write_key: str
    bridge: str = ""  # http://127.0.0.1:<port>, set once the bridge is up
    batching: bool = False
    plugin: bool = False
    settings_asked: list[str] = field(default_factory=list)

    def load_options(self) -> dict[str, Any]:
        segment: dict[str, Any] = {
            "apiHost": self.bridge.removeprefix("http://") + "/v1",
            "protocol": "http",
        }
        if self.batching:
            segment["deliveryStrategy"] = {
                "strategy": "batching",
                "config": {"size": 2, "timeout": 200},
            }
        return {"integrations": {"Segment.io": segment}}

    def settings(self) -> dict[str, Any]:
        """A source's settings as Segment's CDN serves them (metrics to the bridge's /v1/m)."""
        host = self.bridge.removeprefix("http://") + "/v1"
        return {
            "integrations": {"Segment.io": {"apiKey": self.write_key, "apiHost": host}},
            "plan": {"track": {"__default": {"enabled": True}}},
            "metrics": {"sampleRate": 1, "host": host, "protocol": "http", "flushTimer": 100},
        }


def site_app(site: Site) -> Flask:
    app = Flask(__name__)

    @app.get("/")
    def page() -> Response:
        plugin = f'<script src="{site.bridge}/drip.js"></script>' if site.plugin else ""
        html = (
            PAGE.replace("{write_key}", json.dumps(site.write_key))
            .replace("{load_options}", json.dumps(site.load_options()))
            .replace("{plugin}", plugin)
        )
        return Response(html, mimetype="text/html")

    @app.get("/v1/projects/<key>/settings")
    def settings(key: str) -> Any:
        site.settings_asked.append(key)
        return site.settings()

    @app.get("/analytics-next/bundles/<path:name>")
    def bundle(name: str) -> Response:
        if not (BUNDLES / name).is_file():
            abort(404)
        return send_from_directory(BUNDLES, name, mimetype="text/javascript")

    @app.get("/drip-tag-stub.js")
    def stub_tag() -> Response:
        return Response(STUB_TAG, mimetype="text/javascript")

    @app.get("/favicon.ico")
    def favicon() -> Response:
        return Response(status=204)

    return app
