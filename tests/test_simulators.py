"""The Drip and Segment fakes, spoken to over real HTTP as the bridge will speak to them."""

from __future__ import annotations

import base64
import gzip
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from app.simulators.drip import FakeDrip
from app.simulators.segment import FakeSegment
from app.simulators.server import serve

ACCOUNT = "9999999"
TOKEN = "drip-test-token"
AUTH = (TOKEN, "")
WRITE_KEY = "segment-test-key"


@pytest.fixture
def drip() -> Iterator[FakeDrip]:
    fake = FakeDrip(token=TOKEN, account_id=ACCOUNT, campaigns=["1111"])
    with fake.serve():
        yield fake


@pytest.fixture
def segment() -> Iterator[FakeSegment]:
    fake = FakeSegment(write_key=WRITE_KEY)
    with fake.serve():
        yield fake


def post(fake: FakeDrip, path: str, body: Any, **kwargs: Any) -> requests.Response:
    kwargs.setdefault("auth", AUTH)
    kwargs.setdefault("timeout", 5)
    return requests.post(f"{fake.url}/v2/{ACCOUNT}/{path}", json=body, **kwargs)


def subscriber(email: str = "ada@example.com", **fields: Any) -> dict[str, Any]:
    return {"subscribers": [{"email": email, **fields}]}


def event(email: str = "ada@example.com", **fields: Any) -> dict[str, Any]:
    return {"events": [{"email": email, "action": "Signed Up", **fields}]}


def order(**fields: Any) -> dict[str, Any]:
    base = {"provider": "bridge", "email": "ada@example.com", "action": "paid", "order_id": "A1"}
    return {**base, **fields}


# Drip: auth (rest/_authentication.md, rest/_errors.md).


def test_user_endpoint_answers_the_account_owner_to_a_basic_auth_token(drip: FakeDrip) -> None:
    response = requests.get(f"{drip.url}/v2/user", auth=AUTH, timeout=5)
    assert response.status_code == 200
    assert set(response.json()["users"][0]) == {"email", "name", "time_zone"}


def test_token_base64_encoded_without_a_colon_is_accepted_as_drip_does(drip: FakeDrip) -> None:
    header = "Basic " + base64.b64encode(TOKEN.encode()).decode()
    response = requests.get(f"{drip.url}/v2/user", headers={"Authorization": header}, timeout=5)
    assert response.status_code == 200


def test_missing_or_wrong_token_gets_401_authentication_error(drip: FakeDrip) -> None:
    for auth in (None, ("wrong", "")):
        response = requests.get(f"{drip.url}/v2/user", auth=auth, timeout=5)
        assert response.status_code == 401
        assert response.json()["errors"][0]["code"] == "authentication_error"


def test_revoked_token_gets_401_until_restored(drip: FakeDrip) -> None:
    drip.revoke_token()
    assert requests.get(f"{drip.url}/v2/user", auth=AUTH, timeout=5).status_code == 401
    drip.restore_token()
    assert requests.get(f"{drip.url}/v2/user", auth=AUTH, timeout=5).status_code == 200


def test_another_account_id_gets_403_authorization_error(drip: FakeDrip) -> None:
    response = requests.post(
        f"{drip.url}/v2/1234/subscribers", json=subscriber(), auth=AUTH, timeout=5
    )
    assert response.status_code == 403
    assert response.json() == {
        "errors": [
            {
                "code": "authorization_error",
                "message": "You are not authorized to access this resource",
            }
        ]
    }


# Drip: subscribers (rest/_subscribers.md).


def test_subscriber_upsert_answers_200_with_links_and_the_merged_subscriber(
    drip: FakeDrip,
) -> None:
    post(drip, "subscribers", subscriber(tags=["A"], custom_fields={"plan": "pro"}))
    response = post(drip, "subscribers", subscriber(tags=["B"], remove_tags=["A"]))
    assert response.status_code == 200
    body = response.json()
    assert "links" in body
    (stored,) = body["subscribers"]
    assert stored["email"] == "ada@example.com"
    assert stored["tags"] == ["B"]
    assert stored["custom_fields"] == {"plan": "pro"}
    assert len(drip.records("subscriber")) == 2


