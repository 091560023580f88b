"""The broker fixtures themselves: both kinds accept MQTT, keep retained messages, restart."""

from __future__ import annotations

import asyncio
import socket

import aiomqtt
import pytest

from tests.brokers import BrokerHandle
from tests.helpers import free_port, port_open, wait_for


async def _first_message(client: aiomqtt.Client) -> aiomqtt.Message:
    async with asyncio.timeout(5):
        async for message in client.messages:
            return message
    raise AssertionError("unreachable")


async def test_handle_describes_a_loopback_broker(broker: BrokerHandle) -> None:
    assert broker.kind in ("mosquitto", "amqtt")
    assert broker.host == "127.0.0.1"
    assert broker.running
    assert broker.settings.host == "127.0.0.1"
    assert broker.settings.port == broker.port
    assert port_open(broker.host, broker.port)


async def test_retained_message_and_restart_on_same_port(broker: BrokerHandle) -> None:
    topic = f"glimpser/fixture-{broker.kind}/available"
    async with aiomqtt.Client(broker.host, broker.port, identifier="pub") as pub:
        await pub.publish(topic, b"online", qos=1, retain=True)
    async with aiomqtt.Client(broker.host, broker.port, identifier="sub") as sub:
        await sub.subscribe(topic, qos=1)
        message = await _first_message(sub)
        assert message.payload == b"online"
        assert message.retain

    port = broker.port
    await broker.stop()
    assert not broker.running
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((broker.host, port), timeout=1).close()
    with pytest.raises(aiomqtt.MqttError):
        async with aiomqtt.Client(broker.host, port, identifier="refused", timeout=2):
            pass

    await broker.start()
    assert broker.port == port
    async with aiomqtt.Client(broker.host, broker.port, identifier="again") as client:
        await client.subscribe("glimpser/#")
        await client.publish("glimpser/fixture/x/state", b"{}", qos=1)
        message = await _first_message(client)
        assert message.topic.matches("glimpser/fixture/x/state")


async def test_client_sees_the_disconnect_when_the_broker_dies(broker: BrokerHandle) -> None:
    async with aiomqtt.Client(broker.host, broker.port, identifier="victim") as client:
        await client.subscribe("glimpser/#")
        await broker.stop()
        with pytest.raises(aiomqtt.MqttError):
            async with asyncio.timeout(10):
                async for _ in client.messages:
                    pass


async def test_graceful_stop_frees_the_port(broker: BrokerHandle) -> None:
    await broker.stop(graceful=True)
    assert not port_open(broker.host, broker.port)
    await broker.start()
    assert port_open(broker.host, broker.port)


async def test_wait_for_returns_the_value_and_times_out_clearly() -> None:
    values = iter([0, 0, 7])
    assert await wait_for(lambda: next(values), timeout=1, interval=0) == 7

    async def never() -> bool:
        return False

    with pytest.raises(TimeoutError, match=r"never.*waiting for Godot"):
        await wait_for(never, timeout=0.05, message="waiting for Godot")


def test_free_port_is_bindable() -> None:
    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
