"""Run a real hub and a real agent as separate processes against a test broker."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import yaml

T = TypeVar("T")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def eventually(
    probe: Callable[[], Awaitable[T | None]], timeout: float = 15.0, interval: float = 0.2
) -> T:
    """Await ``probe`` until it returns something truthy; fail with the last value on timeout."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last: Any = None
    while True:
        try:
            value = await probe()
        except (aiohttp.ClientError, OSError) as err:
            value, last = None, err
        else:
            last = value
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {timeout} s; last value: {last!r}")
        await asyncio.sleep(interval)


@dataclass
class Proc:
    """One Glimpser process and its log file."""

    name: str
    args: list[str]
    log: Path
    proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        """Start the process with output going to its log file."""
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        with self.log.open("ab") as out:
            self.proc = await asyncio.create_subprocess_exec(
                *self.args, stdout=out, stderr=asyncio.subprocess.STDOUT, env=env
            )

    @property
    def alive(self) -> bool:
        """True while the process runs."""
        return self.proc is not None and self.proc.returncode is None

    async def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM, wait; SIGKILL past ``timeout``. Returns the exit code (None if killed)."""
        if self.proc is None or self.proc.returncode is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return await asyncio.wait_for(self.proc.wait(), timeout)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
            return None

    async def kill(self) -> None:
        """SIGKILL, as a crash or power loss would."""
        if self.alive and self.proc is not None:
            self.proc.kill()
            await self.proc.wait()

    def tail(self, lines: int = 40) -> str:
        """The last lines of the log, for failure messages."""
        if not self.log.exists():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


@dataclass
class Deployment:
    """A hub and one agent wired to one broker, with an HTTP session on the hub."""

    tmp: Path
    broker_host: str
    broker_port: int
    templates: list[dict[str, Any]]
    agent_id: str = "edge-1"
    hub_extra: dict[str, Any] = field(default_factory=dict)
    http_port: int = field(default_factory=free_port)
    hub: Proc | None = None
    agent: Proc | None = None
    http: aiohttp.ClientSession | None = None

    @property
    def url(self) -> str:
        """Base URL of the hub."""
        return f"http://127.0.0.1:{self.http_port}"

    def _write(self, name: str, data: dict[str, Any]) -> Path:
        path = self.tmp / name
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return path

    def hub_proc(self) -> Proc:
        """The hub process definition (external broker)."""
        cfg = self._write(
            "hub.yaml",
            {
                "http": {"host": "127.0.0.1", "port": self.http_port},
                "broker": {"host": self.broker_host, "port": self.broker_port},
                "embedded_broker": False,
                "data_dir": str(self.tmp / "hub-data"),
                "log_level": "DEBUG",
                **self.hub_extra,
            },
        )
        args = [sys.executable, "-m", "glimpser.hub", "--config", str(cfg)]
        return Proc("hub", args, self.tmp / "hub.log")

    def agent_proc(self) -> Proc:
        """The agent process definition."""
        cfg = self._write(
            "agent.yaml",
            {
                "agent_id": self.agent_id,
                "broker": {"host": self.broker_host, "port": self.broker_port},
                "data_dir": str(self.tmp / "agent-data"),
                "templates": self.templates,
                "log_level": "DEBUG",
            },
        )
        args = [sys.executable, "-m", "glimpser.agent", "--config", str(cfg)]
        return Proc("agent", args, self.tmp / "agent.log")

    async def start(self) -> None:
        """Start hub then agent; wait until the hub is ready."""
        self.http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        self.hub = self.hub_proc()
        await self.hub.start()
        await eventually(self._ready, timeout=30)
        await self._start_agent()

    async def restart_hub(self) -> None:
        """Stop the hub gracefully and start it again on the same port and data."""
        assert self.hub is not None
        code = await self.hub.stop()
        assert code == 0, f"hub exit code {code}\n{self.hub.tail()}"
        self.hub = self.hub_proc()
        await self.hub.start()
        await eventually(self._ready, timeout=30)

    async def restart_agent(
        self, before_start: Callable[[], Awaitable[None]] | None = None
    ) -> None:
        """Stop the agent gracefully, run ``before_start``, then start it again."""
        assert self.agent is not None
        code = await self.agent.stop()
        assert code == 0, f"agent exit code {code}\n{self.agent.tail()}"
        if before_start is not None:
            await before_start()
        await self._start_agent()

    async def restart_agent_after_crash(self) -> None:
        """Start the agent again after it was killed."""
        assert self.agent is not None and not self.agent.alive
        await self._start_agent()

    async def _start_agent(self) -> None:
        """Start the agent and wait until it runs (its signal handlers are in place)."""
        self.agent = self.agent_proc()
        mark = self.agent.log.stat().st_size if self.agent.log.exists() else 0
        await self.agent.start()
        agent = self.agent

        async def running() -> bool:
            assert agent.alive, f"agent exited early:\n{agent.tail()}"
            text = agent.log.read_bytes()[mark:].decode(errors="replace")
            return f"agent {self.agent_id} running" in text

        await eventually(running, timeout=30)

    async def send(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """A request with a JSON body (bytes are sent raw); (status, parsed JSON or None)."""
        assert self.http is not None
        kwargs: dict[str, Any] = {"data": body} if isinstance(body, bytes) else {"json": body}
        async with self.http.request(method, self.url + path, **kwargs) as resp:
            text = await resp.text()
            return resp.status, json.loads(text) if text else None

    async def _ready(self) -> bool:
        assert self.hub is not None
        assert self.hub.alive, f"hub exited early:\n{self.hub.tail()}"
        assert self.http is not None
        async with self.http.get(f"{self.url}/readyz") as resp:
            return resp.status == 200

    async def get_json(self, path: str) -> tuple[int, Any]:
        """GET a hub path; (status, parsed JSON)."""
        assert self.http is not None
        async with self.http.get(self.url + path) as resp:
            return resp.status, await resp.json()

    async def call(self, method: str, path: str) -> tuple[int, Any]:
        """Any method on a hub path; (status, parsed JSON)."""
        assert self.http is not None
        async with self.http.request(method, self.url + path) as resp:
            return resp.status, await resp.json()

    async def stream(self, stream_id: str) -> dict[str, Any] | None:
        """The StreamInfo of ``stream_id`` from GET /api/streams, or None."""
        status, body = await self.get_json("/api/streams")
        assert status == 200, body
        return next((s for s in body if s["id"] == stream_id), None)

    async def wait_status(self, stream_id: str, status: str, timeout: float = 20) -> dict[str, Any]:
        """Wait until the stream reports ``status``; return its StreamInfo."""

        async def probe() -> dict[str, Any] | None:
            info = await self.stream(stream_id)
            return info if info and info["status"] == status else None

        try:
            return await eventually(probe, timeout=timeout)
        except AssertionError as err:
            raise AssertionError(f"{err}\n--- hub\n{self.logs()}") from None

    async def metrics(self) -> dict[str, float]:
        """Prometheus samples of /metrics as {'name{labels}': value}."""
        assert self.http is not None
        async with self.http.get(f"{self.url}/metrics") as resp:
            text = await resp.text()
        samples: dict[str, float] = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                key, _, value = line.rpartition(" ")
                samples[key] = float(value)
        return samples

    def logs(self) -> str:
        """Tails of both logs."""
        parts = []
        for proc in (self.hub, self.agent):
            if proc is not None:
                parts.append(f"--- {proc.name} log\n{proc.tail()}")
        return "\n".join(parts)

    async def close(self) -> dict[str, int | None]:
        """Stop agent then hub gracefully; return their exit codes."""
        codes: dict[str, int | None] = {}
        for proc in (self.agent, self.hub):
            if proc is not None:
                codes[proc.name] = await proc.stop()
        if self.http is not None:
            await self.http.close()
        return codes


@contextlib.asynccontextmanager
async def deployed(
    tmp: Path,
    host: str,
    port: int,
    templates: list[dict[str, Any]],
    hub_extra: dict[str, Any] | None = None,
) -> AsyncIterator[Deployment]:
    """A started Deployment that is always stopped, and must stop cleanly."""
    dep = Deployment(tmp, host, port, templates, hub_extra=hub_extra or {})
    try:
        await dep.start()
        yield dep
    finally:
        codes = await dep.close()
    bad = {name: code for name, code in codes.items() if code != 0}
    assert not bad, f"processes did not exit cleanly: {bad}\n{dep.logs()}"


def template(stream_id: str, **extra: Any) -> dict[str, Any]:
    """A synthetic test-pattern template dict (320x240 at 10 fps, keep-alive 2 s)."""
    base: dict[str, Any] = {
        "id": stream_id,
        "name": stream_id.replace("-", " ").title(),
        "source": {"kind": "test", "pattern": "motion", "width": 640, "height": 480},
        "fps": 10,
        "width": 320,
        "height": 240,
        "keepalive": 2,
    }
    base.update(extra)
    return base


def dumps(obj: Any) -> bytes:
    """Compact JSON bytes."""
    return json.dumps(obj).encode()
