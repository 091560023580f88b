"""HTTP cameras (MJPEG streams and JPEG snapshot URLs) passed through without decoding.

An HTTP camera already sends JPEG. Decoding every frame only to encode it again costs most of
the agent's CPU and some quality, so this source hands the camera's own JPEG bytes to the
runner (DESIGN §7): the encoder passes them through when no resize is asked for, motion decodes
a reduced grey copy, and the size comes from the JPEG header.

- ``multipart/x-mixed-replace`` (MJPEG): a grab thread reads the parts as fast as the camera
  sends them and keeps only the latest complete JPEG, so a slow reader never falls behind.
  Parts are read by Content-Length when given, else up to the next boundary; parts that are
  not a complete JPEG are counted and skipped.
- ``image/jpeg`` (snapshot cameras): each ``read`` fetches one JPEG.

Only the standard library is used. Basic authentication comes from the URL's user info; the
password never appears in names, errors or logs. Reconnecting is the runner's job: a read
from a lost stream raises SourceError and the runner reopens the source with backoff.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import logging
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import unquote, urljoin, urlsplit

from glimpser.agent.sources.base import CapturedFrame, redact_url
from glimpser.shared.codec import EOI, MAX_FRAME_BYTES, SOI, jpeg_size
from glimpser.shared.errors import ProtocolError, SourceError
from glimpser.shared.logs import RateLimitedLog
from glimpser.shared.models import HttpSource

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 10.0
MAX_REDIRECTS = 3
_CHUNK = 64 * 1024
_MAX_HEADERS = 8 * 1024
_JPEG_TYPES = frozenset({"image/jpeg", "image/jpg", "image/pjpeg"})
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_USER_AGENT = "glimpser-agent"


class _StreamEnded(Exception):
    """The camera closed the stream or sent something that cannot be a multipart stream."""


@dataclass(frozen=True, slots=True)
class _Target:
    """Where to send a request: the URL split up, with the Authorization header (if any)."""

    https: bool
    host: str
    port: int | None
    path: str
    authorization: str | None


def _target(url: str, authorization: str | None = None) -> _Target:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SourceError(f"not an HTTP camera URL: {redact_url(url)}")
    if parts.username is not None:
        userinfo = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        authorization = "Basic " + base64.b64encode(userinfo.encode()).decode("ascii")
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    try:
        port = parts.port
    except ValueError as err:
        raise SourceError(f"bad port in camera URL {redact_url(url)}") from err
    return _Target(parts.scheme == "https", parts.hostname, port, path, authorization)


@dataclass(slots=True)
class _Response:
    """An open HTTP response and the socket under it (shut down to interrupt a read)."""

    conn: http.client.HTTPConnection
    sock: socket.socket | None
    resp: http.client.HTTPResponse

    def shutdown(self) -> None:
        """Wake up a read blocked on the socket, from any thread."""
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        """Close the response and its connection."""
        self.resp.close()
        self.conn.close()


class HttpJpegSource:
    """An HTTP camera whose JPEG frames are passed through as the camera encoded them."""

    def __init__(
        self,
        spec: HttpSource,
        *,
        connect_timeout: float = CONNECT_TIMEOUT,
        read_timeout: float = READ_TIMEOUT,
        max_part: int = MAX_FRAME_BYTES,
    ) -> None:
        self._url = spec.url
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._max_part = max_part
        self._grabber: _Grabber | None = None
        self._snapshot: bool = False
        self._pending: CapturedFrame | None = None
        self._corrupt_snapshots = 0

    @property
    def name(self) -> str:
        """The camera URL with any password masked."""
        return f"HTTP camera {redact_url(self._url)}"

    @property
    def corrupt_parts(self) -> int:
        """Parts (or snapshots) skipped because they were not a complete JPEG."""
        grabbed = self._grabber.corrupt if self._grabber is not None else 0
        return grabbed + self._corrupt_snapshots

    @property
    def mode(self) -> str | None:
        """``mjpeg`` or ``snapshot`` once open, None before."""
        if self._grabber is not None:
            return "mjpeg"
        return "snapshot" if self._snapshot else None

    def open(self) -> None:
        """Connect and look at what the camera sends; raise SourceError when it cannot."""
        self.close()
        response = self._request()
        try:
            ctype = response.resp.getheader("Content-Type")
            kind = response.resp.msg.get_content_type() if ctype else ""
            if kind in _JPEG_TYPES:
                # A snapshot camera: keep this first image for the first read.
                self._pending = self._snapshot_frame(response)
                self._snapshot = True
                response.close()
                return
            if kind.startswith("multipart/"):
                boundary = response.resp.msg.get_boundary()
                self._grabber = _Grabber(
                    response, boundary, self.name, self._read_timeout, self._max_part
                )
                self._grabber.start()
                return
        except BaseException:
            response.close()
            raise
        response.close()
        received = f"Content-Type {ctype!r}" if ctype else "no Content-Type"
        raise SourceError(
            f"{self.name} sent {received}: expected an MJPEG stream "
            "(multipart/x-mixed-replace) or a JPEG image (image/jpeg)"
        )

    def read(self) -> CapturedFrame:
        """The latest frame of the stream, or a freshly fetched snapshot."""
        if self._grabber is not None:
            return self._grabber.latest(self._read_timeout)
        if not self._snapshot:
            raise SourceError(f"{self.name} is not open")
        pending, self._pending = self._pending, None
        if pending is not None:
            return pending
        response = self._request()
        try:
            return self._snapshot_frame(response)
        finally:
            response.close()

    def close(self) -> None:
        """Stop the grab thread and drop the connection; safe to call twice."""
        grabber, self._grabber = self._grabber, None
        if grabber is not None:
            grabber.stop(self._read_timeout)
        self._snapshot = False
        self._pending = None

    # ------------------------------------------------------------------ HTTP

    def _request(self) -> _Response:
        """GET the camera URL (following a few redirects) and return a 200 response."""
        url = self._url
        target = _target(url)
        for _ in range(MAX_REDIRECTS + 1):
            response = self._get(target)
            status = response.resp.status
            if status == 200:
                return response
            location = response.resp.getheader("Location")
            challenge = response.resp.getheader("WWW-Authenticate") or ""
            reason = response.resp.reason
            response.close()
            if status in _REDIRECTS and location:
                new_url = urljoin(url, location)
                new = _target(new_url)
                # Credentials follow a redirect only to the same host.
                keep = target.authorization if new.host == target.host else None
                url, target = new_url, _target(new_url, new.authorization or keep)
                continue
            raise SourceError(self._status_error(status, reason, challenge, target))
        raise SourceError(f"{self.name} redirects more than {MAX_REDIRECTS} times")

    def _status_error(self, status: int, reason: str, challenge: str, target: _Target) -> str:
        if status == 401:
            if challenge.lower().startswith("digest"):
                return (
                    f"{self.name} asks for HTTP Digest authentication (HTTP 401), "
                    "which is not supported: only Basic"
                )
            if target.authorization is None:
                return f"{self.name} needs a user name and password (HTTP 401)"
            return f"{self.name} refused the user name or password (HTTP 401)"
        return f"{self.name} answered HTTP {status} {reason}".rstrip()

    def _get(self, target: _Target) -> _Response:
        conn: http.client.HTTPConnection
        if target.https:
            conn = http.client.HTTPSConnection(
                target.host, target.port, timeout=self._connect_timeout
            )
        else:
            conn = http.client.HTTPConnection(
                target.host, target.port, timeout=self._connect_timeout
            )
        try:
            conn.connect()
        except TimeoutError:
            conn.close()
            raise SourceError(
                f"cannot connect to {self.name}: no answer within {self._connect_timeout:g} s"
            ) from None
        except OSError as err:
            conn.close()
            raise SourceError(f"cannot connect to {self.name}: {_describe(err)}") from None
        sock = conn.sock
        if sock is not None:
            sock.settimeout(self._read_timeout)
        headers = {"User-Agent": _USER_AGENT, "Accept": "multipart/x-mixed-replace, image/jpeg"}
        if target.authorization is not None:
            headers["Authorization"] = target.authorization
        try:
            conn.request("GET", target.path, headers=headers)
            resp = conn.getresponse()
        except (OSError, http.client.HTTPException) as err:
            conn.close()
            raise SourceError(f"{self.name} did not answer: {_describe(err)}") from None
        return _Response(conn, sock, resp)

    def _snapshot_frame(self, response: _Response) -> CapturedFrame:
        resp = response.resp
        kind = resp.msg.get_content_type() if resp.getheader("Content-Type") else ""
        if kind not in _JPEG_TYPES:
            raise SourceError(f"{self.name} sent {kind or 'no Content-Type'} instead of a JPEG")
        try:
            data = resp.read(self._max_part + 1)
        except (OSError, http.client.HTTPException) as err:
            raise SourceError(f"lost {self.name}: {_describe(err)}") from None
        if len(data) > self._max_part:
            raise SourceError(f"{self.name} sent a JPEG over {self._max_part} bytes")
        try:
            width, height = _check_jpeg(data)
        except ProtocolError as err:
            self._corrupt_snapshots += 1
            raise SourceError(f"{self.name} sent a corrupt JPEG: {err}") from None
        return CapturedFrame(width=width, height=height, jpeg=data)


def _check_jpeg(data: bytes) -> tuple[int, int]:
    """The size of a complete JPEG; ProtocolError when it is not one."""
    if not data.startswith(SOI):
        raise ProtocolError("no SOI marker at the start")
    if not data.rstrip(b"\0\r\n").endswith(EOI):
        raise ProtocolError("truncated: no EOI marker at the end")
    return jpeg_size(data)


def _describe(err: BaseException) -> str:
    if isinstance(err, TimeoutError):
        return "timed out"
    if isinstance(err, ConnectionRefusedError):
        return "connection refused"
    if isinstance(err, ConnectionResetError):
        return "connection reset"
    if isinstance(err, OSError) and err.strerror:
        return err.strerror
    text = str(err)
    return text or type(err).__name__


class _PartReader:
    """Splits a multipart/x-mixed-replace body into its parts' bodies.

    Tolerant of what cameras really send: the boundary parameter with or without leading
    dashes (and quoted), delimiter lines with or without ``--``, parts with or without
    Content-Length and with no headers at all.
    """

    def __init__(self, read1: Callable[[int], bytes], boundary: str | None, max_part: int):
        self._read1 = read1
        self._core = boundary.strip().lstrip("-").encode("latin-1") if boundary else None
        self._max = max_part
        self._buf = bytearray()

    def next_part(self) -> bytes:
        """The body of the next part; _StreamEnded or OSError when the stream ends."""
        self._skip_delimiter()
        length = self._headers()
        if length is not None:
            self._need(length)
            body = bytes(self._buf[:length])
            del self._buf[:length]
            return body
        end = self._find_delimiter(0)
        body = bytes(self._buf[:end])
        del self._buf[:end]
        return body.rstrip(b"\r\n")

    def _fill(self) -> None:
        data = self._read1(_CHUNK)
        if not data:
            raise _StreamEnded("the camera closed the stream")
        self._buf += data

    def _need(self, n: int) -> None:
        while len(self._buf) < n:
            self._fill()

    def _learn_boundary(self) -> bytes:
        """No boundary parameter: take it from the first ``--`` line of the body."""
        while True:
            start = 0
            while start < len(self._buf) and self._buf[start] in b"\r\n":
                start += 1
            nl = self._buf.find(b"\n", start)
            if nl >= 0:
                line = bytes(self._buf[start:nl]).strip()
                if not line.startswith(b"--") or len(line) < 3:
                    raise _StreamEnded("multipart stream without a boundary")
                return line.lstrip(b"-")
            if len(self._buf) > _MAX_HEADERS:
                raise _StreamEnded("multipart stream without a boundary")
            self._fill()

    def _skip_delimiter(self) -> None:
        """Drop everything up to and including the next delimiter line."""
        if self._core is None:
            self._core = self._learn_boundary()
        start = self._find_delimiter(0)
        while True:
            nl = self._buf.find(b"\n", start)
            if nl >= 0:
                break
            self._fill()
        rest = bytes(self._buf[start:nl]).strip().lstrip(b"-")[len(self._core) :]
        del self._buf[: nl + 1]
        if rest.startswith(b"--"):
            raise _StreamEnded("the camera ended the stream")

    def _find_delimiter(self, start: int) -> int:
        """Where the next delimiter line begins (its preceding CR LF excluded)."""
        core = self._core
        assert core is not None
        pos = start
        while True:
            hit = self._buf.find(core, pos)
            if hit >= 0:
                line = self._buf.rfind(b"\n", start, hit) + 1
                if line == 0:
                    line = start
                if all(b == 0x2D for b in self._buf[line:hit]):  # only dashes before it
                    return line
                pos = hit + 1
                continue
            if len(self._buf) > self._max + _MAX_HEADERS:
                raise _StreamEnded(f"no boundary within {self._max} bytes")
            pos = max(pos, len(self._buf) - len(core) - 2)
            self._fill()

    def _headers(self) -> int | None:
        """Consume a part's headers; its Content-Length when it gives a usable one."""
        length: int | None = None
        while True:
            if self._buf.startswith(SOI):
                return length  # a part with no headers (or no blank line after them)
            nl = self._buf.find(b"\n")
            if nl < 0:
                if len(self._buf) > _MAX_HEADERS:
                    raise _StreamEnded("part headers too long")
                self._fill()
                continue
            line = bytes(self._buf[:nl]).strip()
            del self._buf[: nl + 1]
            if not line:
                return length
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                try:
                    n = int(value.strip())
                except ValueError:
                    continue
                if 0 < n <= self._max:
                    length = n


