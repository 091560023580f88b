"""The pass-through HTTP source against real aiohttp cameras on 127.0.0.1."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import struct
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import cv2
import numpy as np
import pytest
from aiohttp import web

from glimpser.agent.capture.runner import StreamRunner
from glimpser.agent.sources.base import CapturedFrame, build_source
from glimpser.agent.sources.mjpeg import HttpJpegSource
from glimpser.shared.backoff import Backoff
from glimpser.shared.codec import decode_frame
from glimpser.shared.errors import SourceError
from glimpser.shared.models import HttpSource, StreamStatus, Template
from tests.agent.conftest import FakePublisher
from tests.helpers import free_port, wait_for

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _base_jpeg(width: int = 320, height: int = 240) -> bytes:
    image = np.zeros((height, width, 3), np.uint8)
    cv2.putText(image, "cam", (20, height // 2), cv2.FONT_HERSHEY_SIMPLEX, 1.5, (255,) * 3, 3)
    ok, buf = cv2.imencode(".jpg", image)
    assert ok
    return buf.tobytes()


BASE = _base_jpeg()


def numbered(i: int, base: bytes = BASE) -> bytes:
    """``base`` with a COM segment ``cam:<i>`` after SOI: a distinct, valid JPEG per index."""
    body = f"cam:{i}".encode()
    return base[:2] + b"\xff\xfe" + struct.pack(">H", len(body) + 2) + body + base[2:]


def index_of(jpeg: bytes) -> int:
    assert jpeg[2:4] == b"\xff\xfe", "no COM segment after SOI"
    (length,) = struct.unpack(">H", jpeg[4:6])
    return int(jpeg[6 : 4 + length].decode().removeprefix("cam:"))


def strip_our_com(payload: bytes) -> bytes:
    """A published frame without the glimpser COM segment the agent inserted after SOI."""
    assert payload[2:4] == b"\xff\xfe"
    (length,) = struct.unpack(">H", payload[4:6])
    assert payload[6:15] == b"glimpser:"
    return payload[:2] + payload[4 + length :]


@dataclass
class Camera:
    """What a test camera sent: the index and send time of each frame."""

    sent: list[tuple[int, float]] = field(default_factory=list)
    requests: int = 0


def mjpeg_handler(
    camera: Camera,
    *,
    content_type: str = "multipart/x-mixed-replace; boundary=cam",
    delimiter: bytes = b"--cam",
    length: bool = True,
    headers: bool = True,
    period: float = 0.02,
    part: Callable[[int], bytes] = numbered,
) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        camera.requests += 1
        resp = web.StreamResponse(headers={"Content-Type": content_type})
        await resp.prepare(request)
        i = 0
        with contextlib.suppress(ConnectionError, asyncio.CancelledError):
            while True:
                body = part(i)
                head = b"Content-Type: image/jpeg\r\n" if headers else b""
                if headers and length:
                    head += f"Content-Length: {len(body)}\r\n".encode()
                if headers:
                    head += b"\r\n"
                await resp.write(delimiter + b"\r\n" + head + body + b"\r\n")
                camera.sent.append((i, time.monotonic()))
                i += 1
                await asyncio.sleep(period)
        return resp

    return handler


@contextlib.asynccontextmanager
async def serve(handler: Handler, port: int | None = None) -> AsyncIterator[str]:
    """Serve ``handler`` at /cam on 127.0.0.1; yields the URL without credentials."""
    port = port or free_port()
    app = web.Application()
    app.router.add_get("/cam", handler)
    runner = web.AppRunner(app, shutdown_timeout=0.2)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, reuse_address=True).start()
    try:
        yield f"http://127.0.0.1:{port}/cam"
    finally:
        await runner.cleanup()


def source(
    url: str, *, connect_timeout: float = 10.0, read_timeout: float = 10.0
) -> HttpJpegSource:
    spec = HttpSource(url=url)
    return HttpJpegSource(spec, connect_timeout=connect_timeout, read_timeout=read_timeout)


async def read_frames(src: HttpJpegSource, n: int) -> list[CapturedFrame]:
    await asyncio.to_thread(src.open)
    try:
        return [await asyncio.to_thread(src.read) for _ in range(n)]
    finally:
        await asyncio.to_thread(src.close)


def test_build_source_picks_the_pass_through_source_for_http() -> None:
    template = Template.model_validate(
        {"id": "cam", "name": "cam", "source": {"kind": "http", "url": "http://cam/video"}}
    )
    assert isinstance(build_source(template), HttpJpegSource)


@pytest.mark.parametrize(
    ("content_type", "delimiter", "length", "headers"),
    [
        ("multipart/x-mixed-replace; boundary=cam", b"--cam", True, True),
        ("multipart/x-mixed-replace; boundary=cam", b"--cam", False, True),
        ('multipart/x-mixed-replace; boundary="--myboundary"', b"--myboundary", False, True),
        ("multipart/x-mixed-replace;boundary=--myboundary", b"----myboundary", True, True),
        ("multipart/x-mixed-replace; boundary=cam", b"cam", False, True),
        ("multipart/x-mixed-replace; boundary=cam", b"--cam", False, False),
        ("multipart/x-mixed-replace", b"--learned", True, True),
    ],
    ids=["length", "scan", "quoted-dashes", "rfc-dashes", "no-dashes", "no-headers", "no-param"],
)
async def test_mjpeg_frames_pass_through_byte_for_byte(
    content_type: str, delimiter: bytes, length: bool, headers: bool
) -> None:
    camera = Camera()
    handler = mjpeg_handler(
        camera, content_type=content_type, delimiter=delimiter, length=length, headers=headers
    )
    async with serve(handler) as url:
        src = source(url)
        frames = await read_frames(src, 5)
        assert src.corrupt_parts == 0
    indexes = [index_of(f.jpeg or b"") for f in frames]
    assert indexes == sorted(set(indexes)), "each read returns a newer frame"
    for frame, i in zip(frames, indexes, strict=True):
        assert frame.image is None and frame.jpeg == numbered(i)  # untouched camera bytes
        assert (frame.width, frame.height) == (320, 240)


async def test_snapshot_url_fetches_one_jpeg_per_read() -> None:
    camera = Camera()

    async def snapshot(request: web.Request) -> web.StreamResponse:
        camera.requests += 1
        return web.Response(body=numbered(camera.requests), content_type="image/jpeg")

    async with serve(snapshot) as url:
        src = source(url)
        frames = await read_frames(src, 3)
        assert src.mode is None  # closed
    assert [f.jpeg for f in frames] == [numbered(1), numbered(2), numbered(3)]
    assert camera.requests == 3
    assert all((f.width, f.height) == (320, 240) for f in frames)


def _basic_auth(camera: Camera, inner: Handler, user: str, password: str) -> Handler:
    expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    async def handler(request: web.Request) -> web.StreamResponse:
        if request.headers.get("Authorization") != expected:
            return web.Response(status=401, headers={"WWW-Authenticate": 'Basic realm="cam"'})
        return await inner(request)

    return handler


async def test_basic_auth_from_the_url_user_info() -> None:
    camera = Camera()
    handler = _basic_auth(camera, mjpeg_handler(camera), "viewer", "p@ss:word")
    async with serve(handler) as url:
        good = url.replace("http://", "http://viewer:p%40ss%3Aword@")
        frames = await read_frames(source(good), 2)
        assert len(frames) == 2

        bad = url.replace("http://", "http://viewer:wrong-s3cret@")
        with pytest.raises(SourceError, match="refused the user name or password") as refused:
            await asyncio.to_thread(source(bad).open)
        assert "wrong-s3cret" not in str(refused.value) and "127.0.0.1" in str(refused.value)

        with pytest.raises(SourceError, match="needs a user name and password"):
            await asyncio.to_thread(source(url).open)


async def test_digest_only_camera_says_so() -> None:
    async def digest(request: web.Request) -> web.StreamResponse:
        return web.Response(status=401, headers={"WWW-Authenticate": 'Digest realm="c", nonce="1"'})

    async with serve(digest) as url:
        with pytest.raises(SourceError, match="Digest"):
            await asyncio.to_thread(source(url.replace("http://", "http://a:b@")).open)


async def test_wrong_content_type_says_what_was_received() -> None:
    async def page(request: web.Request) -> web.StreamResponse:
        return web.Response(text="<html>login</html>", content_type="text/html")

    async with serve(page) as url:
        with pytest.raises(SourceError, match=r"sent Content-Type 'text/html.*expected an MJPEG"):
            await asyncio.to_thread(source(url).open)


async def test_http_error_status_is_reported() -> None:
    async def missing(request: web.Request) -> web.StreamResponse:
        return web.Response(status=404)

    async with serve(missing) as url:
        with pytest.raises(SourceError, match=r"answered HTTP 404 Not Found"):
            await asyncio.to_thread(source(url).open)


async def test_corrupt_parts_are_counted_and_skipped() -> None:
    def part(i: int) -> bytes:
        good = numbered(i)
        if i % 3 == 1:
            return good[: len(good) // 2]  # truncated: no EOI
        if i % 3 == 2:
            return b"not a jpeg at all"
        return good

    for length in (True, False):
        camera = Camera()
        async with serve(mjpeg_handler(camera, part=part, length=length)) as url:
            src = source(url)
            await asyncio.to_thread(src.open)
            try:
                frames = [await asyncio.to_thread(src.read) for _ in range(4)]
                corrupt = src.corrupt_parts
            finally:
                await asyncio.to_thread(src.close)
        assert all(index_of(f.jpeg or b"") % 3 == 0 for f in frames)
        assert corrupt >= 6, corrupt


async def test_server_down_names_the_host_without_the_password() -> None:
    port = free_port()
    src = source(f"http://admin:hunter2@127.0.0.1:{port}/cam", connect_timeout=2)
    with pytest.raises(SourceError) as err:
        await asyncio.to_thread(src.open)
    message = str(err.value)
    assert f"127.0.0.1:{port}" in message and "hunter2" not in message, message
    assert "admin:***@" in message and "connection refused" in message


async def test_stream_loss_is_a_read_error() -> None:
    camera = Camera()
    port = free_port()
    src = source(f"http://admin:hunter2@127.0.0.1:{port}/cam")
    async with serve(mjpeg_handler(camera), port):
        await asyncio.to_thread(src.open)
        await asyncio.to_thread(src.read)
    try:
        with pytest.raises(SourceError, match=r"lost HTTP camera .*127\.0\.0\.1") as err:
            for _ in range(50):  # frames already received may still be served once
                await asyncio.to_thread(src.read)
        assert "hunter2" not in str(err.value)
    finally:
        await asyncio.to_thread(src.close)


async def test_stalled_stream_times_out_and_close_is_prompt() -> None:
    async def stall(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(
            headers={"Content-Type": "multipart/x-mixed-replace; boundary=cam"}
        )
        await resp.prepare(request)
        body = numbered(0)  # with its length: without, a part ends at the next boundary
        await resp.write(b"--cam\r\nContent-Length: %d\r\n\r\n" % len(body) + body + b"\r\n")
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(60)
        return resp

    async with serve(stall) as url:
        src = source(url, read_timeout=0.5)
        await asyncio.to_thread(src.open)
        try:
            first = await asyncio.to_thread(src.read)
            assert first.jpeg == numbered(0)
            with pytest.raises(SourceError, match=r"(no frame from|lost) HTTP camera .* 0\.5 s"):
                await asyncio.to_thread(src.read)
        finally:
            started = time.monotonic()
            await asyncio.to_thread(src.close)
            assert time.monotonic() - started < 0.4


async def test_slow_reader_gets_the_latest_frame_not_a_backlog() -> None:
    camera = Camera()
    async with serve(mjpeg_handler(camera, period=0.01)) as url:
        src = source(url)
        await asyncio.to_thread(src.open)
        try:
            lags = []
            for _ in range(4):
                await asyncio.sleep(0.3)  # reading far slower than the camera sends
                frame = await asyncio.to_thread(src.read)
                newest = camera.sent[-1][0]
                lags.append(newest - index_of(frame.jpeg or b""))
        finally:
            await asyncio.to_thread(src.close)
    # Each read returns (within a few parts) the newest frame sent, not the next one queued:
    # a backlog would lag by ~30 more parts per read.
    assert max(lags) <= 10, lags


async def test_runner_publishes_the_camera_bytes(publisher: FakePublisher) -> None:
    camera = Camera()
    async with serve(mjpeg_handler(camera, period=0.05)) as url:
        template = Template.model_validate(
            {
                "id": "cam",
                "name": "cam",
                "source": {"kind": "http", "url": url},
                "fps": 10,
                "keepalive": 0.5,
                "motion": {},  # motion decodes its reduced grey copy; the frame stays as sent
            }
        )
        async with StreamRunner(template, "edge", publisher):
            await wait_for(lambda: len(publisher.frames) >= 3 and publisher.snapshots, timeout=10)
    for _, payload in publisher.frames:
        frame = decode_frame(payload)
        assert frame.meta is not None and (frame.width, frame.height) == (320, 240)
        camera_bytes = strip_our_com(payload)
        assert camera_bytes == numbered(index_of(camera_bytes))  # byte-identical pass-through
    assert publisher.snapshots[0] == numbered(index_of(publisher.snapshots[0]))


async def test_runner_resizes_when_the_template_asks(publisher: FakePublisher) -> None:
    camera = Camera()
    async with serve(mjpeg_handler(camera, period=0.05)) as url:
        template = Template.model_validate(
            {
                "id": "cam",
                "name": "cam",
                "source": {"kind": "http", "url": url},
                "fps": 10,
                "width": 160,
                "height": 120,
                "keepalive": 0.5,
            }
        )
        async with StreamRunner(template, "edge", publisher):
            await wait_for(lambda: len(publisher.frames) >= 2, timeout=10)
    frame = decode_frame(publisher.frames[-1][1])
    assert (frame.width, frame.height) == (160, 120)


async def test_camera_loss_is_an_error_and_recovery_is_active(publisher: FakePublisher) -> None:
    camera = Camera()
    port = free_port()
    url = f"http://viewer:s3cret@127.0.0.1:{port}/cam"
    template = Template.model_validate(
        {"id": "ipcam", "name": "IP cam", "source": {"kind": "http", "url": url}, "fps": 10}
    )
    runner = StreamRunner(template, "edge", publisher, backoff=Backoff(base=0.1, cap=0.5))
    async with runner:
        await wait_for(lambda: publisher.status_is(StreamStatus.ERROR), timeout=15)
        error = publisher.last.error or ""
        assert "127.0.0.1" in error and "s3cret" not in error, error

        async with serve(mjpeg_handler(camera, period=0.05), port):
            await wait_for(lambda: publisher.status_is(StreamStatus.ACTIVE), timeout=20)
            assert (publisher.last.width, publisher.last.height) == (320, 240)

        await wait_for(lambda: publisher.status_is(StreamStatus.ERROR), timeout=20)
        assert publisher.last.error and "s3cret" not in publisher.last.error

        async with serve(mjpeg_handler(camera, period=0.05), port):
            await wait_for(lambda: publisher.status_is(StreamStatus.ACTIVE), timeout=20)
    assert publisher.status_is(StreamStatus.INACTIVE)
