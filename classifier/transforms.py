"""One preprocessing for training and inference, and augmentation that imitates shop photos.

Shop photos are bigger, padded, tinted and on coloured backgrounds; Fashion-MNIST is 28x28
white-on-black. Inference brings a photo to the training form; training augments in batches
(vectorised, so it costs little on a 2-core CPU) to cover what shops do.
"""

from __future__ import annotations

import math
import struct
import warnings

import numpy as np
import torch
from PIL import ExifTags
from PIL import Image as PILImage
from torch.nn import functional as F
from torchvision.io import decode_jpeg, encode_jpeg

# torchvision 0.29 says on every call that TorchCodec is to take its image codecs over; setup
# installs 0.29.1, which has them: noise in a training log (the filter is set once, here)
warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torchvision\.io\.image")

INPUT_SIZE = 28
MEAN, STD = 0.286, 0.353  # Fashion-MNIST's pixel statistics
# Shop photos are JPEGs more often than not: this share of the augmented samples is saved as
# a JPEG at one of these qualities and read back, with its blocks and ringing.
JPEG_SHARE, JPEG_QUALITIES = 0.3, (30, 50, 70, 90)


def normalise(batch_uint8: torch.Tensor) -> torch.Tensor:
    """(N, 28, 28) uint8 -> (N, 1, 28, 28) float, standardised."""
    return ((batch_uint8.float() / 255.0) - MEAN).div_(STD).unsqueeze(1)


def photo_to_array(image: PILImage.Image) -> np.ndarray:
    """A shop photo as a 28x28 grey array with a dark background, like the training data,
    upright as its EXIF orientation says (a phone's photo is often stored sideways)."""
    if image.format == "JPEG":  # decode only the grey plane, scaled down by the codec itself
        image.draft("L", (INPUT_SIZE, INPUT_SIZE))
    grey = shrink(np.asarray(image.convert("L")))
    # Turned once small, after decoding (a PNG's EXIF may follow its pixels): turning then
    # shrinking gives the same picture, within one grey level of rounding.
    turn = _TRANSPOSES.get(exif_orientation(image))
    if turn is not None:
        grey = np.array(PILImage.fromarray(grey).transpose(turn))
    return light_on_dark(grey)


def shrink(grey: np.ndarray) -> np.ndarray:
    """A grey picture averaged down to 28x28 (OpenCV's area filter: ~12 us, where a round trip
    through Pillow's box filter takes 50-75)."""
    import cv2  # here: only photos need OpenCV, and a GPU box may train without it

    return cv2.resize(grey, (INPUT_SIZE, INPUT_SIZE), interpolation=cv2.INTER_AREA)


def light_on_dark(pixels: np.ndarray) -> np.ndarray:
    """A light-background photo (white studio backdrop) inverted to white-on-black."""
    border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    return 255 - pixels if border.mean() > 127 else pixels


# EXIF orientation -> the turn that makes the stored picture upright (as ImageOps.exif_transpose)
_TRANSPOSES = {
    2: PILImage.Transpose.FLIP_LEFT_RIGHT,
    3: PILImage.Transpose.ROTATE_180,
    4: PILImage.Transpose.FLIP_TOP_BOTTOM,
    5: PILImage.Transpose.TRANSPOSE,
    6: PILImage.Transpose.ROTATE_270,
    7: PILImage.Transpose.TRANSVERSE,
    8: PILImage.Transpose.ROTATE_90,
}
# where else Pillow finds an orientation: a PNG's text chunk, XMP
_OTHER_ORIENTATION_SOURCES = frozenset(("Raw profile type exif", "XML:com.adobe.xmp", "xmp"))


def exif_orientation(image: PILImage.Image) -> int:
    """*image*'s orientation (1 upright, 2-8 flipped or turned), as ImageOps.exif_transpose
    reads it, but cheaply: without EXIF a few dict lookups (~0.6 us), with EXIF only its first
    directory's entries (~4 us; Pillow's getexif parses the whole block, ~50 us, which it does
    at open anyway for a JPEG without JFIF dpi). Corrupt EXIF counts as upright, where Pillow
    raises SyntaxError: the pixels are a photo all the same."""
    info = image.info
    exif = info.get("exif")
    # a TIFF's EXIF is its own tags (tag_v2)
    left_to_pillow = not _OTHER_ORIENTATION_SOURCES.isdisjoint(info) or hasattr(image, "tag_v2")
    if isinstance(exif, bytes):
        try:
            found = _orientation_entry(exif)
        except (struct.error, KeyError, ValueError):
            left_to_pillow = True  # unusual or corrupt
        else:
            if found is not None:
                return found
    if not left_to_pillow:
        return 1
    try:
        return int(image.getexif().get(ExifTags.Base.Orientation, 1))
    except (SyntaxError, ValueError, struct.error, OSError):
        return 1


def _orientation_entry(exif: bytes) -> int | None:
    """The Orientation entry (a SHORT) of an EXIF block's first directory, IFD0, where the
    tag belongs; None without one. ValueError, struct.error or KeyError when the block is
    malformed or the entry unusual."""
    start = 6 if exif.startswith(b"Exif\x00\x00") else 0
    order = {b"II": "<", b"MM": ">"}[exif[start : start + 2]]
    (directory,) = struct.unpack_from(order + "I", exif, start + 4)
    (count,) = struct.unpack_from(order + "H", exif, start + directory)
    first = start + directory + 2
    for entry in range(first, first + 12 * count, 12):
        tag, kind, _, value = struct.unpack_from(order + "HHIH", exif, entry)
        if tag == ExifTags.Base.Orientation:
            if kind != 3:  # SHORT, its value in the entry's first 2 bytes
                raise ValueError(f"orientation of type {kind}")
            return value
    return None


