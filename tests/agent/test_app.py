"""The Agent end to end on the agent side: real runners, real link, real Mosquitto."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import aiomqtt

from glimpser.agent.app import Agent
from glimpser.agent.config import AgentSettings
from glimpser.shared.backoff import Backoff
from glimpser.shared.codec import decode_frame
from glimpser.shared.config import BrokerSettings
from glimpser.shared.models import FrameMeta, LocalTemplates, StreamStatus, Template
from tests.agent.conftest import retained
from tests.agent.tcpproxy import TcpProxy
from tests.helpers import wait_for


def _settings(broker: Any, tmp_path: Path) -> AgentSettings:
    return AgentSettings.model_validate(
        {
            "agent_id": "edge",
            "broker": {"host": broker.host, "port": broker.port},
            "data_dir": str(tmp_path),
            "templates": [
                {
                    "id": "yard",
                    "name": "Yard",
                    "fps": 10,
                    "keepalive": 1,
                    "source": {"kind": "test", "pattern": "motion", "width": 160, "height": 120},
                },
                {"id": "off", "name": "Off", "enabled": False, "source": {"kind": "test"}},
            ],
        }
    )


async def _stream_status(broker: Any, stream: str) -> str:
    payload = await retained(broker.host, broker.port, f"glimpser/edge/{stream}/state")
    return str(json.loads(payload)["status"])


async def test_agent_runs_streams_and_obeys_commands(mosquitto_broker: Any, tmp_path: Path) -> None:
    b = mosquitto_broker
    async with Agent(_settings(b, tmp_path)) as agent:
        await wait_for(lambda: agent.link.connected, timeout=10)

        async def status_is(stream: str, status: str) -> bool:
            return await _stream_status(b, stream) == status

        await wait_for(lambda: status_is("yard", "active"), timeout=10)
        await wait_for(lambda: status_is("off", "inactive"), timeout=10)
        state = json.loads(await retained(b.host, b.port, "glimpser/edge/state"))
        assert state["streams"] == ["yard", "off"] and state["version"]

        async with aiomqtt.Client(b.host, b.port) as peer:
            await peer.publish("glimpser/edge/yard/set", b'{"action":"stop","request_id":"x1"}', 1)
            await peer.publish("glimpser/edge/yard/set", b"{bad", 1)
            await peer.publish("glimpser/edge/nope/set", b"ON", 1)
        await wait_for(lambda: status_is("yard", "inactive"), timeout=10)
        yard = json.loads(await retained(b.host, b.port, "glimpser/edge/yard/state"))
        assert yard["request_id"] == "x1" and yard["desired"] == "stopped"

        async def rejected_shown() -> bool:
            st = json.loads(await retained(b.host, b.port, "glimpser/edge/state"))
            return bool(st["rejected_messages"] == 2)

        await wait_for(rejected_shown, timeout=10, interval=0.2)
    assert await retained(b.host, b.port, "glimpser/edge/available") == b"offline"
    assert await _stream_status(b, "yard") == "inactive"


# --------------------------------------------------------------------------- hub-managed config


def _hub_template(tid: str, **extra: Any) -> dict[str, Any]:
    base = {"id": tid, "name": tid.title(), "fps": 10, "source": SMALL}
    return base | extra


SMALL = {"kind": "test", "width": 96, "height": 64}


async def _publish_config(broker: Any, revision: Any, *templates: Any, **desired: str) -> None:
    body = {"revision": revision, "templates": list(templates), "desired": desired}
    async with aiomqtt.Client(broker.host, broker.port) as hub:
        await hub.publish("glimpser/edge/config", json.dumps(body).encode(), 1, retain=True)


async def _agent_state(broker: Any) -> dict[str, Any]:
    state: dict[str, Any] = json.loads(
        await retained(broker.host, broker.port, "glimpser/edge/state")
    )
    return state


async def _no_retained(broker: Any, topic: str, within: float = 1.0) -> bool:
    try:
        await retained(broker.host, broker.port, topic, within=within)
    except TimeoutError:
        return True
    return False


def _active(agent: Agent, stream: str) -> bool:
    runner = agent.runners.get(stream)
    return runner is not None and runner.state.status is StreamStatus.ACTIVE


async def test_hub_config_is_applied_as_a_diff(broker: Any, tmp_path: Path) -> None:
    b = broker
    async with Agent(_settings(b, tmp_path)) as agent:
        await wait_for(lambda: agent.link.connected, timeout=10)
        local = LocalTemplates.model_validate_json(
            await retained(b.host, b.port, "glimpser/edge/templates")
        )
        assert [t.id for t in local.templates] == ["yard", "off"]
        yard = agent.runners["yard"]

        await _publish_config(b, 1, _hub_template("a"), _hub_template("b"))
        await wait_for(lambda: _active(agent, "a") and _active(agent, "b"), timeout=10)

        async def acked(revision: int) -> bool:
            return bool((await _agent_state(b))["config_revision"] == revision)

        await wait_for(lambda: acked(1), timeout=10, interval=0.2)
        a, b_runner = agent.runners["a"], agent.runners["b"]

        # A changed rate restarts that stream only; the others keep their object and counters.
        started_at, frames = b_runner.state.started_at, b_runner.state.frames
        await _publish_config(b, 2, _hub_template("a", fps=4), _hub_template("b"))
        await wait_for(lambda: agent.runners["a"] is not a, timeout=10)
        assert agent.runners["a"].template.fps == 4
        assert agent.runners["b"] is b_runner and agent.runners["yard"] is yard
        assert b_runner.state.started_at == started_at and b_runner.state.frames >= frames
        await wait_for(lambda: acked(2), timeout=10, interval=0.2)

        # Desired only: the same runner stops in place.
        await _publish_config(b, 3, _hub_template("a", fps=4), _hub_template("b"), b="stopped")
        await wait_for(lambda: b_runner.state.status is StreamStatus.INACTIVE, timeout=10)
        assert agent.runners["b"] is b_runner and b_runner.state.desired == "stopped"

        # Invalid: rejected, counted, nothing touched.
        runners = agent.runners
        await _publish_config(b, "three", _hub_template("a"))
        await wait_for(lambda: agent.link.rejected_messages == 1, timeout=10)
        assert agent.runners == runners and agent.assigner.revision == 3

        # Removed: the stream stops and its retained topics are cleared; a clash with a local
        # template is skipped and reported; a template of another agent is ignored.
        assert not await _no_retained(b, "glimpser/edge/a/state")
        async with aiomqtt.Client(b.host, b.port) as watcher:
            await watcher.subscribe("glimpser/edge/yard/event", qos=1)
            await _publish_config(
                b,
                4,
                _hub_template("b"),
                _hub_template("yard", fps=1),
                _hub_template("c", agent_id="other"),
                b="stopped",
            )
            async with asyncio.timeout(10):
                message = await anext(watcher.messages)
        assert isinstance(message.payload, bytes)
        event = json.loads(message.payload)
        assert event["type"] == "template_skipped" and "local wins" in event["data"]["reason"]
        await wait_for(lambda: "a" not in agent.runners, timeout=10)
        assert set(agent.runners) == {"yard", "off", "b"} and agent.runners["yard"] is yard
        assert yard.template.fps == 10
        await wait_for(lambda: _no_retained(b, "glimpser/edge/a/state"), timeout=10)
        assert await _no_retained(b, "glimpser/edge/a/snapshot")
        await wait_for(lambda: acked(4), timeout=10, interval=0.2)
        state = await _agent_state(b)
        assert state["rejected_messages"] == 1 and state["streams"] == ["yard", "off", "b"]


async def test_cached_config_runs_without_broker(broker: Any, tmp_path: Path) -> None:
    b = broker
    settings = _settings(b, tmp_path)
    async with Agent(settings) as agent:
        await _publish_config(b, 7, _hub_template("hubcam"))
        await wait_for(
            lambda: _active(agent, "hubcam") and agent.assigner.revision == 7, timeout=10
        )
    await b.stop()

    async with Agent(settings, mqtt_backoff=Backoff(base=0.1, cap=0.5)) as agent:
        # Running from the state file before (and without) any broker.
        assert set(agent.runners) == {"yard", "off", "hubcam"}
        await wait_for(lambda: _active(agent, "hubcam") and _active(agent, "yard"), timeout=10)
        assert not agent.link.connected and agent.state().config_revision == 7

        await b.start()  # no persistence: the broker comes back empty, without the config
        await wait_for(lambda: agent.link.connected, timeout=10)
        await wait_for(lambda: _stream_status(b, "hubcam"), timeout=10)
        assert await _stream_status(b, "hubcam") == "active"
        assert (await _agent_state(b))["config_revision"] == 7
        assert _active(agent, "hubcam")


async def test_local_start_stop_survives_a_restart(mosquitto_broker: Any, tmp_path: Path) -> None:
    b = mosquitto_broker
    settings = _settings(b, tmp_path)
    async with Agent(settings) as agent:
        await wait_for(lambda: agent.link.connected, timeout=10)
        async with aiomqtt.Client(b.host, b.port) as peer:
            await peer.publish("glimpser/edge/yard/set", b"OFF", 1)
            await peer.publish("glimpser/edge/off/set", b"ON", 1)
        await wait_for(lambda: _active(agent, "off"), timeout=10)

        async def persisted() -> bool:
            return await agent.store.all_desired() == {"yard": "stopped", "off": "started"}

        await wait_for(persisted, timeout=10)
    async with Agent(settings) as agent:
        assert agent.runners["yard"].desired == "stopped"
        assert agent.runners["off"].desired == "started"


# --------------------------------------------------------------------------- captures


async def test_captures_arrive_and_outlive_an_outage(mosquitto_broker: Any, tmp_path: Path) -> None:
    b = mosquitto_broker
    got: dict[str, FrameMeta] = {}

    async def collect(client: aiomqtt.Client) -> None:
        async for message in client.messages:
            assert isinstance(message.payload, bytes)
            meta = decode_frame(message.payload).meta
            assert meta is not None and meta.capture_id is not None
            got[meta.capture_id] = meta

    async with TcpProxy(b.host, b.port) as proxy, aiomqtt.Client(b.host, b.port) as hub:
        await hub.subscribe("glimpser/edge/+/capture", qos=1)
        collector = asyncio.create_task(collect(hub))
        settings = _settings(b, tmp_path).model_copy(
            update={
                "broker": BrokerSettings(host=proxy.host, port=proxy.port),
                "capture_backlog": 2,
                "templates": [
                    Template.model_validate(_hub_template("cap", fps=10, capture={"interval": 1}))
                ],
            }
        )
        try:
            async with Agent(settings, mqtt_backoff=Backoff(base=0.1, cap=0.3)) as agent:
                await wait_for(lambda: agent.link.connected, timeout=10)
                await hub.publish(
                    "glimpser/edge/cap/set", b'{"action":"snapshot","request_id":"q"}', 1
                )
                await wait_for(lambda: any(m.request_id == "q" for m in got.values()), timeout=10)
                manual = [m for m in got.values() if m.reason == "manual"]
                assert [m.request_id for m in manual] == ["q"]

                cut = time.time()
                await proxy.cut()
                await wait_for(lambda: not agent.link.connected, timeout=10)
                # Three more interval captures while away: the backlog of two drops the oldest.
                await wait_for(lambda: agent.link.captures_dropped >= 1, timeout=10)
                away = time.time()
                await proxy.restore()
                runner = agent.runners["cap"]

                def all_accounted() -> bool:
                    return len(got) + agent.link.captures_dropped == runner.captures

                await wait_for(all_accounted, timeout=10, message=lambda: f"{len(got)} received")
                # Dropped: the oldest of the outage; kept and delivered: the newest.
                missing = set(range(runner.captures)) - {m.seq for m in got.values()}
                assert len(missing) == agent.link.captures_dropped
                kept = [m.seq for m in got.values() if cut <= m.captured_at < away]
                assert kept and min(kept) > max(missing)
        finally:
            collector.cancel()
            await asyncio.gather(collector, return_exceptions=True)
    intervals = sorted(m.seq for m in got.values() if m.reason == "interval")
    assert len(intervals) >= 3


# --------------------------------------------------------------------------- motion


async def test_motion_reaches_the_broker(mosquitto_broker: Any, tmp_path: Path) -> None:
    b = mosquitto_broker
    # A visitor crosses for 1 s of every 2 s: motion turns ON, then OFF 0.3 s after it left.
    visitor = {"kind": "test", "pattern": "visitor", "visit_every": 2, "width": 160, "height": 120}
    template = {
        "id": "yard",
        "name": "Yard",
        "fps": 10,
        "source": visitor,
        "motion": {"off_delay": 0.3, "min_frames": 2},
        "capture": {"on_events": ["motion"]},
    }
    settings = _settings(b, tmp_path).model_copy(
        update={"templates": [Template.model_validate(template)]}
    )
    seen: list[tuple[str, bytes]] = []

    async def collect(client: aiomqtt.Client) -> None:
        async for message in client.messages:
            assert isinstance(message.payload, bytes)
            seen.append((message.topic.value.rsplit("/", 1)[-1], message.payload))

    async with aiomqtt.Client(b.host, b.port) as hub:
        for leaf in ("motion", "event", "capture"):
            await hub.subscribe(f"glimpser/edge/yard/{leaf}", qos=1)
        collector = asyncio.create_task(collect(hub))
        try:
            async with Agent(settings) as agent:
                await wait_for(lambda: agent.link.connected, timeout=10)

                def motions() -> list[bytes]:
                    return [payload for leaf, payload in seen if leaf == "motion"]

                await wait_for(lambda: b"ON" in motions(), timeout=10)
                await wait_for(lambda: motions()[-1] == b"OFF", timeout=10)
                assert await retained(b.host, b.port, "glimpser/edge/yard/motion") == b"OFF"
        finally:
            collector.cancel()
            await asyncio.gather(collector, return_exceptions=True)
    events = [json.loads(p) for leaf, p in seen if leaf == "event"]
    start = next(e for e in events if e["type"] == "motion" and e["data"]["phase"] == "start")
    end = next(e for e in events if e["type"] == "motion" and e["data"]["phase"] == "end")
    assert start["data"]["fraction"] > 0 and end["data"]["start_id"] == start["id"]
    assert end["data"]["duration"] > 0
    captures = [decode_frame(p).meta for leaf, p in seen if leaf == "capture"]
    assert start["data"]["capture_id"] in {m.capture_id for m in captures if m is not None}
