"""The no-op baseline: reads the JSON body and answers as Segment does, storing nothing.

Served with the bridge's own settings: `python -m app.web_process bench.noop:app`.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, request

app = Flask(__name__)


@app.post("/v1/<kind>")
def tracking_api(kind: str) -> dict[str, Any]:
    request.get_json(force=True)
    return {"success": True}


@app.get("/healthz")
def healthz() -> dict[str, Any]:
    return {"ok": True}