def test_new_email_renames_the_subscriber(drip: FakeDrip) -> None:
    post(drip, "subscribers", subscriber())
    post(drip, "subscribers", subscriber(new_email="ada@new.example.com"))
    assert drip.subscriber("ada@example.com") is None
    renamed = drip.subscriber("ada@new.example.com")
    assert renamed is not None
    by_id = f"{drip.url}/v2/{ACCOUNT}/subscribers/{renamed['id']}"
    found = requests.get(by_id, auth=AUTH, timeout=5).json()["subscribers"][0]
    assert found["email"] == "ada@new.example.com"


def test_subscriber_without_email_or_id_gets_422_presence_error(drip: FakeDrip) -> None:
    response = post(drip, "subscribers", {"subscribers": [{"first_name": "Ada"}]})
    assert response.status_code == 422
    assert response.json() == {
        "errors": [{"code": "presence_error", "attribute": "email", "message": "Email is required"}]
    }


def test_subscriber_with_a_malformed_email_gets_422_email_error(drip: FakeDrip) -> None:
    response = post(drip, "subscribers", subscriber("not-an-email"))
    assert response.status_code == 422
    assert response.json()["errors"][0]["code"] == "email_error"


def test_body_that_is_not_json_gets_400_with_drips_json_problem_message(drip: FakeDrip) -> None:
    response = requests.post(
        f"{drip.url}/v2/{ACCOUNT}/subscribers",
        data=b'{"subscribers": [',
        headers={"Content-Type": "application/json"},
        auth=AUTH,
        timeout=5,
    )
    assert response.status_code == 400
    body = response.json()
    assert body["status"] == 400
    assert body["error"].startswith("There was a problem in the JSON you submitted: ")


def test_body_without_the_subscribers_wrapper_gets_422_parsing_error(drip: FakeDrip) -> None:
    response = post(drip, "subscribers", {"email": "ada@example.com"})
    assert response.status_code == 422
    assert response.json()["errors"][0]["code"] == "parsing_error"


# Drip: batches (rest/_batch_api.md).


def test_subscriber_batch_answers_201_and_silently_drops_invalid_records_but_counts_them(
    drip: FakeDrip,
) -> None:
    records = [{"email": f"p{i}@example.com"} for i in range(3)] + [{"email": "bad"}, {}]
    response = post(drip, "subscribers/batches", {"batches": [{"subscribers": records}]})
    assert (response.status_code, response.json()) == (201, {})
    assert [r["email"] for r in drip.records("subscriber")] == [r["email"] for r in records[:3]]
    assert drip.dropped == 2
    assert [kind for kind, _, _ in drip.dropped_records()] == ["subscriber", "subscriber"]


@pytest.mark.parametrize("size", [0, 1001])
def test_batch_of_zero_or_more_than_1000_records_gets_422(drip: FakeDrip, size: int) -> None:
    records = [{"email": f"p{i}@example.com"} for i in range(size)]
    response = post(drip, "subscribers/batches", {"batches": [{"subscribers": records}]})
    assert response.status_code == 422
    assert drip.records("subscriber") == []


def test_event_batch_of_1000_is_accepted_and_invalid_events_are_dropped(drip: FakeDrip) -> None:
    events = [{"email": f"p{i}@example.com", "action": "Viewed"} for i in range(999)]
    events.append({"email": "p@example.com"})  # no action
    response = post(drip, "events/batches", {"batches": [{"events": events}]})
    assert response.status_code == 201
    assert len(drip.records("event")) == 999
    assert drip.dropped == 1


# Drip: events (rest/_events.md).


