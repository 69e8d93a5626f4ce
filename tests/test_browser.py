"""analytics.js in a real browser: Debian's Chromium, driven by Playwright, loads Segment's
own analytics-next 1.84 from npm on a page of another origin, with the bridge as API host.

Cloud mode: what the page sends reaches the fake Drip through CORS, normal and
batching. A page on an origin not in BROWSER_ORIGINS gets nothing through.
Device mode: with /drip.js registered, Drip's tag (a stub) gets the `_dcq` calls and
the bridge does not send the same events to Drip again.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from playwright.sync_api import Browser, Page

from app.config import Config
from app.delivery.budget import dispose_budgets
from app.delivery.runner import create_worker
from app.factory import create_app
from app.mapping.device import plugin_table
from app.mapping.to_drip import map_message
from app.mapping.types import Options, Outcome
from app.pipeline.messages import tracking_api_messages
from app.simulators.drip import FakeDrip
from app.simulators.server import ServedApp, serve, wait_until
from app.store import upgrade
from app.store.tables import inbox
from tests.browser_pages import BUNDLES, Site, site_app
from tests.conftest import ACCOUNT_ID, drain, required
from tests.helpers import metrics, received, rows, skipped

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

BROWSER_KEY = "browser-test-write-key"
CAMPAIGN = "1111"  # a campaign the fake Drip knows
ZONE = "Europe/Amsterdam"
# The page's clock is a day behind the bridge's, and stands still: every time the
# device stamps (timestamp, sentAt) is this one.
DEVICE_TIME = (datetime.now(UTC) - timedelta(days=1)).replace(microsecond=0)
TRAITS = {"email": "ada@example.com", "firstName": "Ada", "plan": "pro",
          "Favourite Colour": "green"}  # fmt: skip
IDENTIFY_AND_TRACK = f"""async () => {{
  const analytics = await window.ready;
  await analytics.identify('u-browser-1', {json.dumps(TRAITS)});
  await analytics.track('Upgraded', {{revenue: 19.99, plan: 'pro'}});
}}"""


@dataclass
class Visit:
    """A page open in Chromium, and what its console and network said."""

    page: Page
    errors: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def failures(self) -> Any:
        """What analytics.js reported as failed deliveries (its `error` events)."""
        return self.page.evaluate("window.failures")


@pytest.fixture(scope="module", autouse=True)
def analytics_next() -> None:
    if not (BUNDLES / "standalone.js").is_file():
        required("analytics-next from npm", "`make test` runs npm ci in tests/browser")


@pytest.fixture
def site() -> Iterator[tuple[Site, ServedApp]]:
    shop = Site(write_key=BROWSER_KEY)
    with serve(site_app(shop)) as served:
        yield shop, served


@pytest.fixture
def bridge(config: Config, site: tuple[Site, ServedApp]) -> Iterator[Flask]:
    shop, served = site
    app = create_app(
        config.with_overrides(
            {
                "browser_origins": (served.url,),
                "browser_write_key": BROWSER_KEY,
                "drip_tag_url": f"{served.url}/drip-tag-stub.js",
                "drip_campaign_id": CAMPAIGN,
            }
        )
    )
    upgrade(app.extensions["engine"])
    with serve(app) as bridge_served:
        shop.bridge = app.config["SERVED_AT"] = bridge_served.url
        yield app
    dispose_budgets(app)
    app.extensions["engine"].dispose()


@contextmanager
def visit(browser: Browser, url: str) -> Iterator[Visit]:
    """Open `url` with the device's clock a day behind, once analytics.js is ready."""
    context = browser.new_context(timezone_id=ZONE)
    page = context.new_page()
    seen = Visit(page)
    page.on("console", lambda m: seen.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: seen.errors.append(str(e)))
    page.on("requestfailed", lambda r: seen.failed.append(r.url))
    page.clock.set_fixed_time(DEVICE_TIME)
    try:
        page.goto(url)
        page.evaluate("window.ready.then(() => true)")
        yield seen
    finally:
        context.close()


def waiting_messages(app: Flask) -> list[tuple[dict[str, Any], float, bool]]:
    """The messages stored in the inbox: (message, arrival, sent with the browser key)."""
    return [
        (m, row.received_at, row.browser)
        for row in rows(app, inbox)
        for m in tracking_api_messages(row.kind, json.loads(row.body))
    ]


def wait_for_messages(app: Flask, count: int) -> list[tuple[dict[str, Any], float, bool]]:
    wait_until(f"{count} messages at the bridge", lambda: len(waiting_messages(app)) >= count)
    return waiting_messages(app)


