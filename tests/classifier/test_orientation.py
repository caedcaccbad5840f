"""Photos stored turned or mirrored, with an EXIF orientation saying how to show them, reach the
model upright, by training's decoding and by `classify`'s alike; and both bring a photo file to
the same input tensor."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

from classifier.data import decode_photos, photo_batches, read_photo
from classifier.inference import to_input
from classifier.transforms import exif_orientation, normalise

# orientation -> how the camera stored an upright picture (the inverse of the turn that shows it)
STORED = {
    1: None,
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}
ALL_TURNS = [None, *Image.Transpose]  # the picture's eight looks (and the two rotations by 90)


def upright() -> Image.Image:
    """A product on a dark background, wider than tall, with no symmetry a turn or mirror keeps:
    a block at the top left and a bar from it to the right."""
    pixels = np.full((96, 128, 3), 20, dtype=np.uint8)
    pixels[16:72, 16:56] = (230, 210, 190)
    pixels[16:32, 56:112] = (200, 220, 240)
    return Image.fromarray(pixels)


def save(image: Image.Image, path: Path, orientation: int | None = None, **options) -> Path:
    if orientation is not None:
        exif = Image.Exif()
        exif[0x010F] = "PhoneMaker"  # an EXIF block as phones write it: other tags too
        exif[0x0112] = orientation
        options["exif"] = exif.tobytes()
    image.save(path, **options)
    return path


def stored_photo(folder: Path, orientation: int, suffix: str = ".jpg") -> Path:
    turn = STORED[orientation]
    stored = upright() if turn is None else upright().transpose(turn)
    path = save(stored, folder / f"o{orientation}{suffix}", orientation, quality=95)
    shown = ImageOps.exif_transpose(Image.open(path))  # Pillow agrees: it shows upright
    assert shown.size == upright().size
    return path


def decoded_by_training(path: Path) -> np.ndarray:
    """As training decodes scraped photos (scraped_sets), in this process."""
    arrays, kept = decode_photos([str(path)], workers=0)
    assert kept == [0]
    return arrays[0].numpy()


def decoded_by_classify(path: Path) -> np.ndarray:
    """As `pricelens classify` decodes (Classifier.predict_paths), in this process."""
    [(arrays, indexes)] = list(photo_batches([str(path)], workers=0))
    assert indexes == [0]
    return arrays[0].numpy()


def nearest_look(array: np.ndarray, expected: np.ndarray) -> Image.Transpose | None:
    """Which of the expected picture's looks *array* is closest to (None: as it is)."""
    picture = Image.fromarray(expected)

    def distance(turn):
        look = np.array(picture if turn is None else picture.transpose(turn), dtype=int)
        return np.abs(look - array).mean()

    return min(ALL_TURNS, key=distance)


@pytest.mark.parametrize("decode", [decoded_by_training, decoded_by_classify, read_photo])
@pytest.mark.parametrize("orientation", sorted(STORED))
def test_a_photo_stored_turned_is_decoded_upright(tmp_path, orientation, decode):
    expected = decoded_by_training(save(upright(), tmp_path / "upright.jpg", quality=95))
    array = decode(stored_photo(tmp_path, orientation))
    assert nearest_look(array, expected) is None
    assert np.abs(array.astype(int) - expected).mean() < 2


@pytest.mark.parametrize("suffix", [".png", ".webp"])
def test_other_formats_are_turned_upright_too(tmp_path, suffix):
    expected = decoded_by_training(save(upright(), tmp_path / f"upright{suffix}"))
    array = decoded_by_classify(stored_photo(tmp_path, 6, suffix))
    assert nearest_look(array, expected) is None


def test_the_orientation_is_read_without_pillows_whole_exif_parse(tmp_path, monkeypatch):
    """Pillow parses a whole EXIF block (~50 us, a sixth of a small JPEG's decoding; at open
    already for a JPEG without JFIF dpi); only the orientation entry is read here."""
    images = [
        Image.open(save(upright(), tmp_path / "dpi.jpg", 6, dpi=(72, 72))),  # parsed at open: no
        Image.open(save(upright(), tmp_path / "plain.png", 3)),
        Image.open(save(upright(), tmp_path / "exif.webp", 1)),
    ]

    def forbidden(self):
        raise AssertionError("Image.getexif called")

    monkeypatch.setattr(Image.Image, "getexif", forbidden)
    assert [exif_orientation(image) for image in images] == [6, 3, 1]


@pytest.mark.parametrize("order", ["<", ">"])
@pytest.mark.parametrize("orientation", [1, 3, 6, 8])
def test_both_byte_orders_are_read(orientation, order):
    entries = [(0x010F, 2, 4, 0x41424300), (0x0112, 3, 1, orientation << (16 * (order == ">")))]
    block = (b"II*\x00" if order == "<" else b"MM\x00*") + struct.pack(order + "IH", 8, 2)
    block += b"".join(struct.pack(order + "HHII", *entry) for entry in entries) + b"\0" * 4
    image = Image.new("L", (8, 8))
    image.info["exif"] = b"Exif\x00\x00" + block
    assert exif_orientation(image) == image.getexif()[0x0112] == orientation


def test_corrupt_exif_leaves_the_photo_as_stored(tmp_path):
    """Pillow's own reading raises SyntaxError on such a block; the pixels are a photo still."""
    path = tmp_path / "corrupt.jpg"
    upright().save(path, quality=95, exif=b"Exif\x00\x00not a TIFF header")
    expected = decoded_by_training(save(upright(), tmp_path / "upright.jpg", quality=95))
    assert np.abs(decoded_by_classify(path).astype(int) - expected).max() <= 1


@pytest.mark.parametrize(
    "name",
    ["o6.jpg", "plain.jpg", "light.png", "light.webp"],
)
def test_training_and_classify_give_the_model_the_same_tensor(tmp_path, name):
    if name == "o6.jpg":
        path = stored_photo(tmp_path, 6)
    else:
        picture = upright() if name == "plain.jpg" else ImageOps.invert(upright())
        path = save(picture, tmp_path / name, quality=90)
    training = normalise(torch.from_numpy(decoded_by_training(path)).unsqueeze(0))
    classify = torch.from_numpy(to_input(decoded_by_classify(path)[None]))
    assert classify.shape == training.shape == (1, 1, 28, 28)
    assert classify.dtype == training.dtype
    torch.testing.assert_close(classify, training, rtol=0, atol=1e-6)


def test_classify_normalises_every_grey_level_as_training_does():
    levels = torch.arange(256, dtype=torch.uint8).view(1, 16, 16)
    torch.testing.assert_close(
        torch.from_numpy(to_input(levels.numpy())), normalise(levels), rtol=0, atol=1e-6
    )
