"""Plain shop photos decoded to the training form by OpenCV: grey straight from the codec,
JPEGs at reduced scale as Pillow's draft mode does. Per demo photo (2026-11-24), read and
decoded: a 96 px WebP 387 -> 248 us, a 128 px JPEG 239 -> 208 us, a 112 px PNG 403 -> 383 us.
Only whole JPEG, PNG and WebP files with no metadata that could turn the picture (EXIF, XMP)
take this path; anything else is left to Pillow (`transforms.photo_to_array`). Both shrink
with OpenCV's area filter and give the same picture within 2 grey levels (colour to grey
rounds a little differently in the two). The photos were verified by Pillow when they were
downloaded (decompression bombs refused), so none is oversized here."""

from __future__ import annotations

import re
import struct

import cv2
import numpy as np

from classifier.transforms import INPUT_SIZE, light_on_dark, shrink

cv2.setNumThreads(1)  # one photo at a time, in the decoding worker processes
cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)  # our callers say what failed

# where an orientation may hide (Pillow's reading of it is the one to follow): EXIF in a
# JPEG's APP1, a PNG's eXIf chunk or text, a WebP's EXIF chunk; XMP in any of them
_ORIENTATION_MARKERS = re.compile(rb"Exif|eXIf|EXIF|Raw profile|xmp|XMP")  # one pass
_REDUCED = {1: cv2.IMREAD_GRAYSCALE, 2: cv2.IMREAD_REDUCED_GRAYSCALE_2,
            4: cv2.IMREAD_REDUCED_GRAYSCALE_4, 8: cv2.IMREAD_REDUCED_GRAYSCALE_8}  # fmt: skip


def decode_plain(data: bytes) -> np.ndarray | None:
    """*data* (a photo file's bytes) as a 28x28 grey array, light on dark; None when it is not
    a whole, plain JPEG, PNG or WebP, or OpenCV cannot read it."""
    flag = _flag(data)
    if flag is None or _ORIENTATION_MARKERS.search(data):
        return None
    grey = cv2.imdecode(np.frombuffer(data, np.uint8), flag | cv2.IMREAD_IGNORE_ORIENTATION)
    if grey is None or grey.ndim != 2:
        return None
    return light_on_dark(shrink(grey))


def _flag(data: bytes) -> int | None:
    """How OpenCV is to read *data*; None for another format, or a file cut short (Pillow
    refuses those, where a codec may return what it read)."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return cv2.IMREAD_GRAYSCALE if b"IEND" in data[-16:] else None
    if data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        whole = struct.unpack_from("<I", data, 4)[0] + 8 <= len(data)
        return cv2.IMREAD_GRAYSCALE if whole else None
    if data.startswith(b"\xff\xd8\xff") and data.rstrip(b"\x00")[-2:] == b"\xff\xd9":
        size = _jpeg_size(data)
        if size is None:
            return None
        # the largest DCT scale that keeps both sides at least 28, as Pillow's draft picks
        fits = min(size[0] // INPUT_SIZE, size[1] // INPUT_SIZE)
        return _REDUCED[next((s for s in (8, 4, 2) if fits >= s), 1)]
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a JPEG's frame header; None where the markers do not add up."""
    at = 2
    while at + 9 <= len(data):
        if data[at] != 0xFF:
            return None
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # a frame header
            height, width = struct.unpack_from(">HH", data, at + 5)
            return (width, height) if width and height else None
        (length,) = struct.unpack_from(">H", data, at + 2)
        at += 2 + length
    return None
