"""The frame codec: a plain JPEG whose COM segment carries the frame metadata.

Raw-JPEG consumers (Home Assistant's MQTT camera, browsers) ignore COM segments, so a frame
payload stays a valid JPEG while the hub still learns ``seq`` and ``captured_at``.
Nothing here decodes pixels: the hub never pays for a decode to relay a frame.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass

from pydantic import ValidationError

from glimpser.shared.errors import ProtocolError
from glimpser.shared.models import FrameMeta

SOI = b"\xff\xd8"
EOI = b"\xff\xd9"
COM = 0xFE
_TAG = b"glimpser:"
MAX_FRAME_BYTES = 16 * 1024 * 1024
# SOF markers that carry the frame size (all SOFn except DHT C4, JPG C8, DAC CC).
_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})


@dataclass(frozen=True, slots=True)
class DecodedFrame:
    """A received frame: the JPEG bytes as sent, its metadata and its pixel size."""

    jpeg: bytes
    meta: FrameMeta | None
    width: int
    height: int


def encode_frame(jpeg: bytes, meta: FrameMeta) -> bytes:
    """Return ``jpeg`` with a COM segment holding ``meta`` inserted right after SOI."""
    if not jpeg.startswith(SOI):
        raise ProtocolError("not a JPEG: missing SOI marker")
    body = _TAG + meta.model_dump_json().encode()
    segment = b"\xff\xfe" + struct.pack(">H", len(body) + 2) + body
    return SOI + segment + jpeg[2:]


def decode_frame(data: bytes, max_bytes: int = MAX_FRAME_BYTES) -> DecodedFrame:
    """Validate a frame payload and read its metadata and size without decoding pixels."""
    if len(data) > max_bytes:
        raise ProtocolError(f"frame of {len(data)} bytes exceeds the {max_bytes} byte limit")
    if len(data) < 4 or not data.startswith(SOI):
        raise ProtocolError("not a JPEG: missing SOI marker")
    if EOI not in data[-32:]:
        raise ProtocolError("truncated JPEG: no EOI marker at the end")
    meta: FrameMeta | None = None
    size: tuple[int, int] | None = None
    for marker, start, length in _segments(data):
        if marker == COM and meta is None and data.startswith(_TAG, start):
            meta = _parse_meta(data[start + len(_TAG) : start + length])
        elif marker in _SOF:
            if length < 5:
                raise ProtocolError("corrupt JPEG: short SOF segment")
            height, width = struct.unpack_from(">HH", data, start + 1)
            size = (width, height)
            break
    if size is None or size[0] == 0 or size[1] == 0:
        raise ProtocolError("corrupt JPEG: no frame header with a size")
    return DecodedFrame(data, meta, size[0], size[1])


def jpeg_size(data: bytes) -> tuple[int, int]:
    """Width and height of a JPEG, read from its header."""
    frame = decode_frame(data)
    return frame.width, frame.height


def _segments(data: bytes) -> list[tuple[int, int, int]]:
    """(marker, payload start, payload length) of header segments up to SOS."""
    out: list[tuple[int, int, int]] = []
    pos = 2
    end = len(data)
    while pos + 4 <= end:
        if data[pos] != 0xFF:
            raise ProtocolError(f"corrupt JPEG: expected a marker at byte {pos}")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0xDA:  # start of scan: no more header segments
            break
        (seglen,) = struct.unpack_from(">H", data, pos + 2)
        if seglen < 2 or pos + 2 + seglen > end:
            raise ProtocolError("corrupt JPEG: segment runs past the end")
        out.append((marker, pos + 4, seglen - 2))
        pos += 2 + seglen
    return out


def _parse_meta(raw: bytes) -> FrameMeta:
    try:
        return FrameMeta.model_validate(json.loads(raw))
    except (ValueError, ValidationError, RecursionError) as err:
        raise ProtocolError(f"bad frame metadata: {err}") from err
