"""Real notification receivers on 127.0.0.1 for tests: an SMTP server and a webhook endpoint."""

from __future__ import annotations

import email
import email.message
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, Session

from glimpser.hub.alerts.webhook import verify
from tests.helpers import free_port

SECRET = "s3cret-s3cret-s3cret"


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    doc: dict[str, Any]


@dataclass
class WebhookReceiver:
    """An aiohttp server on 127.0.0.1 that verifies every signature it receives."""

    port: int = field(default_factory=free_port)
    received: list[Received] = field(default_factory=list)
    bad: list[str] = field(default_factory=list)
    runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    @property
    def channel(self) -> str:
        return f"glimpser-webhook://127.0.0.1:{self.port}/hook?secret={SECRET}"

    async def _handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        try:
            doc = verify(SECRET, raw, request.headers, now=time.time())
        except ValueError as err:
            self.bad.append(str(err))
            return web.Response(status=401)
        self.received.append(Received(dict(request.headers), raw, doc))
        return web.Response(text="ok")

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self._handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None


class _Sink:
    def __init__(self) -> None:
        self.messages: list[email.message.Message] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.content
        assert isinstance(content, bytes)
        self.messages.append(email.message_from_bytes(content))
        return "250 OK"


def _accept_any(*args: Any) -> AuthResult:
    return AuthResult(success=True)


@dataclass
class SmtpServer:
    port: int
    sink: _Sink

    def url(self) -> str:
        # mailto:// (not mailtos://) is plain SMTP: apprise picks its "insecure" mode, no TLS.
        return (
            f"mailto://user:pass@127.0.0.1:{self.port}"
            "?smtp=127.0.0.1&from=hub@example.com&to=ops@example.com"
        )


@contextmanager
def smtp_server() -> Iterator[SmtpServer]:
    """A real SMTP server (aiosmtpd) on a free loopback port that keeps every message."""
    sink = _Sink()
    port = free_port()
    controller = Controller(
        sink,
        hostname="127.0.0.1",
        port=port,
        authenticator=_accept_any,
        auth_require_tls=False,  # apprise logs in over plain SMTP when given user:pass
    )
    controller.start()
    try:
        yield SmtpServer(port, sink)
    finally:
        controller.stop()
