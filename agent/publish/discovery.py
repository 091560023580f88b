"""Home Assistant MQTT discovery: every agent is an HA device, every stream a set of entities.

Pure payload builders plus a small diffing ``Discovery`` that says what to (re)publish when the
set of streams changes; MqttLink sends the result retained (QoS 1) and re-sends it after every
connect. Two modes (DESIGN §3, notes/ecosystem-conventions.md §1):

- ``device`` (HA 2024.12+): one retained payload on ``<prefix>/device/<agent>/config`` with
  ``dev``, ``o``, shared availability and a ``cmps`` map of every stream's components. A removed
  stream's components stay as platform-only ``{"p": …}`` entries for the rest of the run (HA's
  documented removal step) and are omitted after the next restart.
- ``entity`` (older HA, openHAB): one retained payload per entity on
  ``<prefix>/<component>/<agent>_<stream>_<key>/config``; a removed stream's topics get an empty
  retained payload, which deletes the entities.

Every topic in a payload is one the agent really serves: snapshots feed the ``camera``, the
``<stream>/set`` topic takes HA's plain ``ON``/``OFF``/``PRESS`` (shared.models.PLAIN_COMMANDS)
and the retained StreamState JSON feeds the switch and sensors. Discovery is left in place on a
clean shutdown: the entities go unavailable through ``<agent>/available`` = ``offline``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import Field

from glimpser.shared.models import Model, Template
from glimpser.shared.topics import Topics

log = logging.getLogger(__name__)

MANUFACTURER = "Glimpser"
MODEL = "Glimpser agent"
# Well under the usual broker caps (AWS IoT 128 KiB, many hosted brokers 256 KiB); a bigger
# device payload still goes out, with a warning that entity mode splits it.
PAYLOAD_WARN_BYTES = 96 * 1024

# HA's plain payloads on ``<stream>/set`` (shared.models.PLAIN_COMMANDS: start, stop, snapshot).
_ON, _OFF, _PRESS = "ON", "OFF", "PRESS"

Mode = Literal["device", "entity"]


class HomeAssistantSettings(Model):
    """Home Assistant MQTT discovery of this agent and its streams."""

    enabled: bool = True
    discovery_prefix: Annotated[
        str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}(/[A-Za-z0-9_-]{1,64}){0,3}$")
    ] = "homeassistant"
    mode: Mode = Field(
        "device",
        description="device: one device-based config (HA 2024.12+); entity: one per entity",
    )


@dataclass(frozen=True, slots=True)
class DiscoveredStream:
    """What discovery needs to know about one running stream."""

    id: str
    name: str
    source: str
    motion: bool

    @classmethod
    def from_template(cls, template: Template) -> DiscoveredStream:
        """From a running template; motion follows the rule of capture.detect.Detectors."""
        settings = template.motion
        motion = template.source.kind != "website" and settings is not None and settings.enabled
        return cls(template.id, template.name, template.source.kind, motion)


# --------------------------------------------------------------------------- pure builders


def unique_id(agent_id: str, stream_id: str, key: str) -> str:
    """``glimpser_<agent>_<stream>_<key>``: stable across restarts and modes."""
    return f"glimpser_{agent_id}_{stream_id}_{key}"


def device_block(agent_id: str, version: str) -> dict[str, Any]:
    """The ``dev`` block: one HA device per agent."""
    return {
        "ids": [f"glimpser_{agent_id}"],
        "name": f"Glimpser {agent_id}",
        "mf": MANUFACTURER,
        "mdl": MODEL,
        "sw": version,
    }


def origin_block(version: str) -> dict[str, Any]:
    """The ``o`` block HA logs with every discovery."""
    # No "url": the origin block's URL is optional, and we publish none rather than a guess.
    return {"name": "glimpser", "sw": version}


def availability(topics: Topics, agent_id: str) -> dict[str, Any]:
    """Availability on the agent's retained ``online``/``offline`` (LWT) topic."""
    return {
        "avty_t": topics.agent(agent_id, "available"),
        "pl_avail": "online",
        "pl_not_avail": "offline",
    }


def stream_components(
    agent_id: str, stream: DiscoveredStream, topics: Topics
) -> dict[str, dict[str, Any]]:
    """One stream's entities by key (``camera``, ``running``, …), each with its platform ``p``.

    Topics use ``~`` (the stream's base topic) to keep the payload small.
    """
    base = topics.stream(agent_id, stream.id, "state").rsplit("/", 1)[0]

    def entity(key: str, platform: str, name: str, **options: Any) -> dict[str, Any]:
        return {
            "p": platform,
            "name": name,
            "uniq_id": unique_id(agent_id, stream.id, key),
            "~": base,
            **options,
        }

    out = {
        "camera": entity("camera", "camera", stream.name, t="~/snapshot"),
        "running": entity(
            "running",
            "switch",
            f"{stream.name} running",
            cmd_t="~/set",
            stat_t="~/state",
            val_tpl="{{ 'ON' if value_json.desired == 'started' else 'OFF' }}",
            pl_on=_ON,
            pl_off=_OFF,
            ic="mdi:cctv",
        ),
        "snapshot": entity(
            "snapshot",
            "button",
            f"{stream.name} snapshot",
            cmd_t="~/set",
            pl_prs=_PRESS,
            ic="mdi:camera",
        ),
        "fps": entity(
            "fps",
            "sensor",
            f"{stream.name} fps",
            stat_t="~/state",
            val_tpl="{{ value_json.fps }}",
            unit_of_meas="fps",
            stat_cla="measurement",
            ic="mdi:speedometer",
        ),
        "status": entity(
            "status",
            "sensor",
            f"{stream.name} status",
            stat_t="~/state",
            val_tpl="{{ value_json.status }}",
            json_attr_t="~/state",
            json_attr_tpl="{{ {'error': value_json.error} | tojson }}",
            ent_cat="diagnostic",
            ic="mdi:list-status",
        ),
    }
    if stream.motion:
        out["motion"] = entity(
            "motion",
            "binary_sensor",
            f"{stream.name} motion",
            stat_t="~/motion",
            dev_cla="motion",
            pl_on="ON",
            pl_off="OFF",
        )
    return out


