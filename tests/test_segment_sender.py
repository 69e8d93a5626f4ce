"""The Segment library's traps around processes: fork and exit."""

from __future__ import annotations

import multiprocessing
import os

from app.delivery.segment_sender import SegmentSender
from app.simulators.segment import FakeSegment
from tests.conftest import SEGMENT_KEY


def _track_in_child(sender: SegmentSender) -> None:
    """Runs in a forked child: the parent's client has no consumer thread here."""
    client = sender.client()
    client.track(user_id="u-child", event="Forked", message_id=f"m-{os.getpid()}")
    client.flush()


def test_a_client_made_before_a_fork_is_replaced_in_the_child(fake_segment: FakeSegment) -> None:
    sender = SegmentSender(SEGMENT_KEY, fake_segment.url)  # type: ignore[attr-defined]
    parent_client = sender.client()
    child = multiprocessing.get_context("fork").Process(target=_track_in_child, args=(sender,))
    child.start()
    child.join(timeout=30)
    assert child.exitcode == 0  # the child's flush returned: it had a working client
    assert [m["event"] for m in fake_segment.messages()] == ["Forked"]
    assert sender.client() is parent_client  # the parent keeps its own


def test_closing_flushes_what_is_still_queued(fake_segment: FakeSegment) -> None:
    sender = SegmentSender(SEGMENT_KEY, fake_segment.url)  # type: ignore[attr-defined]
    sender.client().track(user_id="u1", event="Queued", message_id="m-queued")
    sender.close()  # SIGTERM / worker exit: atexit alone would only join
    assert [m["messageId"] for m in fake_segment.messages()] == ["m-queued"]  # already sent
