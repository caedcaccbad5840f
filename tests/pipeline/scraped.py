"""A database of "scraped" photos without crawling: Fashion-MNIST test products rendered the
way the hard demo shops restyle them, labelled as the shops' category mappings would."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

from classifier.fashion_mnist import load_split
from db.records import LABELS, Image
from db.store import Store
from demo.classic import ClassicShop
from demo.menu import MenuShop
from demo.photos import render_photo
from demo.scroll import ScrollShop
from demo.spa import SpaShop

STYLES = [shop.hard_photo_style for shop in (ClassicShop, SpaShop, ScrollShop, MenuShop)]


def add_scraped_photos(
    home: Path, count: int, start: int = 0, keep: Callable[[str], bool] | None = None
) -> list[str]:
    """Store *count* labelled photos in home's database (of them, with *keep*, those whose
    sha256 it keeps); returns their sha256s."""
    (home / "images").mkdir(parents=True, exist_ok=True)
    test = load_split("test")
    hashes = []
    with Store(home / "pricelens.db") as store:
        for i in range(start, start + count):
            style = STYLES[i % len(STYLES)]
            data = render_photo(test.images[i], style)
            sha = hashlib.sha256(data).hexdigest()
            if keep is not None and not keep(sha):
                continue
            path = home / "images" / f"{sha}.{style.extension}"
            path.write_bytes(data)
            size = style.size
            store.store_image(Image(sha, str(path), size, size, style.format, len(data)))
            store.set_label(sha, LABELS[test.labels[i]], "shop")
            hashes.append(sha)
    return hashes