class _Grabber:
    """Reads an MJPEG stream as fast as it arrives, keeping only the latest complete JPEG."""

    def __init__(
        self,
        response: _Response,
        boundary: str | None,
        name: str,
        timeout: float,
        max_part: int,
    ) -> None:
        self._response = response
        self._reader = _PartReader(response.resp.read1, boundary, max_part)
        self._name = name
        self._timeout = timeout
        self._cond = threading.Condition()
        self._frame: CapturedFrame | None = None
        self._seq = 0
        self._taken = 0
        self._error: str | None = None
        self.corrupt = 0
        self._rlog = RateLimitedLog(log)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"grab {name}", daemon=True)

    def start(self) -> None:
        """Start reading."""
        self._thread.start()

    def latest(self, timeout: float) -> CapturedFrame:
        """A frame newer than the last one returned; SourceError on failure or timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._seq == self._taken and self._error is None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    skipped = f" ({self.corrupt} corrupt parts skipped)" if self.corrupt else ""
                    raise SourceError(f"no frame from {self._name} for {timeout:g} s{skipped}")
                self._cond.wait(remaining)
            if self._seq == self._taken:
                raise SourceError(self._error or f"{self._name} stopped")
            assert self._frame is not None
            self._taken = self._seq
            return self._frame

    def stop(self, timeout: float) -> None:
        """Stop the thread; shutting the socket down wakes a blocked read at once."""
        self._stop.set()
        self._response.shutdown()
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.warning("%s: grab thread did not stop within %g s", self._name, timeout)

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                part = self._reader.next_part()
                try:
                    width, height = _check_jpeg(part)
                except ProtocolError as err:
                    self.corrupt += 1
                    self._rlog.warning(
                        f"corrupt:{self._name}",
                        "%s: skipped a part that is not a complete JPEG (%s; %d so far)",
                        self._name,
                        err,
                        self.corrupt,
                    )
                    continue
                frame = CapturedFrame(width=width, height=height, jpeg=part)
                with self._cond:
                    self._frame = frame
                    self._seq += 1
                    self._cond.notify_all()
        except TimeoutError:
            self._fail(f"lost {self._name}: no data for {self._timeout:g} s")
        except (_StreamEnded, OSError, http.client.HTTPException, ValueError) as err:
            self._fail(f"lost {self._name}: {_describe(err)}")
        finally:
            self._response.close()

    def _fail(self, message: str) -> None:
        with self._cond:
            if self._stop.is_set():
                message = f"{self._name} stopped"
            self._error = message
            self._cond.notify_all()
