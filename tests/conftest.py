"""Fixtures shared by every test: real MQTT brokers (Mosquitto and the embedded amqtt broker).

``broker`` is parametrized over both kinds, so an end-to-end test written once runs against
both, as DESIGN §6 asks. The handle's API (see tests/brokers.py)::

    broker.kind        "mosquitto" | "amqtt"
    broker.host        "127.0.0.1"
    broker.port        a free loopback port, stable across stop()/start()
    broker.settings    glimpser.shared.config.BrokerSettings for agents and hubs
    await broker.stop()        kill the process (graceful=True sends SIGTERM); port is free after
    await broker.start()       start again on the same port, returns once MQTT CONNECT works
    await broker.wait_ready()  TCP + MQTT CONNECT/CONNACK polling, error includes the log tail

Helpers for everyone live in tests/helpers.py: ``free_port()`` and ``await wait_for(pred, ...)``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.brokers import BROKER_KINDS, BrokerHandle, BrokerKind, mosquitto_binary, running_broker


def in_ci() -> bool:
    """True on CI (``CI=true``), where a missing tool is a failure, never a skip."""
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def skip_or_fail(reason: str) -> None:
    """Skip locally; fail in CI so a missing dependency can never turn the suite green."""
    if in_ci():
        pytest.fail(f"{reason} (CI=true: missing tools fail instead of skipping)", pytrace=False)
    pytest.skip(reason)


@contextlib.asynccontextmanager
async def _broker(kind: BrokerKind, workdir: Path) -> AsyncIterator[BrokerHandle]:
    if kind == "mosquitto" and mosquitto_binary() is None:
        skip_or_fail(
            "mosquitto is not installed: apt-get install mosquitto "
            "(bash provisioning/test.sh installs it)"
        )
    async with running_broker(kind, workdir) as handle:
        yield handle


@pytest.fixture(params=BROKER_KINDS)
async def broker(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[BrokerHandle]:
    """A running broker of each kind (the test runs once per kind); killed at teardown."""
    kind: BrokerKind = request.param
    async with _broker(kind, tmp_path / f"broker-{kind}") as handle:
        yield handle


@pytest.fixture
async def mosquitto_broker(tmp_path: Path) -> AsyncIterator[BrokerHandle]:
    """A running Mosquitto process only."""
    async with _broker("mosquitto", tmp_path / "broker-mosquitto") as handle:
        yield handle


@pytest.fixture
async def amqtt_broker(tmp_path: Path) -> AsyncIterator[BrokerHandle]:
    """A running embedded-amqtt broker process only."""
    async with _broker("amqtt", tmp_path / "broker-amqtt") as handle:
        yield handle
