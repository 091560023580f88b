"""The streams view: live registry streams merged with every stored template.

A template whose agent does not (yet) report it still appears, built from its stored record with
status ``inactive`` (or ``error`` after a failed execution) and ``error`` saying why. Figures an
agent has not measured stay empty or zero; nothing is invented.
"""

from __future__ import annotations

from dataclasses import dataclass

from glimpser.hub.http.keys import Hub
from glimpser.hub.store.replies import StreamKey
from glimpser.hub.store.templates import TemplateRecord
from glimpser.shared.errors import NotFoundError
from glimpser.shared.ids import validate_id
from glimpser.shared.models import StreamInfo, StreamStatus

_PAGE = 1000


@dataclass(frozen=True, slots=True)
class StreamRef:
    """What an ``{id}`` in a stream URL names: a live stream, a stored template, or both."""

    key: StreamKey | None
    record: TemplateRecord | None

    @property
    def agent(self) -> str | None:
        """The agent that runs (or should run) it."""
        if self.key is not None:
            return self.key[0]
        return self.record.template.agent_id if self.record else None

    @property
    def stream(self) -> str:
        """The stream id (the template id when the agent has not reported it)."""
        if self.key is not None:
            return self.key[1]
        assert self.record is not None
        return self.record.template.id


async def all_records(hub: Hub) -> list[TemplateRecord]:
    """Every stored template record."""
    records: list[TemplateRecord] = []
    while True:
        page, total = await hub.templates.list(offset=len(records), limit=_PAGE)
        records += page
        if not page or len(records) >= total:
            return records


async def list_streams(hub: Hub) -> list[StreamInfo]:
    """Every live stream and every template no agent reports, sorted by agent then stream."""
    infos = {key: _live_info(hub, key) for key in hub.registry.stream_keys()}
    live = {(i.agent_id, i.template_id) for i in infos.values()}
    pending = [
        r for r in await all_records(hub) if (r.template.agent_id, r.template.id) not in live
    ]
    taken = {key[1] for key in infos}
    for record in pending:
        key = (record.template.agent_id or "", record.template.id)
        public = record.template.id if record.template.id not in taken else ".".join(key)
        infos[key] = template_info(hub, record, public)
    return [infos[key] for key in sorted(infos)]


async def resolve(hub: Hub, ref: str) -> StreamRef:
    """``stream`` or ``agent.stream`` → live key and/or template record; NotFoundError if none."""
    try:
        key = hub.registry.resolve(ref)
    except NotFoundError:
        record = await _template_for_ref(hub, ref)
        return StreamRef(None, record)
    state = hub.registry.stream_state(key)
    if state is None:
        return StreamRef(key, None)
    try:
        found = await hub.templates.get(state.template_id)
    except NotFoundError:
        return StreamRef(key, None)
    # Another agent's stream may reuse a stored template's id: only the assigned one matches.
    return StreamRef(key, found if found.template.agent_id == key[0] else None)


async def info_of(hub: Hub, ref: StreamRef) -> StreamInfo:
    """The API view of a resolved stream."""
    if ref.key is not None:
        return _live_info(hub, ref.key)
    assert ref.record is not None
    return template_info(hub, ref.record, ref.record.template.id)


def template_info(hub: Hub, record: TemplateRecord, public_id: str) -> StreamInfo:
    """StreamInfo of a template that no agent reports as a stream right now."""
    t = record.template
    online = t.agent_id is not None and hub.registry.agent_online(t.agent_id)
    why = _why_not_running(record, online)
    status = StreamStatus.INACTIVE
    if record.execution_status == StreamStatus.ERROR and record.last_error_message:
        status = StreamStatus.ERROR
        why = f"{why}; last error: {record.last_error_message}"
    return StreamInfo(
        id=public_id,
        name=t.name,
        source=t.source.kind,
        status=status,
        resolution=f"{t.width}x{t.height}" if t.width and t.height else None,
        fps=0.0,
        last_frame_at=record.last_executed_at,
        template_id=t.id,
        agent_id=t.agent_id or "",
        agent_online=online,
        configured_fps=round(1.0 / t.period, 6),
        error=why,
        desired=record.desired,
        updated_at=record.updated_at,
    )


def _why_not_running(record: TemplateRecord, online: bool) -> str:
    agent = record.template.agent_id
    if agent is None:
        return "not assigned to an agent"
    if not record.template.enabled:
        return "disabled"
    if record.desired == "stopped":
        return "stopped"
    if not online:
        return f"agent {agent} is offline"
    return f"waiting for agent {agent} to run it"


def _live_info(hub: Hub, key: StreamKey) -> StreamInfo:
    return hub.registry.stream_info(key, hub.relay.viewers(key))


async def _template_for_ref(hub: Hub, ref: str) -> TemplateRecord:
    agent, _, stream = ref.rpartition(".")
    validate_id(stream, "stream id")
    if agent:
        validate_id(agent, "agent id")
    try:
        record = await hub.templates.get(stream)
    except NotFoundError as err:
        raise NotFoundError(f"unknown stream {ref!r}") from err
    if agent and record.template.agent_id != agent:
        raise NotFoundError(f"unknown stream {ref!r}")
    return record
