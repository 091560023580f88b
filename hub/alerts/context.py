"""What the alert engine knows about a stream: name and latest JPEG (registry), tags (store)."""

from __future__ import annotations

import logging

from glimpser.hub.alerts.rules import EventContext
from glimpser.hub.store.registry import Registry
from glimpser.hub.store.replies import StreamKey
from glimpser.hub.store.templates import TemplateRecord, TemplateRepository
from glimpser.shared.errors import NotFoundError, StorageError
from glimpser.shared.logs import RateLimitedLog

__all__ = ["StreamContexts"]

_LOGGER = logging.getLogger(__name__)


class StreamContexts:
    """The engine's ContextProvider over the hub's registry and template store."""

    def __init__(self, registry: Registry, templates: TemplateRepository) -> None:
        self._registry = registry
        self._templates = templates
        self._log = RateLimitedLog(_LOGGER)

    async def __call__(self, agent_id: str, stream_id: str | None) -> EventContext:
        """The context of ``agent_id.stream_id``; an empty one for agent-level triggers."""
        if stream_id is None:
            return EventContext()
        key = (agent_id, stream_id)
        state = self._registry.stream_state(key)
        record = await self._template(agent_id, state.template_id if state else stream_id)
        name = state.name if state else (record.template.name if record else None)
        tags = frozenset(record.template.tags) if record else frozenset()
        return EventContext(name=name, tags=tags, snapshot=lambda: self._jpeg(key))

    async def _template(self, agent_id: str, template_id: str) -> TemplateRecord | None:
        try:
            record = await self._templates.get(template_id)
        except NotFoundError:
            return None
        except StorageError as err:
            # Without tags only tag-filtered rules miss; the others must still fire.
            self._log.warning("tags", "cannot read template %s for an alert: %s", template_id, err)
            return None
        # Another agent's stream may reuse a stored template's id: its tags are not ours.
        return record if record.template.agent_id == agent_id else None

    def _jpeg(self, key: StreamKey) -> bytes | None:
        frame = self._registry.latest_frame(key)
        return frame.jpeg if frame is not None else None
