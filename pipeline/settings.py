"""Where pricelens keeps its things: the home folder and the paths inside it."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from platformdirs import user_data_dir

HOME_ENV = "PRICELENS_HOME"


@dataclass(frozen=True)
class Home:
    """The home folder: database, images, models, error snapshots, user shop specs."""

    root: Path

    @classmethod
    def resolve(cls, given: str | Path | None = None) -> Home:
        """--home, else $PRICELENS_HOME, else the per-user data folder."""
        chosen = given or os.environ.get(HOME_ENV) or user_data_dir("pricelens", appauthor=False)
        return cls(Path(chosen).expanduser().resolve())

    @property
    def database(self) -> Path:
        return self.root / "pricelens.db"

    @property
    def images(self) -> Path:
        return self.root / "images"

    @property
    def models(self) -> Path:
        return self.root / "models"

    @property
    def crawl_errors(self) -> Path:
        return self.root / "crawl-errors"

    @property
    def shops(self) -> Path:
        return self.root / "shops"

    @property
    def config(self) -> Path:
        return self.root / "pricelens.toml"

    @property
    def answer_key(self) -> Path:
        return self.root / "demo" / "answer-key.json"

    @property
    def datasets(self) -> Path:
        return self.root / "datasets"

    def create(self) -> Home:
        for folder in (self.root, self.images, self.models, self.crawl_errors, self.shops):
            folder.mkdir(parents=True, exist_ok=True)
        return self
