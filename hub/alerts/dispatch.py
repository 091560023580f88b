"""Durable delivery of alerts to channels: claim due rows, send, log every attempt, retry.

A delivery row is ``pending`` until an attempt claims it (``sending`` with a lease), then
``sent`` after success, ``pending`` again with a later ``next_at`` after a failure (capped
exponential backoff with jitter), or ``failed`` once ``retry_window`` has passed. It is marked
sent only after the channel accepted it, and claimed by one worker at a time, so nothing is sent
twice while this hub runs; a crash between a successful send and its bookkeeping resends once
after the lease expires (at-least-once), which is why webhooks carry a stable delivery id.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from types import TracebackType
from typing import Any, Self

import aiohttp
import apprise
from apprise.attachment.memory import AttachMemory

from glimpser.hub.alerts import webhook
from glimpser.hub.alerts.channels import webhook_target
from glimpser.hub.alerts.clock import Clock
from glimpser.hub.alerts.models import Alert
from glimpser.hub.alerts.settings import AlertSettings
from glimpser.hub.alerts.store import AlertStore, Claimed
from glimpser.shared.aio import cancel_and_wait
from glimpser.shared.backoff import Backoff
from glimpser.shared.errors import GlimpserError, StorageError

__all__ = ["DeliveryError", "Dispatcher", "Sender"]

log = logging.getLogger(__name__)


class DeliveryError(GlimpserError):
    """A channel did not accept a message."""


class Sender:
    """Sends one message to one channel: webhooks over aiohttp, apprise in worker threads."""

    def __init__(
        self, session: aiohttp.ClientSession, executor: ThreadPoolExecutor, timeout: float
    ) -> None:
        self._session = session
        self._executor = executor
        self._timeout = timeout

    async def send(
        self,
        target: str,
        *,
        kind: str,
        delivery: str,
        title: str,
        message: str,
        alert: Alert | None,
        snapshot: bytes | None,
        timestamp: int,
    ) -> None:
        """Deliver once; DeliveryError with the channel's reason on failure."""
        try:
            hook = webhook_target(target)
        except ValueError as err:
            raise DeliveryError(str(err)) from err
        if hook is not None:
            raw = webhook.body(
                kind=kind,
                delivery=delivery,
                timestamp=timestamp,
                title=title,
                message=message,
                alert=alert.model_dump(mode="json") if alert is not None else None,
                snapshot=snapshot,
            )
            try:
                await webhook.send(
                    self._session,
                    hook,
                    raw,
                    delivery=delivery,
                    timestamp=timestamp,
                    timeout=self._timeout,
                )
            except webhook.WebhookError as err:
                raise DeliveryError(str(err)) from err
            return
        # apprise is synchronous (smtplib, requests): keep it off the event loop. No asyncio
        # timeout here on purpose: abandoning a thread that may still succeed would let the
        # retry send a second copy; apprise's own socket timeouts bound each call.
        loop = asyncio.get_running_loop()
        error = await loop.run_in_executor(
            self._executor, _apprise_send, target, title, message, snapshot
        )
        if error is not None:
            raise DeliveryError(error)


def _apprise_send(url: str, title: str, body: str, snapshot: bytes | None) -> str | None:
    """Runs in a worker thread; the failure reason, or None when apprise delivered."""
    notifier = apprise.Apprise()
    if not notifier.add(url):
        return "apprise cannot load this URL"
    attach: apprise.AppriseAttachment | None = None
    if snapshot is not None:
        attach = apprise.AppriseAttachment()
        memory = AttachMemory(  # type: ignore[no-untyped-call]
            content=snapshot, name="snapshot.jpg", mimetype="image/jpeg"
        )
        attach.add(memory)
    try:
        result: Any = notifier.notify(body=body, title=title, attach=attach)
    except Exception as err:  # noqa: BLE001 - a plugin bug must fail this attempt, not the worker
        return f"{type(err).__name__}: {err}"
    if result:
        return None
    return _apprise_reason(result)


def _apprise_reason(result: Any) -> str:
    # apprise >= 1.10 returns an AppriseResult carrying each service's log lines; older ones a
    # bare False.
    lines: list[str] = []
    for service in getattr(result, "results", ()):
        lines += [
            entry.message
            for entry in service.logs()
            if entry.level in ("WARNING", "ERROR", "CRITICAL")
        ]
    return "; ".join(lines[-3:])[:1000] or "apprise reported a failure"


