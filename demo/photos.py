"""Each shop photographs the same product its own way: size, padding, background, tint, format."""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image, ImageOps


@dataclass(frozen=True)
class PhotoStyle:
    size: int = 112
    padding: int = 8
    background: tuple[int, int, int] = (0, 0, 0)
    tint: tuple[int, int, int] = (255, 255, 255)  # colour the brightest pixel becomes
    rotation: float = 0.0
    shift: tuple[int, int] = (0, 0)  # the product sits off-centre by this many pixels
    crop: float = 0.0  # share of the photo cut off each side (a tight crop)
    format: str = "PNG"  # PNG, JPEG or WEBP
    quality: int = 88

    @property
    def content_type(self) -> str:
        return {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}[self.format]

    @property
    def extension(self) -> str:
        return {"PNG": "png", "JPEG": "jpg", "WEBP": "webp"}[self.format]


def render_photo(pixels: np.ndarray, style: PhotoStyle) -> bytes:
    """Upscale a 28x28 grey photo and dress it in the shop's style; returns encoded bytes."""
    grey = Image.fromarray(np.ascontiguousarray(pixels), mode="L")
    if style.crop:
        cut = round(grey.width * style.crop)
        grey = grey.crop((cut, cut, grey.width - cut, grey.height - cut))
    inner = style.size - 2 * style.padding
    grey = grey.resize((inner, inner), Image.Resampling.BICUBIC)
    if style.rotation:
        grey = grey.rotate(style.rotation, resample=Image.Resampling.BILINEAR)
    coloured = ImageOps.colorize(grey, black=style.background, white=style.tint)
    canvas = Image.new("RGB", (style.size, style.size), style.background)
    canvas.paste(coloured, (style.padding + style.shift[0], style.padding + style.shift[1]))
    out = io.BytesIO()
    if style.format == "PNG":
        canvas.save(out, "PNG", optimize=False, compress_level=3)
    else:
        canvas.save(out, style.format, quality=style.quality)
    return out.getvalue()


@lru_cache(maxsize=1)
def decompression_bomb_png(side: int = 30_000) -> bytes:
    """A real, valid 1-bit PNG of side x side pixels (900 megapixels) in about 100 KB."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    row = b"\x00" * (1 + (side + 7) // 8)  # filter byte + packed bits
    compressor = zlib.compressobj(9)
    body = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")
    )


def corrupt(data: bytes) -> bytes:
    """A photo cut off part-way, as an interrupted upload leaves it: it starts like an image
    and cannot be decoded. (Junk appended instead would still decode as WebP noise.)"""
    return data[: max(16, len(data) * 2 // 5)]
