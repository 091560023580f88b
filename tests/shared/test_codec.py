"""Frame codec: metadata in a JPEG COM segment; size read from the header, never from pixels."""

from __future__ import annotations

import json
import struct

import cv2
import numpy as np
import pytest

from glimpser.shared.codec import MAX_FRAME_BYTES, decode_frame, encode_frame, jpeg_size
from glimpser.shared.errors import ProtocolError
from glimpser.shared.models import FrameMeta

META = FrameMeta(seq=42, captured_at=1_700_000_000.25)


def make_jpeg(width: int, height: int, *, progressive: bool = False, quality: int = 80) -> bytes:
    """A real JPEG of a gradient (compresses like a scene, unlike noise)."""
    x = np.linspace(0, 255, width, dtype=np.uint8)
    y = np.linspace(0, 255, height, dtype=np.uint8)
    img = np.dstack([np.tile(x, (height, 1)), np.tile(y[:, None], (1, width)),
                     np.full((height, width), 128, np.uint8)])  # fmt: skip
    params = [cv2.IMWRITE_JPEG_QUALITY, quality, cv2.IMWRITE_JPEG_PROGRESSIVE, int(progressive)]
    ok, buf = cv2.imencode(".jpg", img, params)
    assert ok
    return buf.tobytes()


def com_segment(body: bytes) -> bytes:
    return b"\xff\xfe" + struct.pack(">H", len(body) + 2) + body


def with_meta_body(jpeg: bytes, body: bytes) -> bytes:
    """``jpeg`` with a glimpser COM segment holding an arbitrary body."""
    return jpeg[:2] + com_segment(b"glimpser:" + body) + jpeg[2:]


SIZES = [(16, 16), (17, 31), (320, 240), (640, 480), (1280, 720), (1920, 1080), (4056, 3040)]


@pytest.mark.parametrize(("width", "height"), SIZES)
def test_round_trip_reads_size_and_meta(width: int, height: int) -> None:
    jpeg = make_jpeg(width, height)
    payload = encode_frame(jpeg, META)
    frame = decode_frame(payload)
    assert (frame.width, frame.height) == (width, height)
    assert frame.meta == META
    assert frame.jpeg == payload
    assert jpeg_size(payload) == (width, height)
    # Still a valid JPEG with the same pixels for raw-JPEG consumers.
    decoded = cv2.imdecode(np.frombuffer(payload, np.uint8), cv2.IMREAD_COLOR)
    original = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert decoded is not None
    assert original is not None
    assert decoded.shape == (height, width, 3)
    assert np.array_equal(decoded, original)


def test_progressive_jpeg_size_is_read() -> None:
    payload = encode_frame(make_jpeg(800, 600, progressive=True), META)
    frame = decode_frame(payload)
    assert (frame.width, frame.height) == (800, 600)


def test_plain_jpeg_without_meta_decodes() -> None:
    frame = decode_frame(make_jpeg(64, 48))
    assert frame.meta is None
    assert (frame.width, frame.height) == (64, 48)


def test_encode_only_adds_one_com_segment_after_soi() -> None:
    jpeg = make_jpeg(64, 48)
    payload = encode_frame(jpeg, META)
    assert payload.startswith(b"\xff\xd8\xff\xfe")
    (seglen,) = struct.unpack(">H", payload[4:6])
    assert payload[6 : 4 + seglen].startswith(b"glimpser:")
    assert json.loads(payload[6 + len(b"glimpser:") : 4 + seglen]) == META.model_dump()
    assert payload[4 + seglen :] == jpeg[2:]


def test_reencoding_replaces_the_visible_meta() -> None:
    newer = FrameMeta(seq=43, captured_at=1_700_000_001.0, reason="manual")
    frame = decode_frame(encode_frame(encode_frame(make_jpeg(64, 48), META), newer))
    assert frame.meta == newer


