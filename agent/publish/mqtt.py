"""The agent's MQTT link: the only module that imports aiomqtt.

One supervisor task keeps a connection up forever (capped, jittered backoff), announces the
agent with a retained ``online`` and an ``offline`` last will, re-sends every retained state
after each reconnect, sends queued messages from the Outbox and hands valid incoming commands,
demand leases and the retained AgentConfig to a MessageHandler. Nothing it receives can crash it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from types import TracebackType
from typing import Self

import aiomqtt

from glimpser.agent.publish.base import MessageHandler
from glimpser.agent.publish.outbox import MAX_CAPTURE_BYTES, MAX_CAPTURES, Kind, Message, Outbox
from glimpser.shared.aio import cancel_and_wait, wait_event
from glimpser.shared.backoff import Backoff
from glimpser.shared.config import BrokerSettings
from glimpser.shared.errors import ProtocolError
from glimpser.shared.logs import RateLimitedLog
from glimpser.shared.models import (
    AgentConfig,
    AgentState,
    Demand,
    Event,
    LocalTemplates,
    StreamState,
    StreamStatus,
)
from glimpser.shared.payloads import parse_command, parse_json
from glimpser.shared.topics import Topics

log = logging.getLogger(__name__)

MAX_INCOMING_BYTES = 16 * 1024  # commands and leases are tiny; anything bigger is hostile
PUBLISH_TIMEOUT = 10.0
CLOSE_TIMEOUT = 5.0


class MqttLink:
    """Async context manager owning the agent's broker connection; a Publisher for runners."""

    def __init__(
        self,
        settings: BrokerSettings,
        agent_id: str,
        handler: MessageHandler,
        *,
        backoff: Backoff | None = None,
        close_timeout: float = CLOSE_TIMEOUT,
        max_captures: int = MAX_CAPTURES,
        max_capture_bytes: int = MAX_CAPTURE_BYTES,
    ) -> None:
        self._settings = settings
        self._agent = agent_id
        self._handler = handler
        self._topics = Topics(settings.prefix)
        self._backoff = backoff or Backoff()
        self._close_timeout = close_timeout
        self._outbox = Outbox(max_captures=max_captures, max_capture_bytes=max_capture_bytes)
        self._stream_states: dict[str, StreamState] = {}
        self._connected = asyncio.Event()
        self._stopping = asyncio.Event()
        self._supervisor: asyncio.Task[None] | None = None
        self._rlog = RateLimitedLog(log)
        self.rejected_messages = 0

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> Self:
        self._supervisor = asyncio.create_task(self._supervise(), name="mqtt link")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stopping.set()
        self._outbox.wake()
        task, self._supervisor = self._supervisor, None
        if task is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(task), self._close_timeout)
        except TimeoutError:
            log.warning("MQTT link did not close within %g s", self._close_timeout)
            if not await cancel_and_wait(task, timeout=2.0):
                log.error("MQTT link ignored cancellation; abandoning it to finish shutdown")

    @property
    def connected(self) -> bool:
        """True while a broker connection is up."""
        return self._connected.is_set()

    async def wait_connected(self) -> None:
        """Return once connected (use with a timeout)."""
        await self._connected.wait()

    @property
    def frames_dropped(self) -> int:
        """Frames not sent: offline, or replaced by a newer one while the previous was sending."""
        return self._outbox.frames_dropped

    @property
    def captures_dropped(self) -> int:
        """Captures dropped because the backlog was full while the broker was away."""
        return self._outbox.captures_dropped

    @property
    def captures_waiting(self) -> int:
        """Captures queued for the broker (not yet acknowledged)."""
        return self._outbox.captures_waiting

    @property
    def queue_depth(self) -> int:
        """Messages waiting for the broker."""
        return self._outbox.depth

    # ------------------------------------------------------------------ Publisher

    def publish_frame(self, stream_id: str, payload: bytes) -> None:
        """Queue a frame (QoS 0); dropped and counted while disconnected."""
        if not self.connected:
            self._outbox.frames_dropped += 1
            return
        self._put("frame", self._topics.stream(self._agent, stream_id, "frame"), payload)

    def publish_capture(self, stream_id: str, payload: bytes) -> None:
        """Queue a capture (QoS 1, not retained); kept while offline up to the backlog bound."""
        self._put("capture", self._topics.stream(self._agent, stream_id, "capture"), payload)

    def publish_snapshot(self, stream_id: str, jpeg: bytes) -> None:
        """Replace the retained snapshot thumbnail (QoS 0, retained)."""
        self._put("snapshot", self._topics.stream(self._agent, stream_id, "snapshot"), jpeg)

    def publish_stream_state(self, state: StreamState) -> None:
        """Replace the retained stream state (QoS 1)."""
        self._stream_states[state.stream_id] = state
        topic = self._topics.stream(self._agent, state.stream_id, "state")
        self._put("state", topic, state.model_dump_json().encode())

    def publish_event(self, event: Event) -> None:
        """Queue an event (QoS 1), kept while offline up to the outbox bound."""
        topic = self._topics.stream(self._agent, event.stream_id, "event")
        self._put("event", topic, event.model_dump_json().encode())

    def publish_motion(self, stream_id: str, motion: bool) -> None:
        """Replace the retained motion state (QoS 1); re-sent after every connect like states."""
        topic = self._topics.stream(self._agent, stream_id, "motion")
        self._put("state", topic, b"ON" if motion else b"OFF")

    def publish_agent_state(self, state: AgentState) -> None:
        """Replace the retained agent state (QoS 1)."""
        topic = self._topics.agent(self._agent, "state")
        self._put("state", topic, state.model_dump_json().encode())

    def publish_local_templates(self, templates: LocalTemplates) -> None:
        """Replace the retained LocalTemplates; re-sent after every connect like all states."""
        topic = self._topics.agent(self._agent, "templates")
        self._put("state", topic, templates.model_dump_json().encode())

    def publish_discovery(self, messages: Mapping[str, bytes]) -> None:
        """Replace retained Home Assistant discovery configs (QoS 1), re-sent after every
        connect like all states; an empty payload clears its topic once."""
        for topic, payload in messages.items():
            self._put("state" if payload else "clear", topic, payload)

    def clear_stream(self, stream_id: str) -> None:
        """Forget a removed stream: empty its retained ``state``, ``snapshot`` and ``motion``."""
        self._stream_states.pop(stream_id, None)
        for leaf in ("state", "snapshot", "motion"):
            self._put("clear", self._topics.stream(self._agent, stream_id, leaf), b"")

    def _put(self, kind: Kind, topic: str, payload: bytes) -> None:
        qos = 0 if kind in ("frame", "snapshot") else 1
        retain = kind in ("state", "snapshot", "clear")
        self._outbox.put(Message(kind, topic, payload, qos, retain))

    # ------------------------------------------------------------------ connection

    async def _supervise(self) -> None:
        while not self._stopping.is_set():
            try:
                await self._session()
            except aiomqtt.MqttError as err:
                self._lost(err)
            finally:
                self._connected.clear()
                self._outbox.drop_frames()
            if not self._stopping.is_set():
                await wait_event(self._stopping, self._backoff.next_delay())

    def _lost(self, err: aiomqtt.MqttError) -> None:
        url = self._settings.url
        if self._backoff.first_failure:
            log.warning(
                "MQTT broker %s unreachable or lost: %s; retrying in the background", url, err
            )
        else:
            log.debug("MQTT broker %s still unreachable: %s", url, err)

    def _client(self) -> aiomqtt.Client:
        s = self._settings
        will = aiomqtt.Will(self._topics.agent(self._agent, "available"), b"offline", 1, True)
        return aiomqtt.Client(
            s.host,
            s.port,
            username=s.username,
            password=s.password,
            identifier=f"glimpser-agent-{self._agent}",
            will=will,
            keepalive=s.keepalive,
            timeout=PUBLISH_TIMEOUT,
        )

    async def _session(self) -> None:
        async with self._client() as client:
            await self._announce(client)
            tasks = {
                asyncio.create_task(self._send(client), name="mqtt send"),
                asyncio.create_task(self._receive(client), name="mqtt receive"),
                asyncio.create_task(self._stopping.wait(), name="mqtt stop"),
            }
            try:
                done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
            for task in done:
                task.result()  # re-raise the MqttError that ended the session
            await self._farewell(client)

    async def _announce(self, client: aiomqtt.Client) -> None:
        await client.publish(self._topics.agent(self._agent, "available"), b"online", 1, True)
        for leaf in ("set", "demand"):
            await client.subscribe(f"{self._topics.prefix}/{self._agent}/+/{leaf}", qos=1)
        await client.subscribe(self._topics.agent(self._agent, "config"), qos=1)
        self._backoff.reset()
        self._outbox.resend_retained()
        self._connected.set()
        try:
            self._handler.on_connected()
        except Exception:  # a bug in a handler must not take the link down
            log.exception("handling the connect failed")
        log.info("connected to MQTT broker %s as agent %s", self._settings.url, self._agent)

    async def _send(self, client: aiomqtt.Client) -> None:
        # Checks the stop flag as well as relying on cancellation: on Python 3.11, wait_for()
        # inside client.publish() can swallow a cancel that races with the PUBACK (gh-86296).
        while not self._stopping.is_set():
            message = self._outbox.take()
            if message is None:
                await self._outbox.wait()
                continue
            try:
                await client.publish(message.topic, message.payload, message.qos, message.retain)
            except BaseException:
                # Cancelled at shutdown too: the farewell (or the next session) sends it again;
                # a possible duplicate is fine, the hub dedupes captures and events by id.
                self._outbox.give_back(message)
                raise

    async def _farewell(self, client: aiomqtt.Client) -> None:
        """Clean shutdown: streams inactive, queued states and events out, then ``offline``."""
        self._connected.clear()
        self._outbox.drop_frames()
        for state in self._stream_states.values():
            if state.status is not StreamStatus.INACTIVE:
                stopped = state.model_copy(update={"status": StreamStatus.INACTIVE})
                self.publish_stream_state(stopped)
        with contextlib.suppress(aiomqtt.MqttError, TimeoutError):
            async with asyncio.timeout(self._close_timeout / 2):
                while (message := self._outbox.take()) is not None:
                    if message.kind != "frame":
                        await client.publish(
                            message.topic, message.payload, message.qos, message.retain
                        )
            topic = self._topics.agent(self._agent, "available")
            await client.publish(topic, b"offline", 1, True, timeout=self._close_timeout / 2)
        log.info("disconnected from MQTT broker %s", self._settings.url)

    # ------------------------------------------------------------------ incoming

    async def _receive(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            payload = message.payload
            raw = bytes(payload) if isinstance(payload, bytes | bytearray) else b""
            self._dispatch(message.topic.value, raw)

    def _dispatch(self, topic: str, payload: bytes) -> None:
        """Validate one incoming message and hand it over; reject (count, log) anything bad."""
        try:
            stream, leaf = self._route(topic, payload)
            if leaf == "config":
                self._config(payload)
            elif leaf == "set":
                self._handler.on_command(stream, parse_command(payload))
            else:
                self._handler.on_demand(stream, parse_json(Demand, payload, "demand"))
        except ProtocolError as err:
            self.rejected_messages += 1
            self._rlog.warning(
                f"reject:{topic.rsplit('/', 1)[-1]}", "rejected message on %s: %s", topic, err
            )
            self._handler.on_rejected()
        except Exception:  # a bug in a handler must not take the link down
            log.exception("handling message on %s failed", topic)

    def _config(self, payload: bytes) -> None:
        if not payload:
            # The hub cleared the retained config (or never set one): keep what runs; an empty
            # assignment comes as an AgentConfig with no templates.
            log.info("the retained config was cleared; keeping the current streams")
            return
        self._handler.on_config(parse_json(AgentConfig, payload, "agent config"))

    def _route(self, topic: str, payload: bytes) -> tuple[str, str]:
        parsed = self._topics.parse(topic)
        if parsed.agent != self._agent:
            raise ProtocolError(f"topic {topic!r} is not for agent {self._agent}")
        if parsed.stream is None:
            if parsed.leaf != "config":
                raise ProtocolError(f"unexpected topic {topic!r}")
            return "", "config"  # parse_json bounds its size
        if parsed.leaf not in ("set", "demand"):
            raise ProtocolError(f"unexpected topic {topic!r}")
        if len(payload) > MAX_INCOMING_BYTES:
            raise ProtocolError(f"payload of {len(payload)} bytes is too big")
        if not self._handler.has_stream(parsed.stream):
            raise ProtocolError(f"unknown stream {parsed.stream!r}")
        return parsed.stream, parsed.leaf
