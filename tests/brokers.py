"""Real MQTT brokers for tests: a Mosquitto process and the embedded amqtt broker in a process.

Both run as separate processes so a test can kill one (``stop()``) and bring it back on the same
port (``start()``), exactly like a broker restart in production. ``tests/conftest.py`` exposes
them as the ``broker`` fixture (parametrized over both kinds); use ``running_broker()`` directly
when a test needs one particular kind or several brokers.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Literal

import aiomqtt

from glimpser.shared.config import BrokerSettings
from tests.helpers import free_port, port_open, wait_for

BrokerKind = Literal["mosquitto", "amqtt"]
BROKER_KINDS: tuple[BrokerKind, ...] = ("mosquitto", "amqtt")
READY_TIMEOUT = 20.0


class BrokerUnavailable(RuntimeError):
    """The broker program is not installed on this machine (e.g. no ``mosquitto``)."""


class BrokerStartError(RuntimeError):
    """The broker process exited or never answered an MQTT CONNECT."""


def mosquitto_binary() -> str | None:
    """Path of the mosquitto executable (Debian installs it in /usr/sbin, often not on PATH)."""
    found = shutil.which("mosquitto")
    if found:
        return found
    for candidate in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"):
        if os.access(candidate, os.X_OK):
            return candidate
    return None


@dataclass(eq=False)
class BrokerHandle:
    """One broker process on a fixed loopback port; restartable on that same port."""

    kind: BrokerKind
    workdir: Path
    host: str = "127.0.0.1"
    port: int = field(default_factory=free_port)
    _proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _log: IO[bytes] | None = field(default=None, repr=False)
    _starts: int = field(default=0, repr=False)

    @property
    def settings(self) -> BrokerSettings:
        """BrokerSettings pointing at this broker (anonymous, default prefix)."""
        return BrokerSettings(host=self.host, port=self.port)

    @property
    def url(self) -> str:
        """``mqtt://host:port``."""
        return f"mqtt://{self.host}:{self.port}"

    @property
    def log_path(self) -> Path:
        """The broker's stdout/stderr, appended across restarts."""
        return self.workdir / f"{self.kind}.log"

    @property
    def pid(self) -> int | None:
        """Pid of the running process, or None."""
        return self._proc.pid if self.running and self._proc else None

    @property
    def running(self) -> bool:
        """True while the broker process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        """Last lines of the broker log (for error messages)."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log file)"
        return "\n".join(text.splitlines()[-lines:]) or "(log is empty)"

    def command(self) -> list[str]:
        """argv that starts this broker."""
        if self.kind == "mosquitto":
            binary = mosquitto_binary()
            if binary is None:
                raise BrokerUnavailable(
                    "mosquitto is not installed (apt-get install mosquitto, or run "
                    "`bash provisioning/test.sh`, which installs it)"
                )
            return [binary, "-c", str(self._write_mosquitto_conf())]
        # The hub's own embedded broker (EmbeddedBroker, amqtt) as a standalone process.
        return [
            sys.executable, "-m", "glimpser.hub.broker",
            "--host", self.host, "--port", str(self.port),
        ]  # fmt: skip

    def _write_mosquitto_conf(self) -> Path:
        conf = self.workdir / "mosquitto.conf"
        lines = [
            f"listener {self.port} {self.host}",
            "allow_anonymous true",
            "persistence false",
            # stderr goes to log_path (see start()); a file log_dest would need the privilege
            # drop below to keep write access to pytest's 0700 tmp dirs.
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            "connection_messages true",
        ]
        if os.geteuid() == 0:
            # As root mosquitto switches to user `mosquitto`, which cannot read tmp_path.
            lines.append(f"user {getpass.getuser()}")
        conf.write_text("\n".join(lines) + "\n")
        return conf

    async def start(self, timeout: float = READY_TIMEOUT) -> None:
        """Start the broker on ``self.port`` (again) and wait until it answers MQTT CONNECT."""
        if self.running:
            return
        self.workdir.mkdir(parents=True, exist_ok=True)
        argv = self.command()
        self._starts += 1
        if self._log is None:
            self._log = self.log_path.open("ab")
        self._log.write(f"--- start #{self._starts}: {' '.join(argv[:3])} ...\n".encode())
        self._log.flush()
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        # Popen rather than asyncio's subprocesses: the handle must outlive one event loop and
        # be killable synchronously at teardown; spawning does not block meaningfully.
        self._proc = subprocess.Popen(  # noqa: ASYNC220
            argv,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=self.workdir,
            start_new_session=True,  # a Ctrl-C in the terminal is for pytest, not the broker
        )
        try:
            await self.wait_ready(timeout)
        except BaseException:
            self.kill()
            raise

    async def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        """Poll a TCP connect, then an MQTT CONNECT/CONNACK round trip; raise with the log tail."""
        deadline = time.monotonic() + timeout
        last_error = "no connection attempt yet"
        while time.monotonic() < deadline:
            if not self.running:
                code = self._proc.returncode if self._proc else None
                raise BrokerStartError(
                    f"{self.kind} broker on {self.url} exited (code {code}) before it was ready;"
                    f" log {self.log_path}:\n{self.log_tail()}"
                )
            if await asyncio.to_thread(port_open, self.host, self.port):
                try:
                    async with aiomqtt.Client(
                        self.host, self.port, identifier=f"ready-{uuid.uuid4().hex[:8]}", timeout=2
                    ):
                        return
                except aiomqtt.MqttError as err:
                    last_error = f"MQTT CONNECT failed: {err}"
            else:
                last_error = "TCP connect refused"
            await asyncio.sleep(0.05)
        raise BrokerStartError(
            f"{self.kind} broker on {self.url} not ready within {timeout:.0f}s ({last_error});"
            f" log {self.log_path}:\n{self.log_tail()}"
        )

    async def stop(self, *, graceful: bool = False, timeout: float = 10.0) -> None:
        """Kill the broker (SIGTERM first when ``graceful``); return once its port is free."""
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM if graceful else signal.SIGKILL)
        try:
            await wait_for(lambda: proc.poll() is not None, timeout=timeout)
        except TimeoutError:
            proc.kill()
            await wait_for(lambda: proc.poll() is not None, timeout=5)
        await wait_for(
            lambda: not port_open(self.host, self.port, timeout=0.1),
            timeout=5,
            message=f"port {self.port} still accepts connections after {self.kind} stopped",
        )

    def kill(self) -> None:
        """Synchronous last-resort teardown: SIGKILL and reap; safe to call twice."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)

    def close(self) -> None:
        """Kill the process and close the log file."""
        self.kill()
        if self._log is not None:
            self._log.close()
            self._log = None


@contextlib.asynccontextmanager
async def running_broker(
    kind: BrokerKind, workdir: Path, *, attempts: int = 3
) -> AsyncIterator[BrokerHandle]:
    """A started broker of ``kind``, always killed on exit.

    A fresh free port is tried again when the process dies at start-up, because another process
    may take the port between ``free_port()`` and the broker's bind.
    """
    handle: BrokerHandle | None = None
    for attempt in range(1, attempts + 1):
        handle = BrokerHandle(kind=kind, workdir=workdir)
        try:
            await handle.start()
            break
        except BrokerStartError:
            handle.close()
            if attempt == attempts:
                raise
        except BaseException:
            handle.close()
            raise
    assert handle is not None
    try:
        yield handle
    finally:
        handle.close()