def device_config(
    agent_id: str,
    version: str,
    streams: Iterable[DiscoveredStream],
    topics: Topics,
    removed: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The device-based discovery payload; ``removed`` maps component ids to their platform
    (kept as platform-only entries, which makes HA delete those entities)."""
    cmps: dict[str, dict[str, Any]] = {
        cid: {"p": platform} for cid, platform in sorted((removed or {}).items())
    }
    for stream in sorted(streams, key=lambda s: s.id):
        for key, comp in stream_components(agent_id, stream, topics).items():
            cmps[component_id(stream.id, key)] = comp
    return {
        "dev": device_block(agent_id, version),
        "o": origin_block(version),
        **availability(topics, agent_id),
        "qos": 1,
        "cmps": cmps,
    }


def component_id(stream_id: str, key: str) -> str:
    """A component's id inside the device payload: ``<stream>_<key>``."""
    return f"{stream_id}_{key}"


def device_topic(prefix: str, agent_id: str) -> str:
    """``<prefix>/device/<agent>/config``."""
    return f"{prefix}/device/{agent_id}/config"


def entity_topic(prefix: str, platform: str, agent_id: str, stream_id: str, key: str) -> str:
    """``<prefix>/<platform>/<agent>_<stream>_<key>/config``."""
    return f"{prefix}/{platform}/{agent_id}_{stream_id}_{key}/config"


def entity_configs(
    agent_id: str,
    version: str,
    streams: Iterable[DiscoveredStream],
    topics: Topics,
    prefix: str,
) -> dict[str, dict[str, Any]]:
    """Per-entity discovery payloads by config topic (for HA before device discovery)."""
    shared = {
        "dev": device_block(agent_id, version),
        "o": origin_block(version),
        **availability(topics, agent_id),
        "qos": 1,
    }
    out: dict[str, dict[str, Any]] = {}
    for stream in sorted(streams, key=lambda s: s.id):
        for key, comp in stream_components(agent_id, stream, topics).items():
            config = dict(comp)
            platform = config.pop("p")
            out[entity_topic(prefix, platform, agent_id, stream.id, key)] = config | shared
    return out


def encode(payload: Mapping[str, Any]) -> bytes:
    """Compact JSON, as sent."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


# --------------------------------------------------------------------------- diffing


class Discovery:
    """Turns the current set of streams into the retained messages that make HA match it."""

    def __init__(
        self, settings: HomeAssistantSettings, agent_id: str, version: str, topic_prefix: str
    ) -> None:
        self.settings = settings
        self._agent = agent_id
        self._version = version
        self._topics = Topics(topic_prefix)
        self._sent: dict[str, bytes] = {}  # config topic -> payload last handed out
        self._components: dict[str, str] = {}  # device mode: every component id -> platform

    def update(self, streams: Iterable[DiscoveredStream]) -> dict[str, bytes]:
        """The messages to publish now (topic → payload; empty payload clears); ``{}`` when
        nothing changed. The caller publishes them retained at QoS 1."""
        if not self.settings.enabled:
            return {}
        streams = list(streams)
        if self.settings.mode == "device":
            wanted = {self._device_topic: self._device_payload(streams)}
        else:
            wanted = {
                topic: encode(config)
                for topic, config in entity_configs(
                    self._agent, self._version, streams, self._topics, self._prefix
                ).items()
            }
        out = {t: p for t, p in wanted.items() if self._sent.get(t) != p}
        out.update({t: b"" for t in self._sent if t not in wanted})
        self._sent = wanted
        return out

    @property
    def _prefix(self) -> str:
        return self.settings.discovery_prefix

    @property
    def _device_topic(self) -> str:
        return device_topic(self._prefix, self._agent)

    def _device_payload(self, streams: list[DiscoveredStream]) -> bytes:
        current = {
            component_id(s.id, key): comp["p"]
            for s in streams
            for key, comp in stream_components(self._agent, s, self._topics).items()
        }
        removed = {cid: p for cid, p in self._components.items() if cid not in current}
        self._components = removed | current
        payload = encode(device_config(self._agent, self._version, streams, self._topics, removed))
        if len(payload) > PAYLOAD_WARN_BYTES:
            log.warning(
                "the Home Assistant device discovery payload is %d bytes (%d streams); if the "
                "broker limits message size, set homeassistant.mode: entity",
                len(payload),
                len(streams),
            )
        return payload