def test_event_answers_204_and_is_recorded(drip: FakeDrip) -> None:
    response = post(drip, "events", event(properties={"value": 1999}))
    assert (response.status_code, response.content) == (204, b"")
    assert drip.records("event")[0]["properties"] == {"value": 1999}


def test_event_without_action_gets_422_presence_error(drip: FakeDrip) -> None:
    response = post(drip, "events", {"events": [{"email": "ada@example.com"}]})
    assert response.status_code == 422
    assert response.json()["errors"][0]["attribute"] == "action"


@pytest.mark.parametrize("value", [2_147_483_647, 19.99, "1999", True])
def test_event_value_must_be_an_integer_below_2147483647(drip: FakeDrip, value: Any) -> None:
    response = post(drip, "events", event(properties={"value": value}))
    assert response.status_code == 422
    assert response.json()["errors"][0]["code"] == "range_error"


# Drip: campaigns, tags, shopper activity.


def test_campaign_subscribe_answers_201_and_unknown_campaign_404(drip: FakeDrip) -> None:
    response = post(drip, "campaigns/1111/subscribers", subscriber(double_optin=False))
    assert response.status_code == 201
    assert response.json()["subscribers"][0]["email"] == "ada@example.com"
    assert drip.records("campaign")[0]["campaign_id"] == "1111"
    missing = post(drip, "campaigns/2222/subscribers", subscriber())
    assert missing.status_code == 404
    assert missing.json()["errors"][0]["code"] == "not_found_error"


def test_campaign_subscribe_of_a_removed_person_without_reactivation_gets_422(
    drip: FakeDrip,
) -> None:
    drip.mark_removed("ada@example.com", "1111")
    refused = post(drip, "campaigns/1111/subscribers", subscriber(reactivate_if_removed=False))
    assert refused.status_code == 422
    assert post(drip, "campaigns/1111/subscribers", subscriber()).status_code == 201


def test_tag_is_applied_with_201_and_removed_with_204(drip: FakeDrip) -> None:
    applied = post(drip, "tags", {"tags": [{"email": "ada@example.com", "tag": "VIP Club"}]})
    assert (applied.status_code, applied.json()) == (201, {})
    url = f"{drip.url}/v2/{ACCOUNT}/subscribers/ada%40example.com/tags/VIP%20Club"
    assert requests.delete(url, auth=AUTH, timeout=5).status_code == 204
    person = drip.subscriber("ada@example.com")
    assert person is not None
    assert person["tags"] == []
    assert drip.records("untag") == [{"email": "ada@example.com", "tag": "VIP Club"}]
    unknown = f"{drip.url}/v2/{ACCOUNT}/subscribers/nobody%40example.com/tags/VIP"
    assert requests.delete(unknown, auth=AUTH, timeout=5).status_code == 404


def test_order_answers_202_with_a_request_id_and_invalid_action_gets_422(drip: FakeDrip) -> None:
    url = f"{drip.url}/v3/{ACCOUNT}/shopper_activity/order"
    response = requests.post(url, json=order(), auth=AUTH, timeout=5)
    assert response.status_code == 202
    assert response.json()["request_id"]
    bad = requests.post(url, json=order(action="completed"), auth=AUTH, timeout=5)
    assert bad.status_code == 422
    assert drip.records("order") == [order()]


def test_order_batch_answers_request_ids_and_drops_invalid_orders(drip: FakeDrip) -> None:
    url = f"{drip.url}/v3/{ACCOUNT}/shopper_activity/order/batch"
    orders = [order(order_id="A1"), order(order_id=None)]
    response = requests.post(url, json={"orders": orders}, auth=AUTH, timeout=5)
    assert response.status_code == 202
    assert len(response.json()["request_ids"]) == 2
    assert drip.records("order") == [orders[0]]
    assert drip.dropped == 1


# Drip: rate limits (rest/_rate_limiting.md).


