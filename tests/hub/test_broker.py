"""EmbeddedBroker: serves a real aiomqtt client; a taken port is a PortInUseError."""

from __future__ import annotations

import asyncio
import socket

import aiomqtt
import pytest

from glimpser.hub.broker import EmbeddedBroker
from glimpser.shared.errors import PortInUseError
from tests.helpers import free_port


async def test_serves_a_real_client_with_retained_messages() -> None:
    port = free_port()
    async with EmbeddedBroker("127.0.0.1", port):
        async with aiomqtt.Client("127.0.0.1", port, identifier="pub") as pub:
            await pub.publish("glimpser/a1/available", b"online", qos=1, retain=True)
        async with aiomqtt.Client("127.0.0.1", port, identifier="sub") as sub:
            await sub.subscribe("glimpser/+/available", qos=1)
            async with asyncio.timeout(5):
                message = await anext(aiter(sub.messages))
            assert message.payload == b"online" and message.retain


async def test_taken_port_is_port_in_use_error() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(PortInUseError, match=f"port {port} on 127.0.0.1 .*--mqtt-port"):
            async with EmbeddedBroker("127.0.0.1", port):
                pass


async def test_second_broker_on_same_port_is_port_in_use_error() -> None:
    port = free_port()
    async with EmbeddedBroker("127.0.0.1", port):
        with pytest.raises(PortInUseError):
            async with EmbeddedBroker("127.0.0.1", port):
                pass


async def _collect(client: aiomqtt.Client, seconds: float) -> list[tuple[str, bytes]]:
    got: list[tuple[str, bytes]] = []
    try:
        async with asyncio.timeout(seconds):
            async for message in client.messages:
                assert isinstance(message.payload, bytes)
                got.append((message.topic.value, message.payload))
    except TimeoutError:
        pass
    return got


async def test_retained_messages_reach_only_matching_subscribers_once() -> None:
    """amqtt 0.12.1 sends every retained message matching *any* client's filter on connect."""
    port = free_port()
    async with EmbeddedBroker("127.0.0.1", port):
        async with aiomqtt.Client("127.0.0.1", port, identifier="writer") as writer:
            await writer.publish("g/a/state", b"A", qos=1, retain=True)
            await writer.publish("g/a/config", b"C", qos=1, retain=True)
        async with aiomqtt.Client("127.0.0.1", port, identifier="other") as other:
            await other.subscribe("g/+/config", qos=1)
            async with aiomqtt.Client("127.0.0.1", port, identifier="reader") as reader:
                await reader.subscribe("g/+/state", qos=1)
                got = await _collect(reader, 1.0)
    assert got == [("g/a/state", b"A")]
