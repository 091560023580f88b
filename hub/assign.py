"""Template assignment: the one owner of the retained ``<prefix>/<agent>/config`` messages.

The store moves an agent's config revision on every change that concerns it (templates added,
changed, moved or deleted; desired state changed). ``sync`` publishes the AgentConfig of every
agent whose stored revision differs from the one last published, so callers never have to work
out which agents a change touched (a template moved from A to B bumps both).
"""

from __future__ import annotations

import asyncio
import logging

from glimpser.hub.ingest.link import BrokerLink
from glimpser.hub.store.templates import TemplateRepository
from glimpser.shared.aio import cancel_and_wait
from glimpser.shared.errors import TransportError
from glimpser.shared.topics import Topics

_LOGGER = logging.getLogger(__name__)


class Assigner:
    """Publishes each agent's AgentConfig (QoS 1, retained) when its revision moved."""

    def __init__(self, templates: TemplateRepository, link: BrokerLink, topics: Topics) -> None:
        self._templates = templates
        self._link = link
        self._topics = topics
        self._published: dict[str, int] = {}
        # One publisher at a time: each reads the config inside the lock, so the last message
        # on a topic always carries the newest revision.
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()

    def published(self, agent: str) -> int | None:
        """The revision last published for ``agent`` on this connection, if any."""
        return self._published.get(agent)

    async def sync(self, *, everything: bool = False) -> list[str]:
        """Publish changed configs (all with ``everything``); returns the agents published.

        Without a broker nothing is published; the next (re)connect publishes everything.
        """
        async with self._lock:
            if everything:
                self._published.clear()
            revisions = await self._templates.agent_revisions()
            done: list[str] = []
            for agent, revision in sorted(revisions.items()):
                if self._published.get(agent) == revision:
                    continue
                if not await self._publish(agent):
                    break
                done.append(agent)
            return done

    def reconnected(self) -> None:
        """The broker connection is (re)established: republish every agent's config."""
        task = asyncio.create_task(self._sync_all(), name="publish agent configs")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def aclose(self) -> None:
        """Cancel pending republishing."""
        for task in list(self._tasks):
            await cancel_and_wait(task)

    async def _publish(self, agent: str) -> bool:
        config = await self._templates.agent_config(agent)
        payload = config.model_dump_json().encode()
        try:
            await self._link.publish_retained(self._topics.agent(agent, "config"), payload)
        except TransportError as err:
            _LOGGER.info("config r%d for agent %s waits for the broker: %s", config.revision,
                         agent, err)  # fmt: skip
            return False
        self._published[agent] = config.revision
        _LOGGER.debug("published config r%d for agent %s", config.revision, agent)
        return True

    async def _sync_all(self) -> None:
        try:
            await self.sync(everything=True)
        except Exception:  # a storage error must not kill the connection's callback chain
            _LOGGER.exception("could not republish agent configs")