def test_individual_budget_answers_429_with_drips_body_and_headers_when_spent() -> None:
    fake = FakeDrip(rate_limit=(3, 60.0))
    with fake.serve():
        remaining = [post(fake, "events", event()).headers["X-RateLimit-Remaining"] for _ in "abc"]
        over = post(fake, "events", event())
    assert remaining == ["2", "1", "0"]
    assert over.status_code == 429
    assert over.json() == {
        "message": "API rate limit exceeded. Please try again in an hour.",
        "documentation": "https://www.getdrip.com/docs/rest-api#rate-limting",
    }
    assert over.headers["X-RateLimit-Limit"] == "3"
    assert over.headers["X-RateLimit-Remaining"] == "0"
    assert 59 <= int(over.headers["Retry-After"]) <= 60
    assert fake.over_budget == 1


def test_batch_budget_is_separate_from_the_individual_budget() -> None:
    fake = FakeDrip(rate_limit=(1, 60.0), batch_rate_limit=(2, 60.0))
    batch = {"batches": [{"events": [{"email": "a@example.com", "action": "x"}]}]}
    with fake.serve():
        statuses = [post(fake, "events/batches", batch).status_code for _ in range(3)]
        single = post(fake, "events", event())
    assert statuses == [201, 201, 429]
    assert single.status_code == 204
    assert single.headers["X-RateLimit-Limit"] == "1"


def test_budget_comes_back_when_the_fixed_window_turns() -> None:
    fake = FakeDrip(rate_limit=(1, 0.5))
    with fake.serve():
        first, second = post(fake, "events", event()), post(fake, "events", event())
        time.sleep(0.6)
        third = post(fake, "events", event())
    assert [first.status_code, second.status_code, third.status_code] == [204, 429, 204]


def test_retry_after_can_be_switched_off() -> None:
    fake = FakeDrip(rate_limit=(0, 60.0), retry_after=False)
    with fake.serve():
        response = post(fake, "events", event())
    assert response.status_code == 429
    assert "Retry-After" not in response.headers


def test_every_response_carries_rate_limit_headers(drip: FakeDrip) -> None:
    responses = [
        requests.get(f"{drip.url}/v2/user", timeout=5),
        post(drip, "subscribers", {"nope": 1}),
        post(drip, "subscribers", subscriber()),
    ]
    for response in responses:
        assert response.headers["X-RateLimit-Limit"] == "3600"
        assert "X-RateLimit-Remaining" in response.headers


# Drip: one request per subscriber at a time (rest/_subscribers.md).


def test_concurrent_requests_for_one_subscriber_get_429_without_spending_budget() -> None:
    fake = FakeDrip(latency=0.3)
    results: list[requests.Response] = []
    with fake.serve():
        threads = [
            threading.Thread(target=lambda: results.append(post(fake, "events", event())))
            for _ in range(2)
        ]
        for thread in threads:
            thread.start()
            time.sleep(0.05)
        for thread in threads:
            thread.join()
        other = post(fake, "events", event("grace@example.com"))
    assert sorted(r.status_code for r in results) == [204, 429]
    refused = next(r for r in results if r.status_code == 429)
    assert refused.json()["errors"] == [
        {
            "code": "too_many_requests",
            "message": "Too many concurrent requests for the same subscriber",
        }
    ]
    assert fake.concurrency_violations == 1
    assert other.status_code == 204
    assert other.headers["X-RateLimit-Remaining"] == "3598"


# Drip: fault injection and recording.


def test_fail_next_answers_the_given_status_and_retry_after_then_recovers(drip: FakeDrip) -> None:
    drip.fail_next(2, status=503, retry_after=7)
    statuses = [post(drip, "events", event()) for _ in range(3)]
    assert [r.status_code for r in statuses] == [503, 503, 204]
    assert statuses[0].headers["Retry-After"] == "7"
    assert drip.records("event") == [event()["events"][0]]


def test_an_injected_429_looks_like_drips_rate_limit_answer(drip: FakeDrip) -> None:
    drip.fail_next(status=429)
    response = post(drip, "events", event())
    assert response.status_code == 429
    assert response.json()["message"].startswith("API rate limit exceeded")


