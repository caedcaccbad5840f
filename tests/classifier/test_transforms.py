"""Shop-photo augmentation: JPEG artefacts on a share of the samples, as a shop's JPEGs show
them; the rest untouched. Real libjpeg round trips, compared image by image."""

from __future__ import annotations

import torch

from classifier.transforms import (
    JPEG_QUALITIES,
    JPEG_SHARE,
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
