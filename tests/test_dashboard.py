"""The dashboard at /admin, in a real browser (Debian's Chromium driven by Playwright)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from playwright.sync_api import Browser, Page

from app.config import Config
from app.delivery.budget import dispose_budgets
from app.delivery.runner import create_worker
from app.factory import create_app
from app.simulators.drip import FakeDrip
from app.simulators.server import serve
from app.store import upgrade
from tests.conftest import DRIP_TOKEN, SHARED_SECRET, WEBHOOK_TOKEN, WRITE_KEY
from tests.helpers import IDENTIFY, INVALID_EMAIL, TRACK, answer, bearer, dumps, rows

PASSWORD = "dashboard-test-password"


@pytest.fixture
def admin_app(config: Config) -> Iterator[Flask]:
    app = create_app(config.with_overrides({"admin_password": PASSWORD}))
    upgrade(app.extensions["engine"])
    yield app
    dispose_budgets(app)
    app.extensions["engine"].dispose()


@pytest.fixture
def admin_url(admin_app: Flask) -> Iterator[str]:
    with serve(admin_app) as served:
        yield served.url


@pytest.fixture
def page(browser: Browser, admin_url: str) -> Iterator[Page]:
    context = browser.new_context(http_credentials={"username": "admin", "password": PASSWORD})
    page = context.new_page()
    page.goto(f"{admin_url}/admin")
    yield page
    context.close()


def a_dead_letter_and_a_skip(app: Flask, fake_drip: FakeDrip) -> None:
    fake_drip.fail_next(1, status=422, body=INVALID_EMAIL)
    headers = {"Content-Type": "application/json"} | bearer(WRITE_KEY)
    lonely = TRACK | {"userId": "stranger", "messageId": "m-lonely"}
    app.test_client().post("/segment", data=dumps([IDENTIFY, lonely]), headers=headers)
    create_worker(app).step()


def test_the_page_shows_dead_letters_skips_budget_and_setup_without_secrets(
    admin_app: Flask, admin_url: str, browser: Browser, fake_drip: FakeDrip
) -> None:
    a_dead_letter_and_a_skip(admin_app, fake_drip)
    context = browser.new_context(http_credentials={"username": "admin", "password": PASSWORD})
    page = context.new_page()
    page.goto(f"{admin_url}/admin")
    assert "email_error Email is invalid (email)" in page.inner_text("#dead-1")
    assert "ada@example.com" in page.inner_text("#dead-1")
    assert "missing_email" in page.inner_text("#skipped + table")
    assert page.inner_text("#budget-individual b") == "3599"
    assert page.inner_text("#received-segment b") == "2"
    assert page.inner_text("#inbox b") == "0"
    page.click("#dead-1 summary")
    assert '"traits"' in page.inner_text("#dead-1 details")  # the original message
    assert set(page.locator("td.secret").all_inner_texts()) == {"set"}
    html = page.content()
    for secret in (PASSWORD, DRIP_TOKEN, WRITE_KEY, SHARED_SECRET, WEBHOOK_TOKEN):
        assert secret not in html
    context.close()


def test_replay_puts_a_dead_letter_back_in_line(
    admin_app: Flask, page: Page, fake_drip: FakeDrip
) -> None:
    a_dead_letter_and_a_skip(admin_app, fake_drip)
    page.reload()
    page.click("#dead-1 >> text=Replay")
    assert page.inner_text("[role=status]") == "replayed dead letter 1"
    assert page.locator("#dead-1").count() == 0
    assert rows(admin_app)[0].state == "pending"


def test_discard_drops_a_dead_letter_but_keeps_it_on_record(
    admin_app: Flask, page: Page, fake_drip: FakeDrip
) -> None:
    a_dead_letter_and_a_skip(admin_app, fake_drip)
    page.reload()
    page.click("#dead-1 >> text=Discard")
    assert page.inner_text("[role=status]") == "discarded dead letter 1"
    assert rows(admin_app)[0].state == "dropped"


def test_the_page_lists_deletions_pending_then_done(
    admin_app: Flask, page: Page, fake_drip: FakeDrip
) -> None:
    client = admin_app.test_client()
    headers = {"Content-Type": "application/json"} | bearer(WRITE_KEY)
    worker = create_worker(admin_app)
    client.post("/segment", data=dumps(IDENTIFY), headers=headers)
    worker.step()
    for n, user_id in enumerate(("nobody", "u1")):
        body = {"type": "delete", "userId": user_id, "messageId": f"del-{n}"}
        client.post("/segment", data=dumps(body), headers=headers)
    page.reload()
    assert page.inner_text("#deletion-1").split("\t")[1:] == [
        "del-1",
        "u1",
        "1",
        "pending (1 to delete)",
    ]
    assert page.inner_text("#deletion-2").split("\t")[1:] == ["del-0", "nobody", "0", "done"]
    worker.step()
    assert fake_drip.records("delete") == [{"email": "ada@example.com"}]
    page.reload()
    assert page.inner_text("#deletion-1").split("\t")[1:] == ["del-1", "u1", "1", "done"]
    assert "ada@example.com" not in page.content()


def test_the_dashboard_wants_the_admin_password(admin_url: str) -> None:
    assert requests.get(f"{admin_url}/admin", timeout=5).status_code == 401
    wrong = requests.get(f"{admin_url}/admin", auth=("admin", "nope"), timeout=5)
    assert wrong.status_code == 401
    assert wrong.headers["WWW-Authenticate"].startswith('Basic realm="drip-bridge"')


def test_a_form_posted_from_another_site_is_refused(admin_url: str) -> None:
    response = requests.post(f"{admin_url}/admin/dead-letters/1/replay", auth=("admin", PASSWORD),
                             headers={"Origin": "http://evil.example"}, timeout=5)  # fmt: skip
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "cross_origin"


def test_without_admin_password_there_is_no_dashboard(client: FlaskClient) -> None:
    response = client.get("/admin")
    assert response.status_code == 404
    assert "set ADMIN_PASSWORD" in answer(response)["error"]["message"]
