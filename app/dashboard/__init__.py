"""The dashboard at /admin: the page a marketing engineer keeps open.

Served by the app itself (one server-rendered page that refreshes itself, no build
step), behind HTTP Basic with user `admin` and ADMIN_PASSWORD, with two actions on
dead letters. Secrets are shown only as "set" or "not set".
"""

from __future__ import annotations

import time
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    Response,
    current_app,
    redirect,
    render_template,
    request,
    url_for,
)
from werkzeug.wrappers import Response as BaseResponse

from app import store
from app.config import Config
from app.dashboard import report
from app.delivery.budget import shared_budgets
from app.delivery.runner import delivery_trouble
from app.store import dead_letters
from app.web.auth import secret_matches
from app.web.errors import ApiError

bp = Blueprint("dashboard", __name__, url_prefix="/admin", template_folder="templates")
ACTIONS = {"replay": dead_letters.replay, "discard": dead_letters.discard}
MAX_ID = 2**63 - 1  # outbox ids are 64-bit


def _config() -> Config:
    cfg: Config = current_app.config["BRIDGE"]
    return cfg


@bp.before_request
def _admin_only() -> Response | None:
    password = _config().admin_password
    if not password:
        raise ApiError(404, "not_found", "The dashboard is off: set ADMIN_PASSWORD to turn it on.")
    auth = request.authorization
    if auth is None or auth.username != "admin" or not secret_matches(auth.password, password):
        return Response(
            "Sign in as admin with ADMIN_PASSWORD.\n",
            401,
            {"WWW-Authenticate": 'Basic realm="drip-bridge", charset="UTF-8"'},
        )
    return None


@bp.get("")
def page() -> str:
    with store.reading(store.engine()) as conn:
        facts = report.gather(conn, time.time())
    left = {budget.name: budget.remaining() for budget in shared_budgets(current_app)}
    return render_template(
        "admin.html",
        facts=facts,
        budgets=left,
        setup=report.setup(_config(), request.host_url.rstrip("/")),
        done=request.args.get("done"),
        trouble=delivery_trouble(current_app),
    )


@bp.post("/dead-letters/<int:row_id>/<action>")
def dead_letter_action(row_id: int, action: str) -> BaseResponse:
    """Replay or discard one dead letter, then back to the page."""
    if action not in ACTIONS:
        raise ApiError(404, "not_found", "Dead letters can be replayed or discarded.")
    _same_origin()
    changed = []
    if row_id <= MAX_ID:
        with store.writing(store.engine()) as conn:
            changed = ACTIONS[action](conn, [row_id], None, time.time())
    if not changed:
        raise ApiError(
            404, "not_found", f"No dead letter {row_id}: it was replayed or discarded already."
        )
    done = f"{action}ed dead letter {row_id}"
    return redirect(url_for(".page", done=done, _anchor="dead-letters"), 303)


@bp.after_request
def _not_framed(response: BaseResponse) -> BaseResponse:
    """No other site may show the dashboard in a frame (and trick a click on it)."""
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Content-Security-Policy"] = "frame-ancestors 'none'"
    return response


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc


def _same_origin() -> None:
    """Refuse a form posted from another site (the browser still sends our Basic auth).

    The whole origin (scheme, host, port) must be the bridge's own: PUBLIC_URL when
    set, else the URL this request reached.
    """
    sent = request.headers.get("Origin") or request.headers.get("Referer") or ""
    ours = _config().public_url or request.host_url
    if _origin(sent) != _origin(ours):
        raise ApiError(403, "cross_origin", "Use the buttons of the dashboard itself.")


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
