"""The mall's catalog: products made from Fashion-MNIST test images, a pure function of the seed.

Each product has one photo, a true category, title parts (brand, material, colour, noun) and a
base price. Shops sell seeded subsets of it at their own prices, which drift by `day`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from classifier.fashion_mnist import load_split
from db.records import LABELS

BRANDS = (
    "Nordik",
    "Hanul",
    "Urbanite",
    "Monoco",
    "Solace",
    "Kite",
    "Pebble",
    "Arcadia",
    "Bluefinch",
    "Oakline",
    "Daon",
    "Mirae",
)
MATERIALS = (
    "cotton",
    "linen",
    "wool",
    "denim",
    "leather",
    "nylon",
    "fleece",
    "canvas",
    "suede",
    "knit",
)
COLOURS = ("black", "white", "navy", "grey", "beige", "red", "green", "khaki", "ivory", "brown")
NOUNS = {
    "tshirt": "t-shirt",
    "trouser": "trousers",
    "pullover": "pullover",
    "dress": "dress",
    "coat": "coat",
    "sandal": "sandals",
    "shirt": "shirt",
    "sneaker": "sneakers",
    "bag": "bag",
    "ankle_boot": "ankle boots",
}
# Base price ranges in KRW per category: a coat costs more than a tee.
PRICE_RANGES = {
    "tshirt": (9_900, 39_000),
    "trouser": (19_000, 79_000),
    "pullover": (25_000, 99_000),
    "dress": (29_000, 129_000),
    "coat": (59_000, 299_000),
    "sandal": (15_000, 69_000),
    "shirt": (19_000, 69_000),
    "sneaker": (39_000, 159_000),
    "bag": (19_000, 249_000),
    "ankle_boot": (49_000, 219_000),
}
DISTRACTOR_SHARE = 0.1  # products whose title parts copy another product of the same category
LOOKALIKE_SHARE = 0.05  # products whose photo is another product's photo, mirrored


@dataclass(frozen=True)
class Product:
    id: str
    image_index: int
    mirrored: bool  # look-alikes, and products past the 10,000 test photos, reuse one mirrored
    category: str
    brand: str
    material: str
    colour: str
    base_price: int

    @property
    def noun(self) -> str:
        return NOUNS[self.category]


class Catalog:
    """All products of one seed; photos are read lazily from Fashion-MNIST's test split."""

    def __init__(self, seed: int = 7, products: int = 300, fashion_mnist: Path | None = None):
        if products < 1:
            raise ValueError(f"products must be at least 1, got {products}")
        self.seed = seed
        self._fashion_mnist = fashion_mnist
        split = self._split
        rng = random.Random(f"catalog:{seed}")
        order = list(range(len(split.labels)))
        rng.shuffle(order)
        self.products: list[Product] = []
        for i in range(products):
            index = order[i % len(order)]
            category = LABELS[int(split.labels[index])]
            low, high = PRICE_RANGES[category]
            brand, material, colour = (
                rng.choice(BRANDS),
                rng.choice(MATERIALS),
                rng.choice(COLOURS),
            )
            mirrored = i >= len(order)
            same_category = [p for p in self.products[-50:] if p.category == category]
            if same_category and rng.random() < DISTRACTOR_SHARE:
                twin = rng.choice(same_category)
                brand, material, colour = twin.brand, twin.material, twin.colour
            elif same_category and rng.random() < LOOKALIKE_SHARE:
                # another product's photo, mirrored: it looks alike, but its title differs
                twin = rng.choice(same_category)
                index, mirrored = twin.image_index, not twin.mirrored
            self.products.append(
                Product(
                    id=f"P{i:05d}",
                    image_index=index,
                    mirrored=mirrored,
                    category=category,
                    brand=brand,
                    material=material,
                    colour=colour,
                    base_price=rng.randrange(low, high, 100),
                )
            )

    @cached_property
    def _split(self):
        return load_split("test", self._fashion_mnist)

    def photo(self, product: Product) -> np.ndarray:
        """The product's 28x28 grey photo (uint8, white product on black)."""
        pixels = self._split.images[product.image_index]
        return pixels[:, ::-1] if product.mirrored else pixels
