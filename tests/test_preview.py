"""`drip-bridge preview`: the exact calls a message would become, and nothing stored."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from flask import Flask
from flask.testing import FlaskClient
from segment.analytics.version import VERSION as LIBRARY_VERSION

from app import __version__
from app.mapping.to_segment import event_id
from tests.conftest import ACCOUNT_ID, WRITE_KEY
from tests.helpers import IDENTIFY, TRACK, bearer, received, rows, skipped

CLICK: dict[str, Any] = {
    "event": "subscriber.clicked_email",
    "data": {
        "account_id": ACCOUNT_ID,
        "subscriber": {"id": "z1togz2hcjrkpp5treip", "email": "john@acme.com", "user_id": "123"},
        "properties": {
            "url": "http://www.example.com",
            "ip_address": "111.111.111.11",
            "email_subject": "Email Course: Day 1",
        },
    },
    "occurred_at": "2013-06-21T10:31:58Z",
}

IDENTIFY_PREVIEW = f"""\
message 1 of 1: identify m-identify-1 -> 1 Drip call

POST /v2/{ACCOUNT_ID}/subscribers
{{
  "subscribers": [
    {{
      "email": "ada@example.com",
      "user_id": "u1",
      "custom_fields": {{
        "plan": "pro"
      }}
    }}
  ]
}}
"""


def preview(app: Flask, body: Any = None, *args: str, raw: str | None = None) -> Result:
    text = raw if raw is not None else json.dumps(body)
    return app.test_cli_runner().invoke(args=["preview", *args], input=text)


def test_an_identify_previews_as_the_exact_subscriber_call_with_the_account_id(
    app: Flask,
) -> None:
    result = preview(app, IDENTIFY)
    assert (result.exit_code, result.stdout) == (0, IDENTIFY_PREVIEW)


def test_a_preview_stores_nothing(app: Flask) -> None:
    preview(app, [IDENTIFY, TRACK])
    assert rows(app) == rows(app, received) == rows(app, skipped) == []


def test_a_file_argument_is_read_like_stdin(app: Flask, tmp_path: Path) -> None:
    path = tmp_path / "identify.json"
    path.write_text(json.dumps(IDENTIFY))
    result = app.test_cli_runner().invoke(args=["preview", str(path)])
    assert (result.exit_code, result.stdout) == (0, IDENTIFY_PREVIEW)


def test_a_track_uses_the_email_an_earlier_identify_stored(app: Flask, client: FlaskClient) -> None:
    response = client.post("/segment", json=IDENTIFY, headers=bearer(WRITE_KEY))
    assert response.status_code == 200
    result = preview(app, TRACK, "-")
    assert result.exit_code == 0
    assert (
        result.stdout
        == f"""\
message 1 of 1: track m-track-1 -> 1 Drip call

POST /v2/{ACCOUNT_ID}/events
{{
  "events": [
    {{
      "email": "ada@example.com",
      "action": "Signed Up",
      "occurred_at": "2026-11-26T10:00:01Z",
      "properties": {{
        "plan": "pro"
      }}
    }}
  ]
}}
"""
    )


def test_a_batch_learns_the_email_from_its_own_identify(app: Flask) -> None:
    result = preview(app, {"batch": [IDENTIFY, TRACK]})
    headers = [line for line in result.stdout.splitlines() if line.startswith("message")]
    assert headers == [
        "message 1 of 2: identify m-identify-1 -> 1 Drip call",
        "message 2 of 2: track m-track-1 -> 1 Drip call",
    ]


def test_a_track_without_a_known_email_is_skipped_with_its_reason(app: Flask) -> None:
    result = preview(app, TRACK | {"userId": "stranger"})
    assert (result.exit_code, result.stdout) == (
        0,
        "message 1 of 1: track m-track-1 -> skipped: missing_email\n",
    )


def test_fields_that_cannot_be_mapped_are_listed_as_problems(app: Flask) -> None:
    message = IDENTIFY | {"traits": {"email": "ada@example.com", "address": "Main St"}}
    result = preview(app, message)
    assert result.stdout.splitlines()[:2] == [
        "message 1 of 1: identify m-identify-1 -> 1 Drip call",
        "problem: traits.address: expected an object; ignored",
    ]


def test_an_invalid_message_in_a_batch_is_shown_skipped_as_the_bridge_would(app: Flask) -> None:
    result = preview(app, [{"userId": "u1"}])
    assert (result.exit_code, result.stdout) == (
        0,
        "message 1 of 1: ? -> skipped: invalid_message "
        "(type is missing: every Segment message has a type)\n",
    )


def test_a_drip_click_previews_as_the_exact_segment_message_that_will_be_posted(app: Flask) -> None:
    result = preview(app, CLICK)
    mid = event_id(CLICK)
    assert result.exit_code == 0
    assert (
        result.stdout
        == f"""\
