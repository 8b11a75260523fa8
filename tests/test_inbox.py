"""The webhook inbox: durable appends, deduplication across processes, torn writes, drain cursor."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from bot.inbox import Inbox
from tests.helpdesk_support import Clock


@pytest.fixture
def open_inbox():
    """Opens inboxes (one per simulated process) and closes them after the test."""
    opened = []

    def make(*args, **kwargs):
        opened.append(Inbox(*args, **kwargs))
        return opened[-1]

    yield make
    for inbox in opened:
        inbox.close()


def _clock() -> Clock:
    return Clock(datetime(2025, 3, 3, 9, 0, tzinfo=timezone.utc))


def test_append_then_drain_in_order_and_acknowledge(tmp_path, open_inbox):
    inbox = open_inbox(tmp_path, _clock())
    for n in range(5):
        assert inbox.append("zendesk", f"body {n}".encode(), {"h": str(n)}) == "accepted"
    entries = inbox.pending(3)
    assert [e.body for e in entries] == [b"body 0", b"body 1", b"body 2"]
    assert entries[1].headers == {"h": "1"}
    inbox.ack(entries[1])
    assert [e.body for e in inbox.pending(10)] == [b"body 2", b"body 3", b"body 4"]
    reopened = open_inbox(tmp_path, _clock())  # a restart resumes after what was acknowledged
    assert [e.body for e in reopened.pending(10)] == [b"body 2", b"body 3", b"body 4"]


def test_retries_and_replays_are_recognised_even_from_another_process(tmp_path, open_inbox):
    clock = _clock()
    one, two = open_inbox(tmp_path, clock), open_inbox(tmp_path, clock)  # two processes on one data dir
    assert one.append("zendesk", b"x", dedupe_key="inv-1", replay_key="sig-1") == "accepted"
    assert two.append("zendesk", b"x", dedupe_key="inv-1", replay_key="sig-2") == "duplicate"
    assert two.append("zendesk", b"x", dedupe_key="inv-9", replay_key="sig-1") == "replay"
    assert one.backlog() == 1
    clock.advance(one.window + 1)
    assert two.append("zendesk", b"x", dedupe_key="inv-1", replay_key="sig-1") == "accepted"  # forgotten after the window


def test_a_torn_append_is_cut_and_never_drained(tmp_path, open_inbox):
    clock = _clock()
    inbox = open_inbox(tmp_path, clock)
    inbox.append("zendesk", b"whole")
    segment = next(tmp_path.glob("*.jsonl"))
    with open(segment, "ab") as fh:
        fh.write(b'{"at": "2025-03-03T09:00:00+00:00", "source": "zen')  # a writer died here
    assert [e.body for e in inbox.pending()] == [b"whole"]
    other = open_inbox(tmp_path, clock)
    assert other.append("zendesk", b"next") == "accepted"
    assert [e.body for e in other.pending()] == [b"whole", b"next"]


def test_drained_segments_are_deleted_after_the_window(tmp_path, open_inbox):
    clock = _clock()
    inbox = open_inbox(tmp_path, clock, window_seconds=60, segment_seconds=60)
    inbox.append("zendesk", b"old")
    clock.advance(3600)
    inbox.append("zendesk", b"new")
    entries = inbox.pending()
    inbox.ack(entries[-1])
    assert len(list(tmp_path.glob("*.jsonl"))) == 1  # the old payload is gone from the disk
    assert inbox.pending() == []


def test_only_one_drainer_at_a_time(tmp_path, open_inbox):
    clock = _clock()
    one, two = open_inbox(tmp_path, clock), open_inbox(tmp_path, clock)
    with one.draining() as first:
        with two.draining() as second:
            assert first and not second
    with two.draining() as again:
        assert again
