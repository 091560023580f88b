"""The embedded MQTT broker (amqtt) for single-box installs; Mosquitto replaces it in production."""

from __future__ import annotations

import argparse
import asyncio
import errno
import logging
import signal
import sys
from types import TracebackType
from typing import Any

from glimpser.shared.errors import PortInUseError, TransportError
from glimpser.shared.netutil import port_in_use

_LOGGER = logging.getLogger(__name__)


class EmbeddedBroker:
    """An amqtt broker with one TCP listener on ``host:port``, running while the context is open."""

    def __init__(self, host: str, port: int, *, port_flag: str = "--mqtt-port") -> None:
        self.host = host
        self.port = port
        self._port_flag = port_flag
        self._broker: Any = None

    async def __aenter__(self) -> EmbeddedBroker:
        """Start listening; PortInUseError when the port is taken."""
        ensure_port_free(self.host, self.port, self._port_flag)
        # Imported here so a hub using an external broker never pays for amqtt's import.
        from amqtt.errors import BrokerError

        broker = _broker_class()(self._config())
        try:
            await broker.start()
        except BrokerError as err:
            if _is_addr_in_use(err):
                raise _port_error(self.host, self.port, self._port_flag) from err
            raise TransportError(f"embedded broker failed to start: {err}") from err
        self._broker = broker
        _LOGGER.info("embedded MQTT broker listening on mqtt://%s:%d", self.host, self.port)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop the broker and close every client session."""
        broker, self._broker = self._broker, None
        if broker is not None:
            await broker.shutdown()

    def _config(self) -> dict[str, Any]:
        # Listing plugins explicitly matters: an omitted list loads every entry-point plugin
        # (amqtt docs/references/broker_config.md). The $SYS plugin is left out on purpose:
        # it publishes every 20 s and nothing of ours reads it. Auth lands in a later issue.
        return {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
            "plugins": {
                "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True},
            },
        }


def _broker_class() -> Any:
    """amqtt's Broker with its retained-message fan-out limited to the session's own filters."""
    from amqtt.broker import Broker

    class _Broker(Broker):  # type: ignore[misc]
        async def _publish_retained_messages_for_subscription(
            self, subscription: tuple[str, int], session: Any
        ) -> None:
            # amqtt 0.12.1 calls this on every CONNECT for every filter of *every* client
            # (broker.py, "publish any topic retained messages"), so a new client receives
            # retained messages it never subscribed to, and then again when it subscribes.
            # Only a filter this session holds may deliver retained messages to it.
            holders = self._subscriptions.get(subscription[0], ())
            if any(s.client_id == session.client_id for s, _qos in holders):
                await super()._publish_retained_messages_for_subscription(subscription, session)

    return _Broker


def ensure_port_free(host: str, port: int, flag: str) -> None:
    """Raise PortInUseError when ``host:port`` cannot be bound right now."""
    try:
        taken = port_in_use(host, port)
    except OSError as err:
        raise TransportError(f"cannot listen on {host}:{port}: {err.strerror}") from err
    if taken:
        raise _port_error(host, port, flag)


def _port_error(host: str, port: int, flag: str) -> PortInUseError:
    return PortInUseError(f"port {port} on {host} is already in use; pick another with {flag}")


def _is_addr_in_use(err: BaseException) -> bool:
    cause: BaseException | None = err
    while cause is not None:
        if isinstance(cause, OSError) and cause.errno == errno.EADDRINUSE:
            return True
        cause = cause.__cause__
    return False


async def _serve(host: str, port: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with EmbeddedBroker(host, port, port_flag="--port"):
        print(f"embedded broker ready on mqtt://{host}:{port}", flush=True)
        await stop.wait()


def main(argv: list[str] | None = None) -> int:
    """Run the embedded broker alone until SIGINT/SIGTERM (used by tests and for debugging)."""
    parser = argparse.ArgumentParser(
        prog="python -m glimpser.hub.broker", description="Run Glimpser's embedded MQTT broker."
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=1883, help="TCP port (default 1883)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    try:
        asyncio.run(_serve(args.host, args.port))
    except (PortInUseError, TransportError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
