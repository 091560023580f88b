"""Pure dispatch: a received MQTT message → registry and relay calls, or a counted rejection."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Protocol, TypeVar

from glimpser.hub.ingest.feed import StreamFeed
from glimpser.hub.metrics import HubMetrics
from glimpser.hub.store.registry import Registry
from glimpser.hub.store.replies import StreamKey
from glimpser.shared.codec import MAX_FRAME_BYTES, DecodedFrame, decode_frame
from glimpser.shared.errors import ProtocolError
from glimpser.shared.logs import RateLimitedLog
from glimpser.shared.models import (
    AgentState,
    Event,
    LocalTemplates,
    SnoozeRequest,
    StreamState,
)
from glimpser.shared.payloads import MAX_JSON_BYTES, parse_json
from glimpser.shared.topics import HUB, ParsedTopic, Topics

_LOGGER = logging.getLogger(__name__)

FrameSink = Callable[[StreamKey, bytes], None]
M = TypeVar("M", AgentState, StreamState, Event, LocalTemplates, SnoozeRequest)


class IngestSink(Protocol):
    """Where validated messages that need storing go; must return at once (no I/O)."""

    def agent_templates(self, agent: str, local: LocalTemplates) -> None:
        """An agent published the templates of its own YAML."""

    def capture(self, key: StreamKey, frame: DecodedFrame) -> None:
        """A capture (frame with metadata) arrived on the reliable capture topic."""

    def stream_state(self, state: StreamState) -> None:
        """A stream reported its state (after the registry recorded it)."""


class AlertInputs(Protocol):
    """The alert engine's sync inputs; each returns at once (the engine queues the work)."""

    def submit(self, event: Event) -> None:
        """An agent's event."""

    def agent_availability(self, agent_id: str, online: bool, at: datetime | None = None) -> None:
        """An agent's ``available`` flag."""

    def stream_status(
        self,
        agent_id: str,
        stream_id: str,
        status: str,
        error: str | None = None,
        at: datetime | None = None,
    ) -> None:
        """One stream state report (every report, not only changes)."""


_MOTION = {b"ON": True, b"OFF": False, b"": None}  # empty: the retained flag was cleared


