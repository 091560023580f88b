"""Glimpser's signed webhook: the JSON body, its HMAC signature, sending and verifying.

Wire format (one ``POST``, ``Content-Type: application/json``)::

    X-Glimpser-Timestamp: 1718000000            UNIX seconds when this attempt was made
    X-Glimpser-Signature: sha256=<hex>          HMAC-SHA256(secret, raw body bytes)
    X-Glimpser-Delivery:  <delivery id>         the same on every retry: receivers dedupe on it

    {"version": 1, "kind": "alert" | "test", "delivery": "...", "timestamp": 1718000000,
     "alert": {...Alert...} | null, "title": "...", "message": "...",
     "snapshot": {"content_type": "image/jpeg", "encoding": "base64", "data": "..."} | null}

The timestamp is also inside the signed body, so it cannot be altered without breaking the
signature; a receiver checks the signature, that the header equals the body's timestamp, and
that it is recent (``verify`` does all three). The snapshot rides base64 inside the JSON so the
one signature covers it (multipart would need a second signing scheme).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any

import aiohttp

from glimpser.hub.alerts.channels import WebhookTarget

__all__ = [
    "DELIVERY_HEADER",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "WebhookError",
    "body",
    "send",
    "sign",
    "verify",
]

SIGNATURE_HEADER = "X-Glimpser-Signature"
TIMESTAMP_HEADER = "X-Glimpser-Timestamp"
DELIVERY_HEADER = "X-Glimpser-Delivery"
MAX_SNAPSHOT = 4 * 1024 * 1024


class WebhookError(Exception):
    """The receiver did not accept the webhook (transport error or non-2xx status)."""


def sign(secret: str, raw: bytes) -> str:
    """The signature header value for ``raw``."""
    digest = hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def body(
    *,
    kind: str,
    delivery: str,
    timestamp: int,
    title: str,
    message: str,
    alert: Mapping[str, Any] | None,
    snapshot: bytes | None,
) -> bytes:
    """The raw JSON body (compact, so what is signed is exactly what is sent)."""
    picture = None
    if snapshot is not None and len(snapshot) <= MAX_SNAPSHOT:
        picture = {
            "content_type": "image/jpeg",
            "encoding": "base64",
            "data": base64.b64encode(snapshot).decode(),
        }
    doc = {
        "version": 1,
        "kind": kind,
        "delivery": delivery,
        "timestamp": timestamp,
        "alert": alert,
        "title": title,
        "message": message,
        "snapshot": picture,
    }
    return json.dumps(doc, separators=(",", ":"), default=str).encode()


async def send(
    session: aiohttp.ClientSession,
    target: WebhookTarget,
    raw: bytes,
    *,
    delivery: str,
    timestamp: int,
    timeout: float,
) -> None:
    """POST the signed body; WebhookError unless the receiver answers 2xx."""
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: sign(target.secret, raw),
        TIMESTAMP_HEADER: str(timestamp),
        DELIVERY_HEADER: delivery,
        "User-Agent": "Glimpser-Webhook/1",
    }
    try:
        async with session.post(
            target.url,
            data=raw,
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=timeout),
            allow_redirects=False,
        ) as response:
            if not 200 <= response.status < 300:
                raise WebhookError(f"receiver answered HTTP {response.status}")
    except (aiohttp.ClientError, TimeoutError) as err:
        raise WebhookError(f"{type(err).__name__}: {err}".rstrip(": ")) from err


def verify(
    secret: str,
    raw: bytes,
    headers: Mapping[str, str],
    *,
    now: float,
    tolerance: float = 300.0,
) -> dict[str, Any]:
    """The decoded body when signature, timestamp header and freshness check out; else ValueError.

    For receivers written in Python (and the tests); other languages do the same three checks.
    """
    expected = sign(secret, raw)
    if not hmac.compare_digest(expected, headers.get(SIGNATURE_HEADER, "")):
        raise ValueError("bad signature")
    doc: dict[str, Any] = json.loads(raw)
    stamp = headers.get(TIMESTAMP_HEADER, "")
    if stamp != str(doc.get("timestamp")):
        raise ValueError("timestamp header does not match the signed body")
    if abs(now - int(stamp)) > tolerance:
        raise ValueError("stale or future timestamp (replay?)")
    return doc