def second(arrival: float) -> str:
    """The bridge's arrival time as Drip's occurred_at (to the second)."""
    return datetime.fromtimestamp(arrival, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.parametrize("batching", [False, True], ids=["one-by-one", "batching"])
def test_identify_and_track_from_a_page_reach_drip_through_cors(
    browser: Browser, site: tuple[Site, ServedApp], bridge: Flask, fake_drip: FakeDrip,
    batching: bool,
) -> None:  # fmt: skip
    shop, served = site
    shop.batching = batching
    with visit(browser, served.url) as page:
        page.page.evaluate(IDENTIFY_AND_TRACK)
        stored = wait_for_messages(bridge, 2)
        assert [(m["type"], browser_key) for m, _, browser_key in stored] == [
            ("identify", True),
            ("track", True),
        ]
        assert [r.kind for r in rows(bridge, inbox)] == (
            ["batch"] if batching else ["identify", "track"]
        )
        drain(create_worker(bridge))
        assert page.errors == []  # no CORS error, nothing else either
        assert page.failed == []
        assert page.failures() == []
    assert shop.settings_asked == [BROWSER_KEY]
    assert fake_drip.records("subscriber") == [
        {
            "email": "ada@example.com",
            "user_id": "u-browser-1",
            "first_name": "Ada",
            "time_zone": ZONE,
            "custom_fields": {"plan": "pro", "favourite_colour": "green"},
        }
    ]
    assert fake_drip.records("campaign") == [
        {"email": "ada@example.com", "user_id": "u-browser-1", "reactivate_if_removed": False,
         "campaign_id": CAMPAIGN}
    ]  # fmt: skip
    track_arrival = stored[1][1]
    assert fake_drip.records("event") == [
        {
            "email": "ada@example.com",  # the email its anonymousId was identified with
            "action": "Upgraded",
            "occurred_at": second(track_arrival),  # the device said a day earlier
            "properties": {"plan": "pro", "value": 1999},
        }
    ]


def test_a_page_on_an_origin_not_allowed_gets_nothing_through(
    browser: Browser, bridge: Flask, fake_drip: FakeDrip
) -> None:
    stranger = Site(write_key=BROWSER_KEY, bridge=bridge.config["SERVED_AT"])
    with serve(site_app(stranger)) as served, visit(browser, served.url) as page:
        with page.page.expect_event("requestfailed", lambda r: "/v1/i" in r.url):
            page.page.evaluate("window.ready.then(a => { a.identify('u9', {email: 'e@x.co'}); })")
        # A "simple" request needs no preflight: the bridge itself must refuse it.
        sneaked = {"writeKey": BROWSER_KEY, "type": "track", "event": "Sneaked", "userId": "u9",
                   "properties": {"email": "e@x.co"}}  # fmt: skip
        status = page.page.evaluate(
            """async ([url, body]) => {
                await fetch(url + '/v1/t', {method: 'POST', mode: 'no-cors', body: body,
                                            headers: {'Content-Type': 'text/plain'}});
                return 'sent';
            }""",
            [stranger.bridge, json.dumps(sneaked)],
        )
        assert status == "sent"
        assert any("blocked by CORS policy" in e for e in page.errors)
    assert rows(bridge, inbox) == []
    drain(create_worker(bridge))
    assert rows(bridge, received) == []
    assert rows(bridge, skipped) == []
    assert fake_drip.records("subscriber") == fake_drip.records("event") == []


def test_with_the_plugin_drips_tag_gets_the_calls_and_drip_gets_nothing_twice(
    browser: Browser, site: tuple[Site, ServedApp], bridge: Flask, fake_drip: FakeDrip
) -> None:
    shop, served = site
    shop.plugin = True
    client = bridge.test_client()
    before = metrics(client, source="segment", reason="sent_by_device_mode")
    with visit(browser, served.url) as page:
        page.page.evaluate("window.ready.then(a => a.register(window.DripBridge))")
        page.page.evaluate(IDENTIFY_AND_TRACK)
        page.page.evaluate(
            "window.ready.then(a => a.track('Hidden', {}, {integrations: {Drip: false}}))"
        )
        wait_for_messages(bridge, 3)
        stub = page.page.evaluate("window.dripStub")
        drain(create_worker(bridge))
        assert page.errors == page.failed == page.failures() == []
    device_second = DEVICE_TIME.strftime("%Y-%m-%dT%H:%M:%SZ")  # the page's own clock
    assert stub == {
        "src": f"{served.url}/drip-tag-stub.js",  # DRIP_TAG_URL
        "account": ACCOUNT_ID,
        "calls": [
            ["identify", {"email": "ada@example.com", "user_id": "u-browser-1",
                          "first_name": "Ada", "time_zone": ZONE,
                          "plan": "pro", "favourite_colour": "green"}],
            ["subscribe", {"campaign_id": CAMPAIGN,
                           "fields": {"email": "ada@example.com", "user_id": "u-browser-1"}}],
            ["track", "Upgraded", {"plan": "pro", "value": 1999, "occurred_at": device_second}],
        ],
    }  # fmt: skip
    for kind in ("subscriber", "campaign", "event"):
        assert fake_drip.records(kind) == []
    assert [(r.message_id is not None, r.reason) for r in rows(bridge, skipped)] == [
        (True, "sent_by_device_mode"),
        (True, "sent_by_device_mode"),
        (True, "disabled_by_integrations"),
    ]
    after = metrics(client, source="segment", reason="sent_by_device_mode")
    skips = "bridge_messages_skipped_total"
    assert after[skips] - before.get(skips, 0) == 2


# Messages whose device-mode calls must be what the server mapping makes of them.
SAME_RULES = [
    {"type": "identify", "userId": "u7", "context": {"ip": "10.0.0.1", "timezone": "UTC"},
     "traits": {"email": " Grace@Example.com ", "name": "Grace  Brewster Hopper", "phone": 5550100,
                "address": {"street": "1 Navy Way", "city": "Arlington", "postal_code": "22201"},
                "prospect": "true", "eu_consent": True, "base_lead_score": "30",
                "tags": "navy, cobol,navy", "removeTags": ["army"], "accountType": "admiral",
                "Shirt Size": "M", "Größe": 42, "drip_rank": 1.5, "empty": None,
                "nested": {"b": [1, 2], "a": "x"}, "custom_fields": {"Extra Field": True},
                "AccountType": "other", "long": "x" * 1001}},
    {"type": "identify", "userId": "ada@example.com", "traits": {"firstName": "Ada"},
     "integrations": {"Drip": {"campaignId": "555"}}},
    {"type": "identify", "userId": "u8", "traits": {"plan": "pro"}},  # no email: nothing
    {"type": "identify", "userId": "u8", "traits": {"email": "a@b.co"},
     "integrations": {"All": False}},
    {"type": "identify", "userId": "u8", "traits": {"email": "a@b.co"},
     "integrations": {"All": False, "Drip": True}},
    {"type": "track", "userId": "u7", "event": "Upgraded", "timestamp": "2026-11-26T10:00:00.900Z",
     "properties": {"email": "g@example.com", "revenue": "$9.995", "Item Count": 3,
                    "planName": "pro"}},
    {"type": "track", "userId": "u7", "event": "Tipped", "properties": {"email": "g@example.com",
     "value": "250", "revenue": None}},
    {"type": "track", "userId": "u7", "event": "Refunded", "properties": {"email": "g@example.com",
     "value": -1, "revenue": -3}},
    {"type": "track", "userId": "u7", "event": "Order Completed", "properties": {
     "email": "g@example.com", "order_id": "o1", "total": 20}},
    {"type": "track", "userId": "u7", "event": "Audience Entered", "properties": {
     "email": "g@example.com", "audience_key": "vip"}},
    {"type": "track", "userId": "u7", "event": "Hidden", "integrations": {"Drip": False},
     "properties": {"email": "g@example.com"}},
]  # fmt: skip


def as_dcq(message: dict[str, Any], outcome: Outcome) -> list[Any]:
    """The `_dcq` calls that say what the server's Drip calls say (custom fields beside
    the subscriber's keys, as Drip's tag takes them); none for what only the server does."""
    dcq: list[Any] = []
    for call in outcome.calls:
        record = dict(call.record)
        if call.kind == "subscriber" and message["type"] == "identify":
            custom = record.pop("custom_fields", {})
            dcq.append(["identify", record | {k: v for k, v in custom.items() if k not in record}])
        elif call.kind == "campaign":
            fields = {k: record[k] for k in ("email", "user_id") if k in record}
            dcq.append(["subscribe", {"campaign_id": call.campaign_id, "fields": fields}])
        elif call.kind == "event":
            when = {"occurred_at": record["occurred_at"]} if "occurred_at" in record else {}
            dcq.append(["track", record["action"], record["properties"] | when])
        else:
            return []  # orders and audiences: left to the bridge
    return dcq


def test_the_plugin_maps_with_the_server_mappings_own_rules(
    browser: Browser, site: tuple[Site, ServedApp], bridge: Flask
) -> None:
    shop, served = site
    shop.plugin = True
    # In the page a site's own code may name a campaign (Drip's tag takes it anyway), so
    # the comparison is with the server's rules for trusted messages.
    options = Options(campaign_id=CAMPAIGN)
    expected = [as_dcq(m, map_message(m, {}, options)) for m in SAME_RULES]
    with visit(browser, served.url) as page:
        got = page.page.evaluate("(ms) => ms.map(m => window.DripBridge.callsFor(m))", SAME_RULES)
        rules = page.page.evaluate("window.DripBridge.rules")
    assert got == expected
    assert [len(calls) for calls in got] == [2, 2, 0, 0, 2, 1, 1, 1, 0, 0, 0]  # none vacuous
    assert rules == plugin_table()
    assert "status" not in [target for target, _, _ in rules["fields"]]  # not from a page
