"""What a message sent with BROWSER_WRITE_KEY (public, in every page) may do, and the
cloud-mode copy of what the /drip.js plugin already gave Drip's tag."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask

from app.config import Config
from app.mapping.to_drip import BROWSER_ONLY, map_message
from app.mapping.types import DripCall, Options, Outcome, Problem
from app.pipeline import intake
from tests.conftest import WRITE_KEY, running
from tests.helpers import basic, dumps, rows, skipped

PAGE = Options(campaign_id="555", browser=True)
SERVER = Options(campaign_id="555")
VICTIM = {"u1": "victim@example.com"}
EVE = {"email": "eve@example.com"}
MARKED = {"dripBridge": {"device": True}}
CHOOSE = BROWSER_ONLY + "choose how or where to subscribe"


def identify(traits: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"type": "identify", "userId": "u1", "anonymousId": "a1", "traits": traits, **fields}


def calls(*drip_calls: DripCall, learned: dict[str, str], problems: list[Problem] | None = None,
          skip: str | None = None) -> Outcome:  # fmt: skip
    return Outcome(list(drip_calls), learned, problems or [], skip)


def subscriber(record: dict[str, Any]) -> DripCall:
    return DripCall("subscriber", record["email"], record)


def joins(email: str) -> DripCall:
    record = {"email": email, "user_id": "u1", "reactivate_if_removed": False}
    return DripCall("campaign", email, record, campaign_id="555")


CASES = [
    pytest.param(  # a server renames a known userId whose email changed ...
        identify(EVE), VICTIM, SERVER,
        calls(subscriber({"email": "victim@example.com", "new_email": "eve@example.com",
                          "user_id": "u1"}), joins("eve@example.com"),
              learned={"u1": "eve@example.com", "a1": "eve@example.com"}),
        id="server renames"),
    pytest.param(  # ... a page never does, and teaches only its own anonymousId's email
        identify(EVE), VICTIM, PAGE,
        calls(subscriber({"email": "eve@example.com", "user_id": "u1"}), joins("eve@example.com"),
              learned={"a1": "eve@example.com"}),
        id="page does not rename"),
    pytest.param(
        identify(EVE | {"new_email": "eve2@example.com"}), {}, PAGE,
        calls(subscriber({"email": "eve@example.com", "user_id": "u1"}), joins("eve@example.com"),
              learned={"a1": "eve@example.com"},
              problems=[Problem("traits.new_email", BROWSER_ONLY + "rename a person")]),
        id="page asks to rename"),
    pytest.param(
        identify(EVE, integrations={"Drip": {"campaignId": "999", "reactivateIfRemoved": True,
                                             "doubleOptin": False}}), {}, PAGE,
        calls(subscriber({"email": "eve@example.com", "user_id": "u1"}), joins("eve@example.com"),
              learned={"a1": "eve@example.com"},
              problems=[Problem("integrations.Drip.campaignId", CHOOSE),
                        Problem("integrations.Drip.reactivateIfRemoved", CHOOSE),
                        Problem("integrations.Drip.doubleOptin", CHOOSE)]),
        id="page chooses another campaign"),
    pytest.param(
        identify(EVE, integrations={"Drip": {"campaignId": "555"}}), {}, PAGE,
        calls(subscriber({"email": "eve@example.com", "user_id": "u1"}), joins("eve@example.com"),
              learned={"a1": "eve@example.com"}),
        id="page names the configured campaign"),
    pytest.param(
        identify(EVE | {"status": "active", "plan": "pro"}), {}, PAGE,
        calls(subscriber({"email": "eve@example.com", "user_id": "u1",
                          "custom_fields": {"plan": "pro"}}), joins("eve@example.com"),
              learned={"a1": "eve@example.com"},
              problems=[Problem("traits.status", BROWSER_ONLY + "change a subscription status")]),
        id="page sets a status"),
    pytest.param(
        identify(EVE, context=MARKED), {}, SERVER,
        calls(learned={"u1": "eve@example.com", "a1": "eve@example.com"},
              skip="sent_by_device_mode"),
        id="identify handed to the tag"),
    pytest.param(
        {"type": "track", "userId": "u1", "event": "Upgraded", "properties": {"revenue": 5},
         "context": MARKED}, VICTIM, SERVER,
        calls(learned={"u1": "victim@example.com"}, skip="sent_by_device_mode"),
        id="track handed to the tag"),
    pytest.param(  # what the plugin leaves to the bridge is not marked: it is sent
        {"type": "track", "userId": "u1", "event": "Upgraded", "properties": {"revenue": 5},
         "context": {"dripBridge": {"device": "yes"}}}, VICTIM, SERVER,
        calls(DripCall("event", "victim@example.com", {"email": "victim@example.com",
                       "action": "Upgraded", "properties": {"value": 500}}),
              learned={"u1": "victim@example.com"}),
        id="not marked"),
]  # fmt: skip


@pytest.mark.parametrize(("message", "known", "options", "expected"), CASES)
def test_a_page_message_maps_to_exact_drip_calls(
    message: dict[str, Any], known: dict[str, str], options: Options, expected: Outcome
) -> None:
    assert map_message(message, known, options) == expected


@pytest.fixture
def page_app(config: Config) -> Iterator[Flask]:
    with running(config.with_overrides({"browser_write_key": "page-key"})) as app:
        yield app


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_stranger_with_the_browser_key_cannot_take_over_a_known_user(page_app: Flask) -> None:
    web = page_app.test_client()
    text = {"Content-Type": "text/plain"}
    victim = identify({"email": "victim@example.com"}, messageId="m1", anonymousId="a-victim")
    web.post("/v1/identify", data=dumps(victim), headers=text | basic(WRITE_KEY))
    stranger = identify({"email": "eve@example.com", "new_email": "eve@example.com"},
                        messageId="m2", anonymousId="a-eve")  # fmt: skip
    web.post("/v1/i", data=dumps(stranger), headers=text | basic("page-key"))
    later = {"type": "track", "userId": "u1", "event": "Paid", "messageId": "m3"}
    web.post("/v1/track", data=dumps(later), headers=text | basic(WRITE_KEY))
    intake.map_waiting(page_app.extensions["engine"], page_app.config["BRIDGE"])
    assert [(r.kind, r.body) for r in rows(page_app)] == [
        ("subscriber", {"email": "victim@example.com", "user_id": "u1"}),
        ("subscriber", {"email": "eve@example.com", "user_id": "u1"}),  # eve's own, no rename
        ("event", {"email": "victim@example.com", "action": "Paid", "properties": {}}),
    ]
    assert rows(page_app, skipped) == []
