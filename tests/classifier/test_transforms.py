"""Shop-photo augmentation: JPEG artefacts on a share of the samples, as a shop's JPEGs show
them; the rest untouched (real libjpeg round trips, compared image by image). Each of augment's
looks (shift, scale, rotation, background lift, contrast) measured on its own, over a batch."""

from __future__ import annotations

import pytest
import torch

from classifier import transforms
from classifier.transforms import (
    JPEG_QUALITIES,
    JPEG_SHARE,
    MEAN,
    STD,
    _jpeg_round_trip,
    augment,
    jpeg_artefacts,
    normalise,
)


def images(n: int) -> torch.Tensor:
    """Product-like pictures: a bright block on black, with noise (JPEG changes those)."""
    generator = torch.Generator().manual_seed(1)
    pixels = torch.zeros(n, 1, 28, 28)
    pixels[:, :, 6:22, 8:20] = 0.8
    return (pixels + 0.1 * torch.rand(n, 1, 28, 28, generator=generator)).clamp(0, 1)


def round_trip(image: torch.Tensor, quality: int) -> torch.Tensor:
    as_bytes = (image.clamp(0, 1) * 255).round().to(torch.uint8)
    return _jpeg_round_trip([as_bytes], quality)[0].float() / 255


def test_a_share_of_the_images_come_back_as_jpegs_at_one_of_the_qualities():
    batch = images(400)
    out = jpeg_artefacts(batch, torch.Generator().manual_seed(0))
    changed = [i for i in range(len(batch)) if not torch.equal(out[i], batch[i])]
    assert abs(len(changed) / len(batch) - JPEG_SHARE) < 0.08
    for i in changed:
        assert any(torch.equal(out[i], round_trip(batch[i], q)) for q in JPEG_QUALITIES), i


def test_the_same_generator_state_gives_the_same_artefacts():
    batch = images(64)
    first = jpeg_artefacts(batch, torch.Generator().manual_seed(5))
    assert torch.equal(first, jpeg_artefacts(batch, torch.Generator().manual_seed(5)))


def test_augment_keeps_the_batch_shape_and_a_normalised_range():
    batch = normalise((images(32).squeeze(1) * 255).to(torch.uint8))
    out = augment(batch, torch.Generator().manual_seed(2))
    assert out.shape == batch.shape and out.dtype == batch.dtype
    assert torch.isfinite(out).all()


# What augment does to a batch of one picture, sample by sample: a 16x8 bar of 0.8, centred on
# the grid's centre (augment scales and turns about it), so each look is measured apart from
# the others: the corners give the lifted background, the bar's middle the contrast, the bright
# mass's centre the shift, its spread the scale, its long axis the rotation.
BAR_BRIGHTNESS = 0.8


def bars(n: int) -> torch.Tensor:
    pixels = torch.zeros(n, 28, 28)
    pixels[:, 6:22, 10:18] = BAR_BRIGHTNESS
    return normalise((pixels * 255).round().to(torch.uint8))


def looks(out: torch.Tensor) -> dict[str, torch.Tensor]:
    pixels = (out * STD + MEAN).squeeze(1)  # back to 0..1
    corners = torch.cat(
        [pixels[:, :3, :3], pixels[:, :3, -3:], pixels[:, -3:, :3], pixels[:, -3:, -3:]], 1
    )
    background = corners.flatten(1).median(1).values
    middle = pixels[:, 12:16, 12:16].flatten(1).median(1).values
    mass = (pixels - background.view(-1, 1, 1)).clamp(min=0)
    mass = mass * (mass > 0.2 * mass.flatten(1).amax(1).view(-1, 1, 1))  # no JPEG ringing
    rows = torch.arange(28.0).view(1, 28, 1)
    cols = torch.arange(28.0).view(1, 1, 28)
    total = mass.sum((1, 2))
    y, x = (mass * rows).sum((1, 2)) / total, (mass * cols).sum((1, 2)) / total
    dy, dx = rows - y.view(-1, 1, 1), cols - x.view(-1, 1, 1)
    yy, xx, xy = ((mass * d).sum((1, 2)) / total for d in (dy * dy, dx * dx, dx * dy))
    return {
        "background": background,
        "contrast": (middle - background) / (1 - background) / BAR_BRIGHTNESS,
        "x": x,
        "y": y,
        "size": (yy + xx).sqrt(),
        "angle": torch.rad2deg(0.5 * torch.atan2(2 * xy, yy - xx)),  # from the vertical
    }


def test_the_measures_see_no_change_in_the_bars_themselves():
    seen = looks(bars(4))
    assert torch.allclose(seen["background"], torch.zeros(4), atol=1e-6)
    assert torch.allclose(seen["contrast"], torch.ones(4), atol=1e-2)
    assert torch.allclose(seen["x"], torch.full((4,), 13.5)) and torch.allclose(
        seen["y"], seen["x"]
    )
    assert torch.allclose(seen["angle"], torch.zeros(4), atol=1e-3)


@pytest.fixture(scope="module")
def augmented() -> dict[str, torch.Tensor]:
    return looks(augment(bars(512), torch.Generator().manual_seed(3)))


def test_augment_lifts_the_background_by_up_to_015(augmented):
    lift = augmented["background"]
    assert lift.min() > -0.02 and lift.max() < 0.17
    assert lift.max() - lift.min() > 0.1 and 0.05 < lift.mean() < 0.1  # uniform 0..0.15


def test_augment_lowers_contrast_to_080_100(augmented):
    contrast = augmented["contrast"]
    assert contrast.min() > 0.75 and contrast.max() < 1.04
    assert contrast.max() - contrast.min() > 0.12 and 0.85 < contrast.mean() < 0.95


def test_augment_shifts_the_picture_by_up_to_10_percent(augmented):
    for axis in ("x", "y"):  # 10% of the grid's half-width: up to 1.4 pixels either way
        shift = augmented[axis] - 13.5
        assert shift.abs().max() < 1.7 and shift.std() > 0.5, axis  # uniform: std 0.81


def test_augment_scales_the_picture_by_075_105(augmented):
    relative = augmented["size"] / looks(bars(1))["size"]
    assert relative.min() > 0.7 and relative.max() < 1.1
    assert relative.max() - relative.min() > 0.2 and relative.std() > 0.06  # uniform: 0.087


def test_augment_turns_the_picture_by_up_to_8_degrees(augmented):
    angle = augmented["angle"]
    assert angle.abs().max() < 12 and angle.std() > 3  # uniform -8..8: std 4.6
    assert (angle > 4).any() and (angle < -4).any()


def test_augment_gives_its_pictures_jpeg_artefacts(monkeypatch):
    seen = []

    def recording(pixels, generator=None):
        seen.append(pixels.shape)
        return jpeg_artefacts(pixels, generator)

    monkeypatch.setattr(transforms, "jpeg_artefacts", recording)
    augment(bars(8), torch.Generator().manual_seed(0))
    assert seen == [(8, 1, 28, 28)]


def test_the_same_generator_seed_gives_the_same_augmentation():
    batch = bars(64)
    first = augment(batch, torch.Generator().manual_seed(7))
    assert torch.equal(first, augment(batch, torch.Generator().manual_seed(7)))
    assert not torch.allclose(first, augment(batch, torch.Generator().manual_seed(8)))
