"""The hub's one MQTT connection: supervised reconnects, subscriptions and publishing.

This is the only hub module that imports aiomqtt (aiomqtt v3 changes its API; one seam to fix).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable
from types import TracebackType

import aiomqtt

from glimpser.hub.ingest.router import Router
from glimpser.shared.aio import cancel_and_wait
from glimpser.shared.backoff import Backoff
from glimpser.shared.config import BrokerSettings
from glimpser.shared.errors import TransportError
from glimpser.shared.models import Command, Demand
from glimpser.shared.topics import Topics

_LOGGER = logging.getLogger(__name__)

# Bound on aiomqtt's incoming queue; when full aiomqtt drops the newest message with a warning.
# Frames are latest-wins and states are retained and re-sent, so such a loss heals itself.
MAX_QUEUED_INCOMING = 1000
_PUBLISH_TIMEOUT = 5.0


class MqttIngest:
    """Keeps one broker connection alive for as long as the context is open."""

    def __init__(
        self,
        settings: BrokerSettings,
        router: Router,
        *,
        client_id: str | None = None,
        on_connect: Callable[[], None] | None = None,
    ) -> None:
        self._settings = settings
        self._router = router
        self._topics = Topics(settings.prefix)
        self._client_id = client_id or f"glimpser-hub-{uuid.uuid4().hex[:8]}"
        self._client: aiomqtt.Client | None = None
        self._task: asyncio.Task[None] | None = None
        self._backoff = Backoff()
        self._on_connect = on_connect
        self.ready = asyncio.Event()

    @property
    def connected(self) -> bool:
        """True while connected and subscribed."""
        return self._client is not None and self.ready.is_set()

    async def __aenter__(self) -> MqttIngest:
        """Start the supervisor; it connects in the background and retries forever."""
        self._task = asyncio.create_task(self._supervise(), name="mqtt ingest")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Announce ``offline`` (a clean disconnect suppresses the LWT), then disconnect."""
        client = self._client
        if client is not None:
            with contextlib.suppress(aiomqtt.MqttError, TimeoutError):
                await client.publish(
                    self._topics.hub_available(), "offline", qos=1, retain=True, timeout=2.0
                )
        if self._task is not None:
            if not await cancel_and_wait(self._task, timeout=5.0):
                _LOGGER.error("MQTT client ignored cancellation; abandoning it to shut down")
            self._task = None

    async def publish_command(self, agent: str, stream: str, command: Command) -> None:
        """Send ``command`` on ``<prefix>/<agent>/<stream>/set`` (QoS 1)."""
        topic = self._topics.stream(agent, stream, "set")
        await self._publish(topic, command.model_dump_json(exclude_none=True).encode())

    async def publish_demand(self, agent: str, stream: str, demand: Demand) -> None:
        """Send ``demand`` on ``<prefix>/<agent>/<stream>/demand`` (QoS 1)."""
        topic = self._topics.stream(agent, stream, "demand")
        await self._publish(topic, demand.model_dump_json(exclude_none=True).encode())

    async def publish_retained(self, topic: str, payload: bytes) -> None:
        """Publish ``payload`` retained with QoS 1 on ``topic``."""
        await self._publish(topic, payload, retain=True)

    async def _publish(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        client = self._client
        if client is None or not self.ready.is_set():
            raise TransportError(f"not connected to the broker at {self._settings.url}")
        try:
            await client.publish(topic, payload, qos=1, retain=retain, timeout=_PUBLISH_TIMEOUT)
        except aiomqtt.MqttError as err:
            raise TransportError(f"publish to {topic} failed: {err}") from err

    async def _supervise(self) -> None:
        while True:
            try:
                await self._session()
            except aiomqtt.MqttError as err:
                self._lost(err)
            finally:
                self._client = None
                self.ready.clear()
            await asyncio.sleep(self._backoff.next_delay())

    def _lost(self, err: aiomqtt.MqttError) -> None:
        # Loud once, then quiet: a broker that is down for an hour must not flood the journal.
        if self._backoff.first_failure:
            _LOGGER.warning("MQTT broker %s unreachable: %s; retrying", self._settings.url, err)
        else:
            _LOGGER.debug("MQTT broker %s still unreachable: %s", self._settings.url, err)

    async def _session(self) -> None:
        async with self._make_client() as client:
            await client.publish(self._topics.hub_available(), "online", qos=1, retain=True)
            for topic, qos in self._subscriptions():
                await client.subscribe(topic, qos=qos)
            self._client = client
            self.ready.set()
            self._backoff.reset()
            _LOGGER.info("connected to MQTT broker %s", self._settings.url)
            if self._on_connect is not None:
                # Retained state the hub owns (agent configs) may be gone after a broker restart.
                self._on_connect()
            async for message in client.messages:
                self._router.route(message.topic.value, _as_bytes(message.payload))

    def _make_client(self) -> aiomqtt.Client:
        s = self._settings
        will = aiomqtt.Will(self._topics.hub_available(), "offline", qos=1, retain=True)
        return aiomqtt.Client(
            s.host,
            s.port,
            username=s.username,
            password=s.password,
            identifier=self._client_id,
            keepalive=s.keepalive,
            will=will,
            timeout=10.0,
            max_queued_incoming_messages=MAX_QUEUED_INCOMING,
        )

    def _subscriptions(self) -> list[tuple[str, int]]:
        t = self._topics
        return [
            (t.all_agents("available"), 1),
            (t.hub_snooze(), 1),
            (t.all_agents("state"), 1),
            (t.all_agents("templates"), 1),
            (t.all_streams("capture"), 1),
            (t.all_streams("state"), 1),
            (t.all_streams("event"), 1),
            (t.all_streams("motion"), 1),
            (t.all_streams("snapshot"), 0),
            (t.all_streams("frame"), 0),
        ]


def _as_bytes(payload: object) -> bytes:
    if isinstance(payload, bytes | bytearray):
        return bytes(payload)
    if payload is None:
        return b""
    return str(payload).encode()
