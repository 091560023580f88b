"""Agents and streams as their retained MQTT messages describe them, plus the latest frames."""

from __future__ import annotations

from dataclasses import dataclass

from glimpser.hub.store.replies import ReplyWaiters, StreamKey
from glimpser.shared.codec import DecodedFrame
from glimpser.shared.errors import GlimpserError, NotFoundError
from glimpser.shared.ids import validate_id
from glimpser.shared.models import AgentState, StreamInfo, StreamState, StreamStatus

__all__ = ["AmbiguousIdError", "Registry", "StreamKey"]


class AmbiguousIdError(GlimpserError, LookupError):
    """A bare stream id names streams on more than one agent."""


@dataclass(slots=True)
class _Agent:
    online: bool = False
    state: AgentState | None = None


@dataclass(slots=True)
class _Stream:
    state: StreamState
    # One frame and one snapshot per stream: memory is bounded by the number of streams.
    frame: DecodedFrame | None = None
    snapshot: DecodedFrame | None = None


class Registry:
    """The hub's view of the fleet; every entry can be rebuilt from retained messages."""

    def __init__(self) -> None:
        self._agents: dict[str, _Agent] = {}
        self._streams: dict[StreamKey, _Stream] = {}
        # Kept apart from _streams: the retained motion flag may arrive before the state.
        self._motion: dict[StreamKey, bool] = {}
        self.replies = ReplyWaiters()

    # ------------------------------------------------------------------ updates (from ingest)

    def set_available(self, agent: str, online: bool) -> None:
        """Record the agent's retained ``available`` flag."""
        self._agents.setdefault(agent, _Agent()).online = online

    def forget_available(self, agent: str) -> None:
        """An empty retained ``available``: the agent is gone; treat it as offline."""
        if agent in self._agents:
            self._agents[agent].online = False

    def set_agent_state(self, state: AgentState | None, agent: str) -> None:
        """Record (or clear, with None) the agent's own state."""
        self._agents.setdefault(agent, _Agent()).state = state

    def set_stream_state(self, state: StreamState) -> None:
        """Record a stream's latest state and answer any command waiting for it."""
        key = (state.agent_id, state.stream_id)
        entry = self._streams.get(key)
        if entry is None:
            self._streams[key] = _Stream(state)
        else:
            entry.state = state
        self.replies.resolve(state)

    def remove_stream(self, key: StreamKey) -> None:
        """Forget a stream (its retained state was cleared)."""
        self._streams.pop(key, None)
        self._motion.pop(key, None)

    def set_motion(self, key: StreamKey, on: bool | None) -> bool:
        """Record the retained ``motion`` flag (None: cleared); True when it changed."""
        before = self._motion.get(key)
        if on is None:
            self._motion.pop(key, None)
        else:
            self._motion[key] = on
        return before != on

    def set_frame(self, key: StreamKey, frame: DecodedFrame) -> bool:
        """Keep ``frame`` as the stream's latest; False when the stream is unknown."""
        entry = self._streams.get(key)
        if entry is None:
            return False
        entry.frame = frame
        return True

    def set_snapshot(self, key: StreamKey, frame: DecodedFrame) -> bool:
        """Keep the retained thumbnail, served until a full frame arrives."""
        entry = self._streams.get(key)
        if entry is None:
            return False
        entry.snapshot = frame
        return True

    # ------------------------------------------------------------------ queries

    def resolve(self, ref: str) -> StreamKey:
        """``stream`` or ``agent.stream`` → key; InvalidIdError, NotFoundError, AmbiguousIdError."""
        if "." in ref:
            agent, _, stream = ref.partition(".")
            key = (validate_id(agent, "agent id"), validate_id(stream, "stream id"))
            if key not in self._streams:
                raise NotFoundError(f"unknown stream {ref!r}")
            return key
        validate_id(ref, "stream id")
        matches = sorted(k for k in self._streams if k[1] == ref)
        if not matches:
            raise NotFoundError(f"unknown stream {ref!r}")
        if len(matches) > 1:
            names = ", ".join(f"{a}.{s}" for a, s in matches)
            raise AmbiguousIdError(f"stream id {ref!r} is ambiguous; use one of {names}")
        return matches[0]

    def motion(self, key: StreamKey) -> bool | None:
        """The stream's last ``motion`` flag (True while motion is on), None when never sent."""
        return self._motion.get(key)

    def motion_flags(self) -> dict[StreamKey, bool]:
        """Every stream's motion flag."""
        return dict(self._motion)

    def stream_keys(self) -> list[StreamKey]:
        """Every known stream, sorted by agent then stream."""
        return sorted(self._streams)

    def stream_state(self, key: StreamKey) -> StreamState | None:
        """The stream's latest reported state, or None when unknown."""
        entry = self._streams.get(key)
        return entry.state if entry else None

    def agent_ids(self) -> set[str]:
        """Every agent seen over MQTT (by availability, state or a stream)."""
        return set(self._agents) | {agent for agent, _ in self._streams}

    def agent_online(self, agent: str) -> bool:
        """True when the agent's retained ``available`` says online."""
        entry = self._agents.get(agent)
        return entry is not None and entry.online

    def agents_online(self) -> int:
        """How many agents are online."""
        return sum(1 for a in self._agents.values() if a.online)

    def agent_state(self, agent: str) -> AgentState | None:
        """The agent's latest self-report."""
        entry = self._agents.get(agent)
        return entry.state if entry else None

    def latest_frame(self, key: StreamKey) -> DecodedFrame | None:
        """The newest full frame, else the retained snapshot, else None."""
        entry = self._streams.get(key)
        if entry is None:
            return None
        return entry.frame or entry.snapshot

    def stream_info(self, key: StreamKey, viewers: int = 0) -> StreamInfo:
        """The API view of one stream; NotFoundError when unknown."""
        entry = self._streams.get(key)
        if entry is None:
            raise NotFoundError(f"unknown stream {key[0]}.{key[1]}")
        state = entry.state
        online = self.agent_online(key[0])
        status, error = state.status, state.error
        if not online:
            status, error = StreamStatus.INACTIVE, f"agent {key[0]} is offline"
        return StreamInfo(
            id=self.public_id(key),
            name=state.name,
            source=state.source,
            status=status,
            resolution=_resolution(entry),
            fps=state.fps if online else 0.0,
            last_frame_at=state.last_frame_at,
            template_id=state.template_id,
            agent_id=state.agent_id,
            agent_online=online,
            configured_fps=state.configured_fps,
            error=error,
            desired=state.desired,
            frames=state.frames,
            bytes=state.bytes,
            viewers=viewers,
            started_at=state.started_at,
            updated_at=state.updated_at,
            motion=self._motion.get(key) if online else None,
        )

    def public_id(self, key: StreamKey) -> str:
        """The bare stream id when unique across agents, else ``agent.stream``."""
        clash = any(k[1] == key[1] and k != key for k in self._streams)
        return f"{key[0]}.{key[1]}" if clash else key[1]


def _resolution(entry: _Stream) -> str | None:
    if entry.frame is not None:
        return f"{entry.frame.width}x{entry.frame.height}"
    if entry.state.width and entry.state.height:
        return f"{entry.state.width}x{entry.state.height}"
    return None
