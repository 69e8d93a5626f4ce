"""`drip-bridge dead-letters list / replay / discard` on rows dead-lettered by the worker."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from click.testing import Result
from flask import Flask
from flask.testing import FlaskClient

from app.delivery.worker import Worker
from app.simulators.drip import FakeDrip
from tests.conftest import ACCOUNT_ID, WRITE_KEY, drain
from tests.helpers import IDENTIFY, INVALID_EMAIL, bearer, rows

GRACE = IDENTIFY | {
    "messageId": "m-identify-2",
    "userId": "u2",
    "traits": {"email": "grace@example.com"},
}
SUBSCRIBER_BODY = {
    "email": "ada@example.com",
    "user_id": "u1",
    "custom_fields": {"plan": "pro"},
}


def cli(app: Flask, *args: str) -> Result:
    return app.test_cli_runner().invoke(args=["dead-letters", *args])


def kill(
    client: FlaskClient, worker: Worker, fake_drip: FakeDrip, *messages: dict[str, Any]
) -> None:
    """Dead-letter each message the real way: Drip refuses it with a 422, the worker gives up."""
    fake_drip.fail_next(len(messages), status=422, body=INVALID_EMAIL)
    response = client.post("/segment", json=list(messages), headers=bearer(WRITE_KEY))
    assert response.status_code == 200
    drain(worker)
    assert [row.state for row in rows(client.application)] == ["dead"] * len(messages)


def iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def delivered(fake_drip: FakeDrip) -> list[tuple[str, Any]]:
    return [(c.path, c.json) for c in fake_drip.calls() if c.status < 300]


def test_list_shows_a_dead_letter_with_drips_error(
    app: Flask, client: FlaskClient, worker: Worker, fake_drip: FakeDrip
) -> None:
    kill(client, worker, fake_drip, IDENTIFY)
    (row,) = rows(app)
    result = cli(app, "list")
    assert result.exit_code == 0
    assert result.stdout == (
        "ID  DESTINATION  KIND        PERSON           ATTEMPTS  DEAD_AT               "
        "ERROR_CODE   ERROR\n"
        f"1   drip         subscriber  ada@example.com  1         {iso(row.finished_at)}  "
        "email_error  Email is invalid (email)\n"
    )


def test_list_as_json_has_the_body_and_the_original_message(
    app: Flask, client: FlaskClient, worker: Worker, fake_drip: FakeDrip
) -> None:
    kill(client, worker, fake_drip, IDENTIFY)
    (row,) = rows(app)
    result = cli(app, "list", "--json", "--destination", "drip")
    assert json.loads(result.stdout) == [
        {
            "id": 1,
            "destination": "drip",
            "kind": "subscriber",
            "person": "ada@example.com",
            "campaign_id": None,
            "attempts": 1,
            "received_at": iso(row.received_at),
            "dead_at": iso(row.finished_at),
            "error_code": "email_error",
            "error": "Email is invalid (email)",
            "message_id": "m-identify-1",
            "body": SUBSCRIBER_BODY,
            "message": IDENTIFY,
        }
    ]


def test_list_says_so_when_there_are_no_dead_letters(app: Flask) -> None:
    result = cli(app, "list", "--destination", "segment")
    assert (result.exit_code, result.stdout) == (0, "no dead letters for segment\n")


def test_list_with_a_limit_says_how_many_more_there_are(
    app: Flask, client: FlaskClient, worker: Worker, fake_drip: FakeDrip
) -> None:
    kill(client, worker, fake_drip, IDENTIFY, GRACE)
    lines = cli(app, "list", "--limit", "1").stdout.splitlines()
    assert [line.split()[0] for line in lines[1:-1]] == ["1"]
    assert lines[-1] == "... and 1 more (raise --limit to see them)"


def test_a_replayed_dead_letter_is_delivered_by_the_worker(
    app: Flask, client: FlaskClient, worker: Worker, fake_drip: FakeDrip
) -> None:
    kill(client, worker, fake_drip, IDENTIFY)
    result = cli(app, "replay", "1")
    assert (result.exit_code, result.stdout) == (0, "replayed 1 dead letter\n")
    (row,) = rows(app)
    assert (row.state, row.attempts, row.error, row.error_code) == ("pending", 0, None, None)
    drain(worker)
    assert delivered(fake_drip) == [
        (f"/v2/{ACCOUNT_ID}/subscribers", {"subscribers": [SUBSCRIBER_BODY]})
    ]
    assert rows(app)[0].state == "done"


def test_a_discarded_dead_letter_is_kept_as_dropped_and_never_sent(
    app: Flask, client: FlaskClient, worker: Worker, fake_drip: FakeDrip
) -> None:
    kill(client, worker, fake_drip, IDENTIFY, GRACE)
    result = cli(app, "discard", "2")
    assert (result.exit_code, result.stdout) == (0, "discarded 1 dead letter\n")
    assert [(r.state, r.error_code) for r in rows(app)] == [
        ("dead", "email_error"),
        ("dropped", "email_error"),
    ]
    assert cli(app, "replay", "--all").stdout == "replayed 1 dead letter\n"
    drain(worker)
    assert [path for path, _ in delivered(fake_drip)] == [f"/v2/{ACCOUNT_ID}/subscribers"]
    assert [r.state for r in rows(app)] == ["done", "dropped"]


def test_unknown_ids_are_reported_and_exit_1_after_acting_on_the_known_ones(
    app: Flask, client: FlaskClient, worker: Worker, fake_drip: FakeDrip
) -> None:
    kill(client, worker, fake_drip, IDENTIFY)
    result = cli(app, "replay", "1", "99", "7")
    assert (result.exit_code, result.stdout, result.stderr) == (
        1,
        "replayed 1 dead letter\n",
        "Error: no dead letter with id 7, 99\n",
    )


def test_all_of_another_destination_leaves_drips_dead_letters_alone(
    app: Flask, client: FlaskClient, worker: Worker, fake_drip: FakeDrip
) -> None:
    kill(client, worker, fake_drip, IDENTIFY)
    result = cli(app, "discard", "--all", "--destination", "segment")
    assert (result.exit_code, result.stdout) == (0, "discarded 0 dead letters\n")
    assert rows(app)[0].state == "dead"


def test_ids_and_all_together_or_neither_is_a_usage_error(app: Flask) -> None:
    for args in (("replay",), ("replay", "1", "--all"), ("discard",)):
        result = cli(app, *args)
        assert result.exit_code == 2
        assert "give either the ids of dead letters or --all" in result.stderr
