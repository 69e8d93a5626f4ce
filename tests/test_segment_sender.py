"""Delivery to Segment through analytics-python's own request function."""

from __future__ import annotations

import json
import multiprocessing

import pytest

from app.delivery.errors import DeliveryError
from app.delivery.segment_client import SegmentClient, chunks
from app.segment_api import LIBRARY_BATCH_BYTES, track_message
from app.simulators.segment import FakeSegment
from tests.conftest import SEGMENT_KEY


def _message(n: int, padding: int = 0) -> dict[str, object]:
    props = {"pad": "x" * padding} if padding else {}
    return track_message(
        user_id=f"u{n}", event="Email Opened", properties=props, message_id=f"m{n}"
    )


def _send_in_child(client: SegmentClient) -> None:
    """Runs in a forked child: the request is made there and then, no thread needed."""
    client.send_batch([_message(1)])


def test_a_client_made_before_a_fork_sends_from_the_child(fake_segment: FakeSegment) -> None:
    client = SegmentClient(SEGMENT_KEY, fake_segment.url)
    child = multiprocessing.get_context("fork").Process(target=_send_in_child, args=(client,))
    child.start()
    child.join(timeout=30)
    assert child.exitcode == 0
    assert [m["messageId"] for m in fake_segment.messages()] == ["m1"]


def test_a_batch_is_sent_as_built_and_has_arrived_when_the_call_returns(
    fake_segment: FakeSegment,
) -> None:
    sent = [_message(1), _message(2)]
    SegmentClient(SEGMENT_KEY, fake_segment.url).send_batch(sent)
    received = fake_segment.messages()
    assert [m["messageId"] for m in received] == ["m1", "m2"]
    assert {k: received[0][k] for k in sent[0]} == sent[0]  # nothing added to or changed in it


@pytest.mark.parametrize(
    ("status", "permanent", "auth"), [(400, True, False), (500, False, False), (401, False, True)]
)
def test_segment_refusals_carry_their_retry_rule(
    fake_segment: FakeSegment, status: int, permanent: bool, auth: bool
) -> None:
    fake_segment.fail_next(status=status)
    with pytest.raises(DeliveryError) as caught:
        SegmentClient(SEGMENT_KEY, fake_segment.url).send_batch([_message(1)])
    assert (caught.value.permanent, caught.value.auth, caught.value.code) == (
        permanent,
        auth,
        f"http_{status}",
    )


def test_a_429_keeps_segments_retry_after(fake_segment: FakeSegment) -> None:
    fake_segment.fail_next(status=429, retry_after=7)
    with pytest.raises(DeliveryError) as caught:
        SegmentClient(SEGMENT_KEY, fake_segment.url).send_batch([_message(1)])
    assert (caught.value.permanent, caught.value.retry_after) == (False, 7.0)


def test_messages_are_split_into_batches_under_the_librarys_limit() -> None:
    big = [_message(n, padding=30_000) for n in range(40)]  # about 1.2 MB in all
    parts = list(chunks(big))
    assert [len(p) for p in parts] == [15, 15, 10]
    for part in parts:
        assert len(json.dumps([big[i] for i in part])) < LIBRARY_BATCH_BYTES
    assert [i for part in parts for i in part] == list(range(40))
