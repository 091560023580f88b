"""Live stream updates: pushes a stream's StreamInfo to SSE listeners when a viewer would see a
change (status, error, availability, desired, resolution, name, a real fps move), never for the
periodic state refresh that only moves counters and timestamps."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from glimpser.hub.store.registry import Registry
from glimpser.hub.store.replies import StreamKey
from glimpser.shared.models import StreamInfo

__all__ = ["FPS_CHANGE", "StreamFeed"]

Publish = Callable[[str, Any], None]

FPS_CHANGE = 0.1
"""Relative move of the measured fps worth telling the dashboard (measurement jitter is less)."""

# Fields whose every change is shown; frames, bytes, timestamps and viewers move all the time.
_WATCHED = ("id", "name", "status", "error", "agent_online", "desired", "resolution")


class StreamFeed:
    """Owns the ``stream``, ``stream_removed`` and ``motion`` live messages."""

    def __init__(
        self, registry: Registry, publish: Publish, viewers: Callable[[StreamKey], int]
    ) -> None:
        self._registry = registry
        self._publish = publish
        self._viewers = viewers
        self._shown: dict[StreamKey, StreamInfo] = {}

    def stream_changed(self, key: StreamKey) -> None:
        """The stream's state was reported: publish it if a viewer would see a difference."""
        try:
            info = self._registry.stream_info(key, self._viewers(key))
        except LookupError:
            return  # removed meanwhile; stream_removed tells listeners
        shown = self._shown.get(key)
        if shown is not None and not _differs(shown, info):
            return
        self._shown[key] = info
        self._publish("stream", info.model_dump(mode="json"))

    def agent_changed(self, agent: str) -> None:
        """The agent's availability changed: every stream of it looks different."""
        for key in self._registry.stream_keys():
            if key[0] == agent:
                self.stream_changed(key)

    def stream_removed(self, key: StreamKey) -> None:
        """The stream's retained state was cleared."""
        if self._shown.pop(key, None) is not None:
            self._publish("stream_removed", {"agent_id": key[0], "stream_id": key[1]})

    def motion(self, key: StreamKey, on: bool | None) -> None:
        """The stream's motion flag changed (None: cleared)."""
        self._publish("motion", {"agent_id": key[0], "stream_id": key[1], "motion": on})


def _differs(old: StreamInfo, new: StreamInfo) -> bool:
    if any(getattr(old, name) != getattr(new, name) for name in _WATCHED):
        return True
    if (old.fps == 0) != (new.fps == 0):
        return True
    return abs(new.fps - old.fps) > FPS_CHANGE * max(old.fps, 1.0)
