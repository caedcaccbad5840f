"""What a shop charges on a given day: its own markup on the base price, then daily drift."""

from __future__ import annotations

import random

from demo.catalog import Product


def shop_price(shop: str, product: Product, seed: int, day: int) -> int:
    """Price in KRW (minor units = won). Day 0 is the shop's list; later days drift from it:
    about 60% unchanged, 20% up and 20% down by 3-15%, each decided per (shop, product, day)."""
    markup = random.Random(f"markup:{seed}:{shop}:{product.id}").uniform(0.88, 1.12)
    price = _round_100(product.base_price * markup)
    if day == 0:
        return price
    drift = random.Random(f"drift:{seed}:{shop}:{product.id}:{day}")
    roll = drift.random()
    if roll < 0.6:
        return price
    change = drift.uniform(0.03, 0.15)
    return _round_100(price * (1 + change if roll < 0.8 else 1 - change))


def list_price(shop: str, product: Product, seed: int, day: int, price: int) -> int | None:
    """The struck-through price of a sale item, or None when the item is not on sale."""
    rng = random.Random(f"sale:{seed}:{shop}:{product.id}:{day}")
    if rng.random() >= 0.25:
        return None
    return _round_100(price * rng.uniform(1.1, 1.4))


def in_stock(shop: str, product: Product, seed: int, day: int) -> bool:
    return random.Random(f"stock:{seed}:{shop}:{product.id}:{day}").random() >= 0.1


def carries(shop: str, product: Product, seed: int, share: float = 0.7) -> bool:
    """Whether *shop* sells *product* at all (about 70% of the catalog each)."""
    return random.Random(f"carries:{seed}:{shop}:{product.id}").random() < share


def _round_100(value: float) -> int:
    return max(100, round(value / 100.0) * 100)
