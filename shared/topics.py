"""Topic builders and parsers for the v1 MQTT contract (DESIGN §3)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from glimpser.shared.errors import ProtocolError
from glimpser.shared.ids import is_valid_id, validate_id

AgentLeaf = Literal["available", "state", "config", "templates"]
StreamLeaf = Literal[
    "state", "frame", "capture", "snapshot", "motion", "event", "set", "demand"
]
_AGENT_LEAVES: frozenset[str] = frozenset({"available", "state", "config", "templates"})
_STREAM_LEAVES: frozenset[str] = frozenset(
    {"state", "frame", "capture", "snapshot", "motion", "event", "set", "demand"}
)
HUB = "hub"  # reserved: glimpser/hub/available is the hub's own availability


@dataclass(frozen=True, slots=True)
class ParsedTopic:
    """A topic split into its parts; ``stream`` is None for agent-level topics."""

    agent: str
    stream: str | None
    leaf: str


@dataclass(frozen=True, slots=True)
class Topics:
    """Builds and parses topics under one prefix (default ``glimpser``)."""

    prefix: str = "glimpser"

    def __post_init__(self) -> None:
        if not self.prefix or any(c in self.prefix for c in "+#") or self.prefix.endswith("/"):
            raise ProtocolError(f"invalid topic prefix {self.prefix!r}")

    def agent(self, agent: str, leaf: AgentLeaf) -> str:
        """``<prefix>/<agent>/<leaf>``."""
        return f"{self.prefix}/{_agent_id(agent)}/{leaf}"

    def stream(self, agent: str, stream: str, leaf: StreamLeaf) -> str:
        """``<prefix>/<agent>/<stream>/<leaf>``."""
        _agent_id(agent)
        validate_id(stream, "stream id")
        return f"{self.prefix}/{agent}/{stream}/{leaf}"

    def hub_available(self) -> str:
        """``<prefix>/hub/available``."""
        return f"{self.prefix}/{HUB}/available"

    def hub_snooze(self) -> str:
        """``<prefix>/hub/snooze``: snooze alert rules or streams over MQTT."""
        return f"{self.prefix}/{HUB}/snooze"

    def all_agents(self, leaf: AgentLeaf) -> str:
        """Wildcard for one agent-level leaf of every agent."""
        return f"{self.prefix}/+/{leaf}"

    def all_streams(self, leaf: StreamLeaf) -> str:
        """Wildcard for one stream-level leaf of every stream."""
        return f"{self.prefix}/+/+/{leaf}"

    def parse(self, topic: str) -> ParsedTopic:
        """Split a topic under this prefix; raise ProtocolError when it is not ours or malformed."""
        head = self.prefix + "/"
        if not topic.startswith(head):
            raise ProtocolError(f"topic {topic!r} is outside prefix {self.prefix!r}")
        parts = topic[len(head) :].split("/")
        if parts == [HUB, "snooze"]:
            return ParsedTopic(HUB, None, "snooze")
        if len(parts) == 2 and parts[1] in _AGENT_LEAVES and _valid_agent(parts[0]):
            return ParsedTopic(parts[0], None, parts[1])
        if (
            len(parts) == 3
            and parts[2] in _STREAM_LEAVES
            and _valid_agent(parts[0])
            and is_valid_id(parts[1])
        ):
            return ParsedTopic(parts[0], parts[1], parts[2])
        raise ProtocolError(f"topic {topic!r} does not match the v1 contract")


def _agent_id(agent: str) -> str:
    if agent == HUB:
        raise ProtocolError(f"{HUB!r} is reserved for the hub's own topics; pick another agent id")
    return validate_id(agent, "agent id")


def _valid_agent(agent: str) -> bool:
    return agent == HUB or is_valid_id(agent)