class Dispatcher:
    """Async context manager running the delivery loop over the store's delivery rows."""

    def __init__(
        self,
        store: AlertStore,
        settings: AlertSettings,
        clock: Clock,
        *,
        on_attempt: Callable[[Claimed, str | None, bool], None] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._store = store
        self._settings = settings
        self._clock = clock
        self._on_attempt = on_attempt
        self._rng = rng or random.Random()
        self._wake = asyncio.Event()
        self._inflight: dict[int, asyncio.Task[None]] = {}
        self._loop_task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._sender: Sender | None = None

    async def __aenter__(self) -> Self:
        self._session = aiohttp.ClientSession()
        self._executor = ThreadPoolExecutor(
            max_workers=self._settings.max_parallel, thread_name_prefix="alert-send"
        )
        self._sender = Sender(self._session, self._executor, self._settings.send_timeout)
        self._loop_task = asyncio.create_task(self._run(), name="alert-dispatch")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._loop_task is not None:
            await cancel_and_wait(self._loop_task)
            self._loop_task = None
        # Let attempts under way finish briefly; the rest stay 'sending' and are retried after
        # their lease by the next start.
        if self._inflight:
            await asyncio.wait(list(self._inflight.values()), timeout=self._settings.send_timeout)
            for task in list(self._inflight.values()):
                task.cancel()
            await asyncio.gather(*self._inflight.values(), return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._executor is not None:
            # cancel_futures drops queued apprise calls; a running one finishes in its thread.
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    def wake(self) -> None:
        """New deliveries were stored: look now rather than at the next due time."""
        self._wake.set()

    async def send_test(self, target: str) -> str | None:
        """Send a test message to ``target`` once (not stored); the error, or None if sent."""
        sender = self._require_sender()
        now = self._clock.now()
        try:
            await sender.send(
                target,
                kind="test",
                delivery=f"test-{int(now.timestamp() * 1000)}",
                title="Glimpser test notification",
                message="This is a test message from your Glimpser hub's alert settings.",
                alert=None,
                snapshot=None,
                timestamp=int(time.time()),
            )
        except DeliveryError as err:
            return str(err)
        return None

    # ------------------------------------------------------------------ loop

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            delay: float | None = None
            try:
                free = self._settings.max_parallel - len(self._inflight)
                if free > 0:
                    for claimed in await self._store.claim_due(
                        self._clock.now(), self._settings.lease, free
                    ):
                        self._start(claimed)
                if len(self._inflight) < self._settings.max_parallel:
                    due = await self._store.next_due()
                    if due is not None:
                        delay = max(0.0, (due - self._clock.now()).total_seconds())
            except StorageError as err:
                log.error("alert dispatch cannot read deliveries: %s; retrying in 5 s", err)
                delay = 5.0
            await self._wait(delay)

    def _start(self, claimed: Claimed) -> None:
        if claimed.id in self._inflight:
            return  # still being sent by this process: its lease ran out, the send did not
        task = asyncio.create_task(self._attempt(claimed), name=f"alert-delivery-{claimed.id}")
        self._inflight[claimed.id] = task

    async def _wait(self, delay: float | None) -> None:
        if delay is not None and delay <= 0:
            await asyncio.sleep(0)
            return
        waiters: list[asyncio.Task[Any]] = [asyncio.create_task(self._wake.wait())]
        if delay is not None:
            waiters.append(asyncio.create_task(self._clock.sleep(delay)))
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
            await asyncio.gather(*waiters, return_exceptions=True)

    async def _attempt(self, claimed: Claimed) -> None:
        try:
            await self._attempt_once(claimed)
        except StorageError as err:
            # The row stays 'sending'; it is retried when its lease expires.
            log.error("delivery %d: cannot record the attempt: %s", claimed.id, err)
        finally:
            self._inflight.pop(claimed.id, None)
            self._wake.set()

    async def _attempt_once(self, claimed: Claimed) -> None:
        alert = await self._store.get_alert(claimed.alert_id)
        snapshot = await self._store.snapshot(alert.id) if alert.has_snapshot else None
        now = self._clock.now()
        error: str | None = None
        try:
            await self._require_sender().send(
                claimed.target,
                kind="alert",
                delivery=f"{alert.id}-{claimed.id}",
                title=alert.title,
                message=alert.message,
                alert=alert,
                snapshot=snapshot,
                # Real wall time even under a test clock: receivers compare it with theirs.
                timestamp=int(time.time()),
            )
        except DeliveryError as err:
            error = str(err) or type(err).__name__
        now = self._clock.now()
        retry_at = None
        if error is not None:
            backoff = Backoff(
                base=self._settings.retry_base,
                cap=self._settings.retry_cap,
                attempts=claimed.attempt - 1,
                rng=self._rng,
            )
            candidate = now + timedelta(seconds=backoff.next_delay())
            if (candidate - claimed.created_at).total_seconds() <= self._settings.retry_window:
                retry_at = candidate
        await self._store.finish(claimed, now, error, retry_at)
        self._log(claimed, error, retry_at is not None, now, retry_at)
        if self._on_attempt is not None:
            self._on_attempt(claimed, error, retry_at is not None)

    def _log(self, claimed: Claimed, error: str | None, retrying: bool, now: Any, at: Any) -> None:
        if error is None:
            log.info("alert %s sent to %s (attempt %d)", claimed.alert_id, claimed.channel,
                     claimed.attempt)  # fmt: skip
        elif retrying:
            log.warning("alert %s to %s failed (attempt %d): %s; retrying in %.1f s",
                        claimed.alert_id, claimed.channel, claimed.attempt, error,
                        (at - now).total_seconds())  # fmt: skip
        else:
            log.error("alert %s to %s given up after %d attempts: %s", claimed.alert_id,
                      claimed.channel, claimed.attempt, error)  # fmt: skip

    def _require_sender(self) -> Sender:
        if self._sender is None:
            raise RuntimeError("the dispatcher is not running (use 'async with')")
        return self._sender
