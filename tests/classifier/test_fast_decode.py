"""OpenCV's fast path gives the picture Pillow's gives, and leaves to Pillow what it must."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from classifier.data import decode_photo
from classifier.fashion_mnist import load_split
from classifier.fast_decode import decode_plain
from classifier.transforms import photo_to_array
from demo.classic import ClassicShop
from demo.menu import MenuShop
from demo.photos import render_photo
from demo.scroll import ScrollShop
from demo.spa import SpaShop

SHOPS = (ClassicShop, SpaShop, ScrollShop, MenuShop)
STYLES = [shop.photo_style for shop in SHOPS] + [shop.hard_photo_style for shop in SHOPS]


def pillow(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        return photo_to_array(image)


@pytest.fixture(scope="module")
def garments():
    return load_split("test").images[:40]


@pytest.mark.parametrize("style", STYLES, ids=lambda s: f"{s.format}-{s.size}")
def test_every_demo_style_decodes_to_pillows_picture(style, garments):
    for pixels in garments:
        data = render_photo(pixels, style)
        fast = decode_plain(data)
        assert fast is not None and fast.shape == (28, 28) and fast.dtype == np.uint8
        # colour to grey rounds a little differently in the two codecs
        assert np.abs(fast.astype(int) - pillow(data).astype(int)).max() <= 2


def test_a_light_backdrop_is_inverted_as_pillows_path_does():
    garment = np.zeros((28, 28), np.uint8)
    garment[8:20, 10:18] = 200
    backdrop = Image.fromarray(255 - garment).resize((112, 112))
    data = io.BytesIO()
    backdrop.save(data, "PNG")
    fast = decode_plain(data.getvalue())
    assert fast is not None and fast[0, 0] < 20 and fast[14, 14] > 150  # light on dark
    assert np.array_equal(fast, pillow(data.getvalue()))


def saved(image: Image.Image, fmt: str, **options) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def test_what_may_be_turned_cut_short_or_of_another_format_is_left_to_pillow():
    image = Image.fromarray(np.tile(np.arange(64, dtype=np.uint8), (48, 1))).convert("RGB")
    exif = Image.Exif()
    exif[0x0112] = 6  # turned: Pillow's reading of the orientation is the one to follow
    jpeg = saved(image, "JPEG")
    assert decode_plain(jpeg) is not None
    assert decode_plain(saved(image, "JPEG", exif=exif)) is None
    assert decode_plain(saved(image, "PNG", exif=exif)) is None
    assert decode_plain(saved(image, "WEBP", exif=exif)) is None
    assert decode_plain(saved(image, "GIF")) is None
    assert decode_plain(saved(image, "BMP")) is None
    assert decode_plain(jpeg[: len(jpeg) // 2]) is None
    png = saved(image, "PNG")
    assert decode_plain(png[:-20]) is None


def test_a_photo_cut_short_is_still_reported_unreadable(tmp_path):
    image = Image.fromarray(np.tile(np.arange(64, dtype=np.uint8), (48, 1))).convert("RGB")
    path = tmp_path / "cut.jpg"
    path.write_bytes(saved(image, "JPEG")[:300])
    array, reason = decode_photo(path)
    assert array is None and reason
