"""The mall: all demo shops started together, with the answer key of what they show."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from demo.catalog import Catalog
from demo.classic import ClassicShop
from demo.faults import FaultPlan
from demo.menu import MenuShop
from demo.scroll import ScrollShop
from demo.server import ShopServer
from demo.shop import DemoShop
from demo.spa import SpaShop

SHOP_TYPES: dict[str, type[DemoShop]] = {
    "classic": ClassicShop,
    "spa": SpaShop,
    "scroll": ScrollShop,
    "menu": MenuShop,
}


@dataclass(frozen=True)
class MallSettings:
    seed: int = 7
    products: int = 300
    day: int = 0
    shops: tuple[str, ...] = tuple(SHOP_TYPES)
    hard: bool = False
    faults: str = ""  # e.g. "http500=0.1,bad_price=0.05"; see demo.faults


@dataclass
class Mall:
    settings: MallSettings
    servers: dict[str, ShopServer]

    @property
    def base_urls(self) -> dict[str, str]:
        return {name: server.base_url for name, server in self.servers.items()}

    def answer_key(self) -> dict:
        """Ground truth for this mall: every offer each shop shows today. Never served."""
        return {
            "seed": self.settings.seed,
            "day": self.settings.day,
            "products": self.settings.products,
            "hard": self.settings.hard,
            "faults": str(FaultPlan.parse(self.settings.faults, self.settings.seed)),
            "shops": {
                name: {
                    "base_url": server.base_url,
                    "offers": server.shop.answer_key(server.base_url),
                }
                for name, server in self.servers.items()
            },
        }

    def write_answer_key(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.answer_key(), ensure_ascii=False, indent=1))
        return path


def build_shops(settings: MallSettings, catalog: Catalog | None = None) -> dict[str, DemoShop]:
    catalog = catalog or Catalog(settings.seed, settings.products)
    unknown = set(settings.shops) - set(SHOP_TYPES)
    if unknown:
        raise ValueError(f"unknown demo shop(s) {sorted(unknown)}; known: {sorted(SHOP_TYPES)}")
    faults = FaultPlan.parse(settings.faults, settings.seed)
    return {
        name: SHOP_TYPES[name](catalog, settings.day, faults, settings.hard)
        for name in settings.shops
    }


@contextlib.contextmanager
def run_mall(
    settings: MallSettings = MallSettings(), ports: dict[str, int] | None = None
) -> Iterator[Mall]:
    """Start every shop on loopback (free ports unless given), yield the mall, stop them."""
    servers: dict[str, ShopServer] = {}
    try:
        for name, shop in build_shops(settings).items():
            servers[name] = ShopServer(shop, (ports or {}).get(name, 0)).start()
        yield Mall(settings, servers)
    finally:
        for server in servers.values():
            server.stop()
