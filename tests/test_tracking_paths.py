"""Every path Segment's libraries post to, CORS for pages, and what BROWSER_WRITE_KEY opens."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app import __version__
from app.config import Config
from app.factory import create_app
from app.mapping.device import plugin_table
from app.store.tables import inbox
from tests.conftest import ACCOUNT_ID, WRITE_KEY, running
from tests.helpers import IDENTIFY, TRACK, answer, basic, bearer, dumps, rows

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

PAGE_KEY = "browser-test-write-key"
SHOP = "https://shop.example"
TEXT = {"Content-Type": "text/plain"}  # as analytics.js posts
PAGE = TEXT | basic(PAGE_KEY) | {"Origin": SHOP}
SERVER = {"Content-Type": "application/json"} | basic(WRITE_KEY)


@pytest.fixture
def browser_app(config: Config) -> Iterator[Flask]:
    with running(config.with_overrides({"browser_origins": (SHOP,),
                                        "browser_write_key": PAGE_KEY})) as app:  # fmt: skip
        yield app


@pytest.fixture
def web(browser_app: Flask) -> FlaskClient:
    return browser_app.test_client()


def post(web: FlaskClient, path: str, body: Any, headers: dict[str, str]) -> Any:
    return web.post(path, data=dumps(body), headers=headers)


def stored(app: Flask) -> list[tuple[str, bool, Any]]:
    return [(r.kind, r.browser, json.loads(r.body)) for r in rows(app, inbox)]


@pytest.mark.parametrize(
    ("path", "kind"),
    [("/v1/batch", "batch"), ("/v1/batch/", "batch"), ("/v1/import", "batch"),
     ("/v1/import/", "batch"), ("/v1/b", "batch"), ("/v1/b/", "batch")],
)  # fmt: skip
def test_import_and_trailing_slashes_answer_as_v1_batch_does(
    web: FlaskClient, browser_app: Flask, path: str, kind: str
) -> None:
    response = post(web, path, {"batch": [IDENTIFY, TRACK]}, SERVER)
    assert (response.status_code, response.json) == (200, {"success": True})
    assert stored(browser_app) == [(kind, False, {"batch": [IDENTIFY, TRACK]})]


@pytest.mark.parametrize(
    ("path", "kind"),
    [("/v1/i", "identify"), ("/v1/t", "track"), ("/v1/p", "page"), ("/v1/s", "screen"),
     ("/v1/g", "group"), ("/v1/a", "alias"), ("/v1/t/", "track"), ("/v1/identify/", "identify")],
)  # fmt: skip
def test_analytics_js_short_paths_are_the_calls_they_stand_for(
    web: FlaskClient, browser_app: Flask, path: str, kind: str
) -> None:
    response = post(web, path, {"userId": "u1", "event": "E"}, PAGE if "/v1/identify" not in path
                    else SERVER)  # fmt: skip
    assert (response.status_code, response.json) == (200, {"success": True})
    ((stored_kind, _, _),) = stored(browser_app)
    assert stored_kind == kind


def test_analytics_js_metrics_are_answered_and_not_kept(
    web: FlaskClient, browser_app: Flask
) -> None:
    response = post(web, "/v1/m", {"series": [{"type": "Counter", "metric": "x"}]},
                    TEXT | {"Origin": SHOP})  # fmt: skip
    assert (response.status_code, response.json) == (200, {"success": True})
    assert response.headers["Access-Control-Allow-Origin"] == SHOP
    assert stored(browser_app) == []


def test_the_browser_key_is_kept_marked_and_the_bridge_key_is_not(
    web: FlaskClient, browser_app: Flask
) -> None:
    post(web, "/v1/t", TRACK, PAGE)
    post(web, "/v1/t", TRACK, SERVER)
    post(web, "/v1/t", TRACK | {"writeKey": PAGE_KEY}, TEXT)  # the key in the body
    assert [(kind, browser) for kind, browser, _ in stored(browser_app)] == [
        ("track", True),
        ("track", False),
        ("track", True),
    ]


@pytest.mark.parametrize("path", ["/v1/batch", "/v1/import", "/v1/track", "/v1/identify/"])
def test_the_browser_key_never_opens_the_server_paths(
    web: FlaskClient, browser_app: Flask, path: str
) -> None:
    response = post(web, path, {"batch": [TRACK]} | TRACK, PAGE)
    assert response.status_code == 401
    error = answer(response)["error"]
    assert error["code"] == "browser_key"
    assert error["message"].startswith("BROWSER_WRITE_KEY authorises only analytics.js's paths")
    assert response.headers["Access-Control-Allow-Origin"] == SHOP  # the page can read why
    assert stored(browser_app) == []


@pytest.mark.parametrize("auth", [bearer(PAGE_KEY), basic(PAGE_KEY)], ids=["bearer", "basic"])
def test_the_browser_key_never_opens_the_webhooks_endpoint(
    web: FlaskClient, auth: dict[str, str]
) -> None:
    response = post(web, "/segment", IDENTIFY, {"Content-Type": "application/json"} | auth)
    assert response.status_code == 401
    assert answer(response)["error"]["code"] == "unauthorized"


def test_a_preflight_from_an_allowed_page_names_what_analytics_js_sends(web: FlaskClient) -> None:
    response = web.options("/v1/t", headers={
        "Origin": SHOP, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type,x-retry-count"})  # fmt: skip
    assert response.status_code == 204
    assert {k: v for k, v in response.headers.items() if k != "Content-Length"} == {
        "Access-Control-Allow-Origin": SHOP,
        "Access-Control-Allow-Methods": "POST",
        "Access-Control-Allow-Headers": "authorization, content-type, x-retry-count",
        "Access-Control-Max-Age": "7200",
        "Vary": "Origin",
    }


@pytest.mark.parametrize("method", ["OPTIONS", "POST"])
def test_a_page_on_another_origin_is_refused_and_nothing_of_it_is_stored(
    web: FlaskClient, browser_app: Flask, method: str
) -> None:
    headers = PAGE | {"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
    response = web.open("/v1/t", method=method, data=dumps(TRACK), headers=headers)
    assert response.status_code == 403
    assert answer(response) == {"error": {
        "code": "origin_not_allowed",
        "message": "Requests from pages on https://evil.example are refused: "
                   "that origin is not in BROWSER_ORIGINS.",
        "details": {"origin": "https://evil.example"}}}  # fmt: skip
    assert "Access-Control-Allow-Origin" not in response.headers
    assert stored(browser_app) == []


def test_every_answer_to_an_allowed_page_carries_its_origin_errors_included(
    web: FlaskClient,
) -> None:
    answers = [
        post(web, "/v1/t", TRACK, PAGE),
        web.post("/v1/t", data=b"{not json", headers=PAGE),
        post(web, "/v1/t", TRACK, TEXT | basic("wrong") | {"Origin": SHOP}),
        post(web, "/v1/nope", TRACK, PAGE),
        web.get("/v1/t", headers={"Origin": SHOP}),
        post(web, "/v1/t/deeper", TRACK, PAGE),
    ]
    assert [(r.status_code, r.headers.get("Access-Control-Allow-Origin")) for r in answers] == [
        (200, SHOP), (400, SHOP), (401, SHOP), (404, SHOP), (405, SHOP), (404, SHOP)]  # fmt: skip
    assert (
        "Access-Control-Allow-Origin" not in web.get("/healthz", headers={"Origin": SHOP}).headers
    )


def test_without_browser_origins_no_page_gets_in(client: FlaskClient, app: Flask) -> None:
    response = post(client, "/v1/t", TRACK, SERVER | {"Origin": SHOP})
    assert response.status_code == 403
    assert answer(response)["error"]["message"] == (
        f"Requests from pages on {SHOP} are refused: BROWSER_ORIGINS is not set, "
        "so the bridge takes no browser traffic."
    )
    served = post(client, "/v1/t", TRACK, SERVER)  # servers send no Origin
    assert served.status_code == 200
    assert "Vary" not in served.headers
    assert "Access-Control-Allow-Origin" not in served.headers


def test_with_any_origin_allowed_the_answer_says_any(config: Config) -> None:
    with running(config.with_overrides({"browser_origins": ("*",)})) as app:
        response = post(app.test_client(), "/v1/t", TRACK, SERVER | {"Origin": "http://a.example"})
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "Vary" not in response.headers


def test_drip_js_is_the_plugin_with_this_bridges_account_tag_campaign_and_rules(
    config: Config,
) -> None:
    app = create_app(config.with_overrides({"drip_campaign_id": "555"}))
    response = app.test_client().get("/drip.js")
    assert response.status_code == 200
    assert response.mimetype == "text/javascript"
    assert response.headers["Cache-Control"] == "public, max-age=300"
    script = response.get_data(as_text=True)
    assert "__BRIDGE__" not in script
    start = script.rindex("})(") + 3
    settings = json.loads(script[start : script.rindex(");")])
    assert settings == {
        "account": ACCOUNT_ID,
        "tagUrl": f"https://tag.getdrip.com/{ACCOUNT_ID}.js",
        "campaignId": "555",
        "version": __version__,
        "rules": plugin_table(),
    }
    app.extensions["engine"].dispose()
