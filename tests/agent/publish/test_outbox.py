"""Outbox drop policies: bounded, latest-wins, counted."""

from __future__ import annotations

import pytest

from glimpser.agent.publish.outbox import Message, Outbox


def _msg(kind: str, topic: str, payload: bytes = b"x") -> Message:
    qos = 0 if kind in ("frame", "snapshot") else 1
    return Message(kind, topic, payload, qos, kind in ("state", "snapshot"))  # type: ignore[arg-type]


def test_frames_latest_wins_per_topic() -> None:
    box = Outbox()
    box.put(_msg("frame", "a/frame", b"1"))
    box.put(_msg("frame", "a/frame", b"2"))
    box.put(_msg("frame", "b/frame", b"3"))
    assert box.frames_dropped == 1
    taken = [box.take(), box.take(), box.take()]
    assert [m.payload for m in taken if m] == [b"2", b"3"]


def test_priority_states_events_snapshots_frames() -> None:
    box = Outbox()
    box.put(_msg("frame", "f"))
    box.put(_msg("snapshot", "s"))
    box.put(_msg("event", "e"))
    box.put(_msg("state", "st"))
    kinds = []
    while (m := box.take()) is not None:
        kinds.append(m.kind)
    assert kinds == ["state", "event", "snapshot", "frame"]


def test_events_bounded_oldest_dropped() -> None:
    box = Outbox(max_events=3)
    for i in range(5):
        box.put(_msg("event", "e", str(i).encode()))
    assert box.events_dropped == 2
    assert [box.take().payload for _ in range(3)] == [b"2", b"3", b"4"]  # type: ignore[union-attr]


def test_retained_are_resent_and_failed_ones_come_back() -> None:
    box = Outbox()
    box.put(_msg("state", "a", b"old"))
    box.put(_msg("state", "a", b"new"))
    first = box.take()
    assert first is not None and first.payload == b"new" and box.take() is None
    box.give_back(first)
    assert box.take() == first
    box.resend_retained()
    again = box.take()
    assert again is not None and again.payload == b"new"


def test_captures_are_bounded_oldest_dropped_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    box = Outbox(max_captures=3, max_capture_bytes=10)
    for i in range(5):
        box.put(_msg("capture", "a/capture", bytes([i])))
    assert box.captures_dropped == 2 and box.captures_waiting == 3
    assert "capture backlog full" in caplog.text
    assert [box.take().payload for _ in range(3)] == [b"\x02", b"\x03", b"\x04"]  # type: ignore[union-attr]
    box.put(_msg("capture", "a/capture", b"123456"))
    box.put(_msg("capture", "a/capture", b"7890abcd"))  # 14 bytes > 10: the older one goes
    assert box.captures_dropped == 3 and box.captures_waiting == 1
    message = box.take()
    assert message is not None and message.payload == b"7890abcd"
    box.give_back(message)  # a failed publish keeps it, first in line
    assert box.captures_waiting == 1 and box.take() == message


def test_priority_puts_captures_after_events_before_snapshots() -> None:
    box = Outbox()
    box.put(_msg("frame", "a/frame"))
    box.put(_msg("snapshot", "a/snapshot"))
    box.put(_msg("capture", "a/capture"))
    box.put(_msg("event", "a/event"))
    kinds = [m.kind for m in iter(box.take, None)]
    assert kinds == ["event", "capture", "snapshot", "frame"]


def test_clear_forgets_the_retained_message_and_is_sent_once() -> None:
    box = Outbox()
    box.put(_msg("state", "a/state", b"active"))
    box.put(Message("clear", "a/state", b"", 1, True))
    assert [m.kind for m in iter(box.take, None)] == ["clear"]
    box.resend_retained()
    assert box.take() is None and box.latest("a/state") is None
    # A new retained value cancels a pending clear: the clear must not wipe it afterwards.
    box.put(Message("clear", "a/state", b"", 1, True))
    box.put(_msg("state", "a/state", b"back"))
    assert [(m.kind, m.payload) for m in iter(box.take, None)] == [("state", b"back")]
