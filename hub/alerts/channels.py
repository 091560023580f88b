"""Notification channels: apprise URLs plus Glimpser's own signed webhook.

A channel is written in a rule either as a URL string or as ``{"type": "webhook", "url": ...,
"secret": ...}``. The signed webhook also has a URL form so it fits where apprise URLs go:
``glimpser-webhook://host:port/path?secret=S`` (plain HTTP) and ``glimpser-webhooks://...``
(HTTPS). Every other scheme must be one apprise knows and the URL must load in apprise.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import apprise
from apprise.manager_plugins import NotificationManager

__all__ = [
    "WEBHOOK_SCHEMES",
    "WebhookTarget",
    "check_channel_url",
    "check_webhook_url",
    "redact",
    "webhook_target",
    "webhook_url",
]

# Our URL scheme -> the HTTP scheme actually used on the wire.
WEBHOOK_SCHEMES: dict[str, str] = {"glimpser-webhook": "http", "glimpser-webhooks": "https"}
MIN_SECRET = 16
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
# apprise leaves these untyped.
_MANAGER = NotificationManager()  # type: ignore[no-untyped-call]


@dataclass(frozen=True, slots=True)
class WebhookTarget:
    """Where a signed webhook goes and the secret it is signed with."""

    url: str
    secret: str


def check_channel_url(url: str) -> str:
    """The URL unchanged when it is a usable channel; ValueError saying why otherwise."""
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        raise ValueError("the URL must not contain spaces or control characters")
    match = _SCHEME.match(url)
    if match is None:
        raise ValueError("not a URL: expected scheme://...")
    scheme = match.group(1).lower()
    if scheme in WEBHOOK_SCHEMES:
        webhook_target(url)  # raises ValueError when malformed
        return url
    if scheme not in _MANAGER.schemas():  # type: ignore[no-untyped-call]
        raise ValueError(f"unknown channel scheme {scheme!r}")
    # apprise itself is the judge of its URLs (it returns False for ones it cannot load).
    if not apprise.Apprise().add(url):
        raise ValueError(f"malformed {scheme}:// URL (apprise cannot load it)")
    return url


def check_webhook_url(url: str) -> str:
    """An http(s) URL with a host and no ``secret`` query parameter, else ValueError."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise ValueError("the webhook URL must be http:// or https://")
    if not parts.hostname:
        raise ValueError("the webhook URL has no host name")
    if any(key == "secret" for key, _ in parse_qsl(parts.query)):
        raise ValueError("put the secret in the 'secret' field, not in the URL")
    return url


def webhook_url(url: str, secret: str) -> str:
    """The glimpser-webhook(s):// form of an http(s) URL and its secret."""
    parts = urlsplit(url)
    scheme = "glimpser-webhooks" if parts.scheme == "https" else "glimpser-webhook"
    query = urlencode([*parse_qsl(parts.query, keep_blank_values=True), ("secret", secret)])
    return urlunsplit((scheme, parts.netloc, parts.path, query, ""))


def webhook_target(url: str) -> WebhookTarget | None:
    """The target of a glimpser-webhook(s):// URL, None for other schemes; ValueError if bad."""
    parts = urlsplit(url)
    http = WEBHOOK_SCHEMES.get(parts.scheme.lower())
    if http is None:
        return None
    if not parts.hostname:
        raise ValueError("the webhook URL has no host name")
    try:
        _ = parts.port
    except ValueError as err:
        raise ValueError(f"bad port in webhook URL: {err}") from err
    query = parse_qsl(parts.query, keep_blank_values=True)
    secrets = [value for key, value in query if key == "secret"]
    if len(secrets) != 1 or len(secrets[0]) < MIN_SECRET:
        raise ValueError(f"the webhook URL needs one ?secret= of at least {MIN_SECRET} characters")
    rest = urlencode([(key, value) for key, value in query if key != "secret"])
    return WebhookTarget(urlunsplit((http, parts.netloc, parts.path or "/", rest, "")), secrets[0])


def redact(url: str) -> str:
    """The URL with passwords, tokens and secrets masked, for logs, storage and the API."""
    parts = urlsplit(url)
    if parts.scheme.lower() in WEBHOOK_SCHEMES:
        query = urlencode(
            [(k, "***" if k == "secret" else v) for k, v in parse_qsl(parts.query, True)],
            safe="*",
        )
        return urlunsplit((parts.scheme, _mask_userinfo(parts.netloc), parts.path, query, ""))
    try:
        plugin = apprise.Apprise.instantiate(url)
    except Exception:  # noqa: BLE001 - redaction must never fail: fall back to the generic mask
        plugin = None
    if plugin:
        # apprise knows which parts of each service's URL are secret (tokens in paths too).
        return str(plugin.url(privacy=True))  # type: ignore[no-untyped-call]
    path = "/***" if parts.path else ""
    return urlunsplit((parts.scheme, _mask_userinfo(parts.netloc), path, "", ""))


def _mask_userinfo(netloc: str) -> str:
    if "@" not in netloc:
        return netloc
    userinfo, host = netloc.rsplit("@", 1)
    user = userinfo.split(":", 1)[0]
    return f"{user}:***@{host}" if ":" in userinfo else f"***@{host}"