def test_failure_rate_is_random_5xx_but_repeatable_with_a_seed() -> None:
    runs = []
    for _ in range(2):
        fake = FakeDrip(failure_rate=0.5, seed=42)
        with fake.serve():
            runs.append([post(fake, "events", event()).status_code for _ in range(20)])
    assert runs[0] == runs[1]
    assert {s for s in runs[0] if s != 204} <= {500, 502, 503, 504}
    assert 0 < runs[0].count(204) < 20


def test_latency_slows_each_request(drip: FakeDrip) -> None:
    drip.latency = 0.2
    started = time.monotonic()
    post(drip, "events", event())
    assert time.monotonic() - started >= 0.2


def test_hang_makes_clients_time_out_until_released(drip: FakeDrip) -> None:
    drip.hang()
    with pytest.raises(requests.Timeout):
        post(drip, "events", event(), timeout=0.2)
    drip.release()
    assert post(drip, "events", event("grace@example.com")).status_code == 204


def test_calls_record_method_path_body_and_status_and_reset_forgets(drip: FakeDrip) -> None:
    post(drip, "events", event())
    post(drip, "subscribers", subscriber())
    (call,) = drip.calls("/events")
    assert (call.method, call.path, call.status) == ("POST", f"/v2/{ACCOUNT}/events", 204)
    assert call.json == event()
    assert call.headers["Authorization"].startswith("Basic ")
    drip.reset()
    assert (drip.calls(), drip.records("event"), drip.subscriber("ada@example.com")) == (
        [],
        [],
        None,
    )


def test_unknown_path_answers_drips_404_body(drip: FakeDrip) -> None:
    response = requests.get(f"{drip.url}/v2/{ACCOUNT}/nothing", auth=AUTH, timeout=5)
    assert response.status_code == 404
    assert response.json()["errors"][0]["code"] == "not_found_error"


# Segment's tracking API (segment-docs http-api/index.md).


def batch(*messages: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"batch": list(messages), **extra}


def track(message_id: str = "m1", **fields: Any) -> dict[str, Any]:
    return {"type": "track", "messageId": message_id, "userId": "u1", "event": "X", **fields}


def test_segment_batch_with_basic_auth_answers_success_and_records_messages(
    segment: FakeSegment,
) -> None:
    body = batch(track(), context={"ip": "1.2.3.4"})
    response = requests.post(f"{segment.url}/v1/batch", json=body, auth=(WRITE_KEY, ""), timeout=5)
    assert (response.status_code, response.json()) == (200, {"success": True})
    assert segment.messages() == [{**track(), "context": {"ip": "1.2.3.4"}}]


def test_segment_write_key_in_the_body_is_enough(segment: FakeSegment) -> None:
    body = batch(track(), writeKey=WRITE_KEY)
    assert requests.post(f"{segment.url}/v1/batch", json=body, timeout=5).status_code == 200


def test_segment_missing_or_wrong_write_key_gets_401(segment: FakeSegment) -> None:
    for auth in (None, ("wrong", "")):
        response = requests.post(f"{segment.url}/v1/batch", json=batch(track()), auth=auth)
        assert response.status_code == 401
        assert set(response.json()) == {"code", "message"}
    assert segment.messages() == []


def test_segment_accepts_gzip_bodies(segment: FakeSegment) -> None:
    data = gzip.compress(json.dumps(batch(track())).encode())
    headers = {"Content-Encoding": "gzip", "Content-Type": "application/json"}
    response = requests.post(
        f"{segment.url}/v1/batch", data=data, headers=headers, auth=(WRITE_KEY, ""), timeout=5
    )
    assert response.status_code == 200
    assert segment.messages() == [track()]


