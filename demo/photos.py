"""Each shop photographs the same product its own way: size, padding, background, tint, format."""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps


@dataclass(frozen=True)
class PhotoStyle:
    size: int = 112
    padding: int = 8
    background: tuple[int, int, int] = (0, 0, 0)
    tint: tuple[int, int, int] = (255, 255, 255)  # colour the brightest pixel becomes
    rotation: float = 0.0
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
    inner = style.size - 2 * style.padding
    grey = grey.resize((inner, inner), Image.Resampling.BICUBIC)
    if style.rotation:
        grey = grey.rotate(style.rotation, resample=Image.Resampling.BILINEAR)
    coloured = ImageOps.colorize(grey, black=style.background, white=style.tint)
    canvas = Image.new("RGB", (style.size, style.size), style.background)
    canvas.paste(coloured, (style.padding, style.padding))
    out = io.BytesIO()
    if style.format == "PNG":
        canvas.save(out, "PNG", optimize=False, compress_level=3)
    else:
        canvas.save(out, style.format, quality=style.quality)
    return out.getvalue()
