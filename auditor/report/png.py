"""A minimal PNG encoder for the small images that charts embed (heat-map panels).

8-bit RGB, no interlacing, filter type 0 on every row, one zlib stream at a fixed level:
the same pixels always give the same bytes, so rendered reports stay reproducible.
"""

from __future__ import annotations

import struct
import zlib

_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return (
        struct.pack(">I", len(payload))
        + kind
        + payload
        + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF)
    )


def encode_rgb(width: int, height: int, pixels: bytes) -> bytes:
    """A PNG of ``width`` x ``height`` pixels from ``pixels``: rows top to bottom, each
    ``width`` (red, green, blue) byte triples, left to right."""
    if width < 1 or height < 1 or len(pixels) != width * height * 3:
        raise ValueError(f"{len(pixels)} bytes are not {width} x {height} RGB pixels")
    stride = width * 3
    raw = b"".join(b"\x00" + pixels[i * stride : (i + 1) * stride] for i in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        _SIGNATURE
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(raw, 9))
        + _chunk(b"IEND", b"")
    )
