"""StreamSet applies a wanted set as a diff; untouched runners keep their object and counters."""

from __future__ import annotations

from typing import Any

from glimpser.agent.capture.runner import StreamRunner
from glimpser.agent.streams import Diff, StreamSet, Wanted, diff
from glimpser.shared.models import Desired, StreamStatus, Template
from tests.agent.conftest import FakePublisher
from tests.helpers import wait_for


def _t(tid: str, **extra: Any) -> Template:
    base: dict[str, Any] = {
        "id": tid,
        "name": tid.title(),
        "source": {"kind": "test", "width": 64, "height": 48},
        "fps": 20,
    }
    return Template.model_validate(base | extra)


def _wanted(*templates: Template, stopped: tuple[str, ...] = ()) -> dict[str, Wanted]:
    return {t.id: Wanted(t, "stopped" if t.id in stopped else "started") for t in templates}


def test_diff_kinds() -> None:
    before = _wanted(_t("a"), _t("b"), _t("c"), _t("d"))
    after = _wanted(_t("a"), _t("b", fps=5), _t("c"), _t("e"), stopped=("c",))
    assert diff(before, after) == Diff(
        started=("e",), removed=("d",), restarted=("b",), toggled=("c",)
    )
    assert not diff(after, dict(after))
    # ``enabled`` lives in Wanted.desired: flipping it alone is not a restart.
    flipped = {"a": Wanted(_t("a", enabled=False), "stopped")}
    assert diff({"a": before["a"]}, flipped) == Diff(toggled=("a",))


async def test_apply_touches_only_what_changed(publisher: FakePublisher) -> None:
    removed: list[str] = []

    def factory(template: Template, desired: Desired) -> StreamRunner:
        return StreamRunner(template, "edge", publisher, desired=desired)

    async with StreamSet(factory, removed.append) as streams:
        await streams.apply(_wanted(_t("a"), _t("b"), _t("c")))
        a, b, c = (streams.runners[x] for x in "abc")
        await wait_for(lambda: all(r.state.frames >= 3 for r in (a, b, c)), timeout=5)

        started_at = a.state.started_at
        change = await streams.apply(_wanted(_t("a"), _t("b", fps=5), _t("c")))
        assert change == Diff(restarted=("b",))
        assert streams.runners["a"] is a and streams.runners["c"] is c
        assert streams.runners["b"] is not b and b.state.status is StreamStatus.INACTIVE
        assert streams.runners["b"].template.fps == 5
        frames = a.state.frames
        await wait_for(lambda: a.state.frames > frames + 2, timeout=5)  # never reset
        assert a.state.started_at == started_at

        change = await streams.apply(_wanted(_t("a"), _t("b", fps=5), _t("c"), stopped=("c",)))
        assert change == Diff(toggled=("c",)) and streams.runners["c"] is c
        await wait_for(lambda: c.state.status is StreamStatus.INACTIVE, timeout=5)
        assert c.state.desired == "stopped"

        change = await streams.apply(_wanted(_t("b", fps=5), _t("c"), _t("d"), stopped=("c",)))
        assert change == Diff(started=("d",), removed=("a",))
        assert removed == ["a"] and set(streams.runners) == {"b", "c", "d"}
        assert a.state.status is StreamStatus.INACTIVE
        assert streams.runners["c"] is c
        runners = list(streams.runners.values())
    assert all(r.state.status is StreamStatus.INACTIVE for r in runners)
