"""Topic builders and the parser of the v1 MQTT contract (DESIGN §3)."""

from __future__ import annotations

from typing import get_args

import pytest

from glimpser.shared.errors import InvalidIdError, ProtocolError
from glimpser.shared.topics import AgentLeaf, ParsedTopic, StreamLeaf, Topics

T = Topics()
AGENT_LEAVES: tuple[AgentLeaf, ...] = get_args(AgentLeaf)
STREAM_LEAVES: tuple[StreamLeaf, ...] = get_args(StreamLeaf)


def test_builders_follow_the_contract() -> None:
    assert T.agent("pi1", "available") == "glimpser/pi1/available"
    assert T.agent("pi1", "state") == "glimpser/pi1/state"
    assert T.agent("pi1", "config") == "glimpser/pi1/config"
    assert T.stream("pi1", "cam1", "frame") == "glimpser/pi1/cam1/frame"
    assert T.stream("pi1", "cam1", "set") == "glimpser/pi1/cam1/set"
    assert T.hub_available() == "glimpser/hub/available"
    assert T.all_agents("state") == "glimpser/+/state"
    assert T.all_streams("event") == "glimpser/+/+/event"


def test_contract_leaves_are_all_there() -> None:
    assert {"available", "state", "config"} <= set(AGENT_LEAVES)
    assert {"state", "frame", "snapshot", "motion", "event", "set", "demand"} <= set(STREAM_LEAVES)


@pytest.mark.parametrize("prefix", ["glimpser", "site1/glimpser", "g"])
@pytest.mark.parametrize("leaf", AGENT_LEAVES)
def test_agent_topics_round_trip(prefix: str, leaf: AgentLeaf) -> None:
    topics = Topics(prefix)
    topic = topics.agent("pi-1", leaf)
    assert topic.startswith(prefix + "/")
    assert topics.parse(topic) == ParsedTopic("pi-1", None, leaf)


@pytest.mark.parametrize("prefix", ["glimpser", "site1/glimpser"])
@pytest.mark.parametrize("leaf", STREAM_LEAVES)
def test_stream_topics_round_trip(prefix: str, leaf: StreamLeaf) -> None:
    topics = Topics(prefix)
    assert topics.parse(topics.stream("pi_1", "cam-2", leaf)) == ParsedTopic("pi_1", "cam-2", leaf)


def test_hub_availability_parses_as_the_reserved_hub() -> None:
    assert T.parse(T.hub_available()) == ParsedTopic("hub", None, "available")


@pytest.mark.parametrize("bad", ["a+b", "+", "#", "a/b", "..", "A", "", "a" * 64, "caméra"])
def test_builders_reject_hostile_ids(bad: str) -> None:
    with pytest.raises(InvalidIdError):
        T.agent(bad, "state")
    with pytest.raises(InvalidIdError):
        T.stream("pi1", bad, "frame")
    with pytest.raises(InvalidIdError):
        T.stream(bad, "cam1", "frame")


@pytest.mark.parametrize(
    "topic",
    [
        "other/pi1/state",
        "glimpserx/pi1/state",
        "glimpser",
        "glimpser/",
        "/glimpser/pi1/state",
        "glimpser/pi1",
        "glimpser/pi1/unknown",
        "glimpser/pi1/cam1/unknown",
        "glimpser/pi1/cam1/frame/extra",
        "glimpser/pi1/available/",
        "glimpser//state",
        "glimpser/pi1//frame",
        "glimpser/+/state",
        "glimpser/#",
        "glimpser/pi1/+/frame",
        "glimpser/Pi1/state",
        "glimpser/pi1/Cam/frame",
        "glimpser/../state",
        "glimpser/pi1/cam1/FRAME",
        "glimpser/" + "a" * 64 + "/state",
        "glimpser/pi1/cam1/available",  # an agent leaf at stream level
        "glimpser/pi1/frame",  # a stream leaf at agent level
        "homeassistant/device/pi1/config",
    ],
)
def test_parse_rejects_foreign_and_malformed_topics(topic: str) -> None:
    with pytest.raises(ProtocolError):
        T.parse(topic)


@pytest.mark.parametrize("prefix", ["", "a+", "#", "glimpser/", "x/#"])
def test_invalid_prefixes_are_rejected(prefix: str) -> None:
    with pytest.raises(ProtocolError):
        Topics(prefix)


def test_agent_id_hub_is_reserved() -> None:
    with pytest.raises(ProtocolError):
        T.agent("hub", "available")
