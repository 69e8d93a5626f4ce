"""HTTP in: routes only (auth, size, parse, answer); the pipeline does the rest."""

from __future__ import annotations

from flask import Flask

from app.web import browser, drip, errors, ops, segment, tracking


def init_app(app: Flask) -> None:
    errors.init_app(app)
    for blueprint in (segment.bp, tracking.bp, browser.bp, drip.bp, ops.bp):
        app.register_blueprint(blueprint)