def augment(batch: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Random scale, shift, small rotation, background lift and contrast, per sample, and
    JPEG artefacts on some.

    *batch* is normalised (N, 1, H, W). Shops pad and shift photos (scale 0.75-1.05,
    shift up to 10%), rotate them slightly (up to 8 degrees), print them on grey or tinted
    backgrounds (which lifts black by up to 0.15 and compresses contrast) and save them as
    JPEGs (`jpeg_artefacts`)."""
    n, device = batch.shape[0], batch.device

    def uniform(low: float, high: float) -> torch.Tensor:
        return torch.rand(n, device=device, generator=generator) * (high - low) + low

    scale = uniform(0.75, 1.05)
    angle = uniform(-8, 8) * math.pi / 180
    shift_x, shift_y = uniform(-0.1, 0.1), uniform(-0.1, 0.1)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack(
        [torch.stack([cos, -sin, shift_x], 1), torch.stack([sin, cos, shift_y], 1)], 1
    )
    grid = F.affine_grid(theta, list(batch.shape), align_corners=False)
    background = (0 - MEAN) / STD
    moved = (
        F.grid_sample(batch - background, grid, align_corners=False, padding_mode="zeros")
        + background
    )
    pixels = moved * STD + MEAN  # back to 0..1 to adjust background and contrast
    lift = uniform(0.0, 0.15).view(n, 1, 1, 1)
    contrast = uniform(0.8, 1.0).view(n, 1, 1, 1)
    pixels = lift + pixels * contrast * (1 - lift)
    return (jpeg_artefacts(pixels, generator) - MEAN) / STD


def jpeg_artefacts(pixels: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """*pixels* (N, 1, H, W, 0..1) with a JPEG_SHARE of the images saved as JPEG at a random
    one of JPEG_QUALITIES and read back (libjpeg on the CPU, ~35 us an image; the others
    untouched)."""
    n, device = pixels.shape[0], pixels.device
    chosen = torch.rand(n, device=device, generator=generator) < JPEG_SHARE
    level = torch.randint(len(JPEG_QUALITIES), (n,), device=device, generator=generator)
    if not bool(chosen.any()):
        return pixels
    as_bytes = (pixels.clamp(0, 1) * 255).round().to(torch.uint8).cpu()
    out = pixels.clone()
    for index, quality in enumerate(JPEG_QUALITIES):
        rows = (chosen & (level == index)).nonzero().flatten()
        if len(rows) == 0:
            continue
        decoded = _jpeg_round_trip([as_bytes[row] for row in rows.tolist()], quality)
        out[rows] = decoded.to(device, pixels.dtype) / 255
    return out


def _jpeg_round_trip(images: list[torch.Tensor], quality: int) -> torch.Tensor:
    """(1, H, W) uint8 images encoded as JPEG and decoded, stacked: torchvision's libjpeg
    calls, 4-5x faster than Pillow's per image here."""
    return torch.stack(decode_jpeg(encode_jpeg(images, quality=quality)))


def flip_and_shift(
    batch: torch.Tensor, generator: torch.Generator | None = None, max_shift: int = 2
) -> torch.Tensor:
    """Random horizontal flip and a shift of up to *max_shift* pixels, per sample.

    Fashion-MNIST products are centred and upright, so these are the only changes that leave
    a photo plausible; a whole-pixel shift with nearest sampling copies pixels exactly."""
    n, _, height, width = batch.shape
    device = batch.device
    flip = torch.rand(n, device=device, generator=generator) < 0.5
    shifts = torch.randint(-max_shift, max_shift + 1, (2, n), device=device, generator=generator)
    zeros, ones = torch.zeros(n, device=device), torch.ones(n, device=device)
    theta = torch.stack(
        [
            torch.stack([torch.where(flip, -ones, ones), zeros, shifts[0] * 2.0 / width], 1),
            torch.stack([zeros, ones, shifts[1] * 2.0 / height], 1),
        ],
        1,
    )
    grid = F.affine_grid(theta, list(batch.shape), align_corners=False)
    background = (0 - MEAN) / STD
    moved = F.grid_sample(batch - background, grid, mode="nearest", align_corners=False)
    return moved + background


def random_erase(
    batch: torch.Tensor,
    share: float,
    generator: torch.Generator | None = None,
    sizes: tuple[int, int] = (4, 16),
) -> torch.Tensor:
    """Blank a random square (side in *sizes*, pixels) to the background in a *share* of the
    samples: the model must not lean on any one part of a product (random erasing, Zhong et
    al. 2017). *batch* is normalised (N, 1, H, W)."""
    n, _, height, width = batch.shape
    device = batch.device

    def uniform() -> torch.Tensor:
        return torch.rand(n, 1, 1, device=device, generator=generator)

    side = torch.randint(sizes[0], sizes[1] + 1, (n, 1, 1), device=device, generator=generator)
    top = (uniform() * (height + 1 - side)).long()
    left = (uniform() * (width + 1 - side)).long()
    rows = torch.arange(height, device=device).view(1, height, 1)
    cols = torch.arange(width, device=device).view(1, 1, width)
    hit = (uniform() < share) & (rows >= top) & (rows < top + side)
    hit = hit & (cols >= left) & (cols < left + side)
    background = torch.full((), (0 - MEAN) / STD, device=device)
    return torch.where(hit.unsqueeze(1), background, batch)