Drip webhook subscriber.clicked_email {mid} -> 1 Segment call

POST /v1/batch (Segment)
{{
  "integrations": {{
    "Drip": false,
    "Drip (Actions)": false,
    "Webhooks": false,
    "Webhooks (Actions)": false
  }},
  "anonymousId": null,
  "properties": {{
    "email_subject": "Email Course: Day 1",
    "link_url": "http://www.example.com",
    "drip_subscriber_id": "z1togz2hcjrkpp5treip"
  }},
  "timestamp": "2013-06-21T10:31:58.000+00:00",
  "context": {{
    "traits": {{
      "email": "john@acme.com"
    }},
    "integration": {{
      "name": "drip-bridge",
      "version": "{__version__}"
    }},
    "ip": "111.111.111.11",
    "library": {{
      "name": "analytics-python",
      "version": "{LIBRARY_VERSION}"
    }}
  }},
  "userId": "123",
  "type": "track",
  "event": "Email Link Clicked",
  "messageId": "{mid}"
}}
"""
    )


def test_a_drip_event_not_forwarded_by_default_is_skipped_with_its_reason(app: Flask) -> None:
    envelope = copy.deepcopy(CLICK) | {"event": "subscriber.performed_custom_event"}
    result = preview(app, envelope)
    header = f"Drip webhook subscriber.performed_custom_event {event_id(envelope)}"
    assert (result.exit_code, result.stdout) == (0, f"{header} -> skipped: not_forwarded\n")


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        ("", "stdin is not JSON: Expecting value at line 1 column 1"),
        (  # a message every Python the package allows words the same (3.13 reworded others)
            '{"type": "identify"\n "userId": 1}',
            "stdin is not JSON: Expecting ',' delimiter at line 2 column 2",
        ),
    ],
)
def test_input_that_is_not_json_fails_with_the_line_and_column(
    app: Flask, raw: str, error: str
) -> None:
    result = preview(app, raw=raw)
    assert (result.exit_code, result.stdout, result.stderr) == (1, "", f"Error: {error}\n")


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"userId": "u1"}, "type is missing: every Segment message has a type"),
        ({"type": "track", "userId": "u1"}, "event a track call needs a non-empty event name"),
        ("hello", 'expected a JSON object, an array or {"batch": [...]}, got str'),
        ({"batch": {}}, '"batch" must be an array of Segment messages.'),
    ],
)
def test_a_message_that_is_not_a_segment_message_fails_saying_why(
    app: Flask, body: Any, error: str
) -> None:
    result = preview(app, body)
    expected = f"Error: not a Segment message: {error}\n"
    assert (result.exit_code, result.stdout, result.stderr) == (1, "", expected)


def test_a_broken_drip_webhook_fails_naming_the_fields(app: Flask) -> None:
    envelope = copy.deepcopy(CLICK)
    del envelope["data"]["subscriber"]["email"]
    result = preview(app, envelope)
    expected = (
        "Error: not a Drip webhook: data.subscriber.email: "
        "Missing: the subscriber's email is required to forward the event\n"
    )
    assert (result.exit_code, result.stderr) == (1, expected)