@pytest.mark.parametrize(
    "data",
    [b"{not json", gzip.compress(b"[1, 2]"), json.dumps(batch(track(pad="x" * 33_000))).encode()],
    ids=["invalid-json", "not-an-object", "message-over-32kb"],
)
def test_segment_answers_400_to_bad_or_oversized_bodies(segment: FakeSegment, data: bytes) -> None:
    headers = {"Content-Encoding": "gzip"} if data[:2] == b"\x1f\x8b" else {}
    response = requests.post(
        f"{segment.url}/v1/batch", data=data, headers=headers, auth=(WRITE_KEY, ""), timeout=5
    )
    assert response.status_code == 400


def test_segment_batch_over_500kb_gets_400(segment: FakeSegment) -> None:
    messages = [track(f"m{i}", pad="x" * 20_000) for i in range(30)]
    response = requests.post(
        f"{segment.url}/v1/batch", json=batch(*messages), auth=(WRITE_KEY, ""), timeout=5
    )
    assert response.status_code == 400


def test_segment_429_carries_retry_after_and_5xx_on_demand(segment: FakeSegment) -> None:
    segment.fail_next(status=429, retry_after=3)
    segment.fail_next(status=502)
    url, auth = f"{segment.url}/v1/batch", (WRITE_KEY, "")
    limited, broken, ok = (requests.post(url, json=batch(track()), auth=auth) for _ in range(3))
    assert (limited.status_code, limited.headers["Retry-After"]) == (429, "3")
    assert limited.headers["X-RateLimit-Reset"] == "3"
    assert (broken.status_code, ok.status_code) == (502, 200)


def test_segment_unique_messages_drop_retried_duplicates_by_message_id(
    segment: FakeSegment,
) -> None:
    url, auth = f"{segment.url}/v1/batch", (WRITE_KEY, "")
    requests.post(url, json=batch(track("m1"), track("m2")), auth=auth, timeout=5)
    requests.post(url, json=batch(track("m2")), auth=auth, timeout=5)
    assert len(segment.messages()) == 3
    assert [m["messageId"] for m in segment.unique_messages()] == ["m1", "m2"]


def test_segment_single_endpoints_record_the_type_and_keep_messages_without_ids_out(
    segment: FakeSegment,
) -> None:
    url = f"{segment.url}/v1/identify"
    ok = requests.post(url, json={"userId": "u1", "writeKey": WRITE_KEY}, timeout=5)
    lost = requests.post(url, json={"traits": {}, "writeKey": WRITE_KEY}, timeout=5)
    assert (ok.status_code, lost.status_code) == (200, 200)
    assert segment.messages() == [{"type": "identify", "userId": "u1"}]
    assert segment.rejected()[0][0] == "no userId or anonymousId"


def test_segment_fake_accepts_the_real_python_library_with_gzip(segment: FakeSegment) -> None:
    from segment.analytics import Client

    client = Client(WRITE_KEY, host=segment.url, sync_mode=True, gzip=True, max_retries=0)
    client.track("u1", "Signed Up", {"plan": "pro"}, message_id="lib-1")  # sent inline
    (message,) = segment.messages()
    assert (message["messageId"], message["event"]) == ("lib-1", "Signed Up")


# The server helper.


def test_served_app_frees_its_port_on_close() -> None:
    fake = FakeSegment()
    with serve(fake.app) as served:
        assert requests.get(f"{served.url}/_fake/stats", timeout=5).status_code == 200
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{served.url}/_fake/stats", timeout=1)


@pytest.mark.slow
def test_drip_fake_runs_as_its_own_process() -> None:
    command = [sys.executable, "-m", "app.simulators.drip", "--port", "0", "--rate-limit", "5/6"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        url = process.stdout.readline().split()[-1]
        response = requests.get(f"{url}/v2/user", auth=AUTH, timeout=5)
        assert response.headers["X-RateLimit-Limit"] == "5"
        assert requests.get(f"{url}/_fake/stats", timeout=5).json()["requests"] == 1
    finally:
        process.terminate()
        process.wait(timeout=10)
