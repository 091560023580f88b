"""StreamContexts: stream name and latest JPEG from the registry, tags from the template store."""

from __future__ import annotations

from glimpser.hub.alerts.context import StreamContexts
from glimpser.hub.store.db import Database
from glimpser.hub.store.registry import Registry
from glimpser.hub.store.templates import SqliteTemplates
from glimpser.shared.codec import decode_frame
from glimpser.shared.models import Template
from tests.hub.support import frame, state


async def test_context_of_a_stream_and_of_an_agent(db: Database) -> None:
    templates = SqliteTemplates(db)
    tagged = {"name": "Porch", "source": {"kind": "test"}, "tags": ["Outdoor"]}
    await templates.create(Template.model_validate({"id": "cam", "agent_id": "a1", **tagged}))
    registry = Registry()
    registry.set_stream_state(state("a1", "cam"))
    registry.set_stream_state(state("a2", "cam"))  # another agent reusing the template id
    contexts = StreamContexts(registry, templates)

    ctx = await contexts("a1", "cam")
    assert (ctx.name, ctx.tags) == ("Cam", frozenset({"Outdoor"}))
    assert ctx.snapshot is not None and ctx.snapshot() is None  # no frame yet
    payload = frame(32, 24)
    registry.set_frame(("a1", "cam"), decode_frame(payload))
    assert ctx.snapshot() == decode_frame(payload).jpeg  # read when the alert is made

    other = await contexts("a2", "cam")
    assert other.tags == frozenset()
    unknown = await contexts("a1", "gone")
    assert (unknown.name, unknown.tags) == (None, frozenset())
    agent = await contexts("a1", None)
    assert (agent.name, agent.snapshot) == (None, None)