def test_foreign_com_segments_are_ignored() -> None:
    jpeg = make_jpeg(64, 48)
    payload = jpeg[:2] + com_segment(b"made by a camera") + jpeg[2:]
    assert decode_frame(payload).meta is None
    assert decode_frame(encode_frame(payload, META)).meta == META


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xff",
        b"\xff\xd8",
        b"GIF89a" + b"\x00" * 100,
        b"\x89PNG\r\n\x1a\n" + b"\x00" * 100,
        b'{"seq": 1}',
        b"not bytes at all",
    ],
)
def test_non_jpeg_is_a_protocol_error(data: bytes) -> None:
    with pytest.raises(ProtocolError):
        decode_frame(data)


def test_encode_rejects_non_jpeg() -> None:
    ok, png = cv2.imencode(".png", np.zeros((8, 8, 3), np.uint8))
    assert ok
    with pytest.raises(ProtocolError, match="not a JPEG"):
        encode_frame(png.tobytes(), META)


@pytest.mark.parametrize("keep", [0.1, 0.5, 0.9, 0.99])
def test_truncated_jpeg_is_a_protocol_error(keep: float) -> None:
    payload = encode_frame(make_jpeg(320, 240), META)
    with pytest.raises(ProtocolError):
        decode_frame(payload[: int(len(payload) * keep)])


def test_header_cut_short_but_ending_in_eoi_is_rejected() -> None:
    jpeg = make_jpeg(320, 240)
    with pytest.raises(ProtocolError, match="corrupt"):
        decode_frame(jpeg[:30] + b"\xff\xd9")


def test_jpeg_without_a_frame_header_is_rejected() -> None:
    # SOI, a comment, then straight to SOS: no SOFn carries a size.
    data = b"\xff\xd8" + com_segment(b"hi") + b"\xff\xda\x00\x02" + b"\x00" * 8 + b"\xff\xd9"
    with pytest.raises(ProtocolError, match="no frame header"):
        decode_frame(data)


def test_zero_sized_frame_header_is_rejected() -> None:
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 8, 8, 0, 0, 0)
    data = b"\xff\xd8" + sof + b"\xff\xda\x00\x02" + b"\x00" * 8 + b"\xff\xd9"
    with pytest.raises(ProtocolError):
        decode_frame(data)


def test_garbage_between_segments_is_rejected() -> None:
    jpeg = make_jpeg(64, 48)
    with pytest.raises(ProtocolError, match="corrupt"):
        decode_frame(jpeg[:2] + b"\x00\x01" + jpeg[2:])


def test_oversize_frames_are_rejected_before_parsing() -> None:
    payload = encode_frame(make_jpeg(64, 48), META)
    assert decode_frame(payload, max_bytes=len(payload)).width == 64
    with pytest.raises(ProtocolError, match="exceeds"):
        decode_frame(payload, max_bytes=len(payload) - 1)
    with pytest.raises(ProtocolError, match="exceeds"):
        decode_frame(b"\xff\xd8" + bytes(MAX_FRAME_BYTES))


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"{",
        b"[1, 2]",
        b"null",
        b'{"seq": -1, "captured_at": 1.0}',
        b'{"seq": 1}',
        b'{"seq": "x", "captured_at": 1.0}',
        b'{"seq": 1, "captured_at": 1.0, "evil": true}',
        b'{"seq": 1, "captured_at": 1.0, "capture_id": "../x"}',
        b"\xff\xfe\xfd",
    ],
)
def test_bad_metadata_is_a_protocol_error(body: bytes) -> None:
    with pytest.raises(ProtocolError, match="bad frame metadata"):
        decode_frame(with_meta_body(make_jpeg(64, 48), body))


def test_deeply_nested_metadata_is_a_protocol_error() -> None:
    body = b"[" * 30_000 + b"]" * 30_000
    with pytest.raises(ProtocolError):
        decode_frame(with_meta_body(make_jpeg(64, 48), body))
