"""Outbox drop policies: bounded, latest-wins, counted."""

from __future__ import annotations

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