class Rejected(ProtocolError):
    """A message the hub refuses; ``reason`` is the metrics label."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class Router:
    """Routes one message at a time; never raises on bad input."""

    def __init__(
        self,
        topics: Topics,
        registry: Registry,
        metrics: HubMetrics,
        frames: FrameSink,
        max_frame_bytes: int = MAX_FRAME_BYTES,
        *,
        sink: IngestSink | None = None,
        alerts: AlertInputs | None = None,
        feed: StreamFeed | None = None,
        snoozer: Callable[[SnoozeRequest], None] | None = None,
    ) -> None:
        self._topics = topics
        self._registry = registry
        self._metrics = metrics
        self._frames = frames
        self._max_frame_bytes = max_frame_bytes
        self._sink = sink
        self._alerts = alerts
        self._feed = feed
        self._snoozer = snoozer
        self._log = RateLimitedLog(_LOGGER)

    def route(self, topic: str, payload: bytes) -> None:
        """Apply one message; a bad one is counted by reason and logged (rate-limited)."""
        try:
            kind = self._dispatch(topic, payload)
        except Rejected as err:
            self._reject(err.reason, topic, str(err))
        except ProtocolError as err:
            self._reject("invalid_payload", topic, str(err))
        except Exception:  # a bug in one handler must not stop the ingest loop
            self._metrics.rejected["internal_error"] += 1
            _LOGGER.exception("failed to handle message on %s", topic[:200])
        else:
            if kind is not None:
                self._metrics.received[kind] += 1

    def _dispatch(self, topic: str, payload: bytes) -> str | None:
        try:
            parsed = self._topics.parse(topic)
        except ProtocolError as err:
            raise Rejected("bad_topic", str(err)) from err
        if parsed.agent == HUB:
            if parsed.leaf == "snooze":
                return self._snooze(payload)
            return None  # our own availability (or another hub's) echoed back
        if parsed.stream is None:
            return self._agent_message(parsed, payload)
        return self._stream_message(parsed, (parsed.agent, parsed.stream), payload)

    def _snooze(self, payload: bytes) -> str:
        request = _json(SnoozeRequest, payload, "snooze request")
        if self._snoozer is None:
            raise Rejected("unexpected_topic", "this hub does not take snooze requests")
        self._snoozer(request)
        return "snooze"

    def _agent_message(self, parsed: ParsedTopic, payload: bytes) -> str:
        if parsed.leaf == "available":
            self._availability(parsed.agent, payload)
        elif parsed.leaf == "state":
            state = None if not payload else _json(AgentState, payload, "agent state")
            if state is not None and state.agent_id != parsed.agent:
                raise _mismatch(parsed, state.agent_id)
            self._registry.set_agent_state(state, parsed.agent)
        elif parsed.leaf == "templates":
            # An empty retained message means the agent has no YAML templates any more.
            local = LocalTemplates() if not payload else _json(LocalTemplates, payload, "templates")
            if self._sink is not None:
                self._sink.agent_templates(parsed.agent, local)
        else:
            raise Rejected("unexpected_topic", f"the hub does not consume {parsed.leaf!r}")
        return f"agent_{parsed.leaf}"

    def _availability(self, agent: str, payload: bytes) -> None:
        if not payload:
            # A cleared flag means the agent was removed on purpose: no offline alert.
            self._registry.forget_available(agent)
        elif payload in (b"online", b"offline"):
            online = payload == b"online"
            self._registry.set_available(agent, online)
            if self._alerts is not None:
                self._alerts.agent_availability(agent, online)
        else:
            raise Rejected("invalid_payload", "availability must be 'online' or 'offline'")
        if self._feed is not None:
            self._feed.agent_changed(agent)

    def _stream_message(self, parsed: ParsedTopic, key: StreamKey, payload: bytes) -> str:
        leaf = parsed.leaf
        if leaf == "state":
            self._stream_state(parsed, key, payload)
        elif leaf == "frame":
            frame = self._jpeg(payload)
            if self._registry.set_frame(key, frame):
                self._frames(key, frame.jpeg)
        elif leaf == "snapshot":
            if payload:  # an empty retained snapshot just clears the retained message
                self._registry.set_snapshot(key, self._jpeg(payload))
        elif leaf == "capture":
            self._capture(key, payload)
        elif leaf == "event":
            event = _json(Event, payload, "event")
            if (event.agent_id, event.stream_id) != key:
                raise _mismatch(parsed, f"{event.agent_id}/{event.stream_id}")
            if self._alerts is not None:
                self._alerts.submit(event)
        elif leaf == "motion":
            self._motion(key, payload)
        else:
            raise Rejected("unexpected_topic", f"the hub does not consume {leaf!r}")
        return f"stream_{leaf}"

    def _stream_state(self, parsed: ParsedTopic, key: StreamKey, payload: bytes) -> None:
        if not payload:
            self._registry.remove_stream(key)
            if self._feed is not None:
                self._feed.stream_removed(key)
            return
        state = _json(StreamState, payload, "stream state")
        if (state.agent_id, state.stream_id) != key:
            raise _mismatch(parsed, f"{state.agent_id}/{state.stream_id}")
        self._registry.set_stream_state(state)
        if self._sink is not None:
            self._sink.stream_state(state)
        if self._alerts is not None:
            self._alerts.stream_status(*key, state.status.value, state.error, state.updated_at)
        if self._feed is not None:
            self._feed.stream_changed(key)

    def _motion(self, key: StreamKey, payload: bytes) -> None:
        if payload not in _MOTION:
            raise Rejected("invalid_payload", "motion must be 'ON' or 'OFF'")
        on = _MOTION[payload]
        if self._registry.set_motion(key, on) and self._feed is not None:
            self._feed.motion(key, on)

    def _capture(self, key: StreamKey, payload: bytes) -> None:
        frame = self._jpeg(payload)
        if frame.meta is None:
            raise Rejected("invalid_payload", "a capture must carry its metadata (COM segment)")
        if self._sink is not None:
            self._sink.capture(key, frame)

    def _jpeg(self, payload: bytes) -> DecodedFrame:
        if len(payload) > self._max_frame_bytes:
            raise Rejected("oversize", f"frame of {len(payload)} bytes is over the limit")
        try:
            return decode_frame(payload, self._max_frame_bytes)
        except ProtocolError as err:
            raise Rejected("not_jpeg", str(err)) from err

    def _reject(self, reason: str, topic: str, message: str) -> None:
        self._metrics.rejected[reason] += 1
        # Keyed by reason only so hostile topic names cannot grow the limiter's table.
        self._log.warning(reason, "rejected message on %s: %s", topic[:200], message)


def _json(model: type[M], payload: bytes, what: str) -> M:
    if len(payload) > MAX_JSON_BYTES:
        raise Rejected("oversize", f"{what} of {len(payload)} bytes is over the limit")
    return parse_json(model, payload, what)


def _mismatch(parsed: ParsedTopic, claimed: str) -> Rejected:
    where = parsed.agent if parsed.stream is None else f"{parsed.agent}/{parsed.stream}"
    return Rejected("id_mismatch", f"payload claims {claimed!r} but the topic says {where!r}")
