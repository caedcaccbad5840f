"""Training configuration: defaults (the CPU recipe), a TOML file, and ``key=value`` overrides.

The resolved configuration is saved next to every run, so a checkpoint can always be traced back
to what produced it; it holds only plain values, which keeps checkpoints loadable with
``weights_only=True``.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from types import UnionType
from typing import Any, Union, get_args, get_origin, get_type_hints

from classifier.errors import ConfigError

log = logging.getLogger(__name__)

CHOICES = {
    "optimizer": ("sgd", "adamw"),
    "schedule": ("onecycle", "cosine"),
    "dataset": ("fashion-mnist", "scraped", "both"),
    "device": ("auto", "cpu", "cuda"),
    "monitor": ("val_accuracy", "val_loss"),
}


@dataclass(frozen=True)
class TrainConfig:
    """Defaults are the recipe the demo and matching were measured with (benchmarks/results:
    demo_runtime, match_quality, train). Shop-photo looks on every sample and no flips: the
    embedding must tell a product from its mirror image (the demo mall sells such look-alikes)
    and see through each shop's styling."""

    architecture: str = "shopnet"
    width: int = 16
    embedding_dim: int = 64
    dataset: str = "fashion-mnist"
    epochs: int = 2
    batch_size: int = 128
    optimizer: str = "adamw"
    lr: float = 4e-3
    momentum: float = 0.9  # SGD only
    weight_decay: float = 1e-4
    schedule: str = "onecycle"
    warmup: float = 0.3  # share of the steps spent warming up (one-cycle)
    label_smoothing: float = 0.05
    grad_clip: float = 0.0  # max gradient norm; 0 turns clipping off
    augment: bool = False  # random flips and 2-pixel shifts
    tta_flip: bool = False  # predictions average the photo and its mirror image (for augment)
    erase: float = 0.0  # share of samples with a random square (4-16 px) blanked out
    shop_augment: float = 1.0  # share of each batch given shop-photo looks (scale, tint, ...)
    monitor: str = "val_accuracy"
    # held-out evaluation (and best.pt) every N epochs and after the last: on a CPU one of
    # Fashion-MNIST's test set costs about a sixth of a batch-256 epoch
    eval_every: int = 1
    patience: int = 0  # early stopping after this many evaluations without improvement; 0: off
    amp: bool = True  # bf16 autocast: CUDA, and CPUs with native bf16 (training.bf16_pays)
    channels_last: bool = True
    compile: bool = False  # torch.compile (CUDA only; compile time is reported apart)
    cuda_graphs: bool = True  # replay each step from a captured CUDA graph (CUDA, one process)
    workers: int = 2  # DataLoader workers decoding scraped photos from disk
    tensorboard: bool = True
    # only the first N training images (tests, quick tries); with dataset "both", the first N
    # Fashion-MNIST images (all the scraped photos are kept)
    train_limit: int | None = None
    eval_limit: int | None = None
    seed: int = 0
    device: str = "auto"

    def __post_init__(self) -> None:
        # here, not at import time: classifier.model loads torch, and config is imported widely
        from classifier.model import LAYOUTS

        for key, allowed in {"architecture": tuple(LAYOUTS), **CHOICES}.items():
            if getattr(self, key) not in allowed:
                raise ConfigError(f"{key}: {getattr(self, key)!r} is not one of {allowed}", key)
        for key in ("epochs", "batch_size", "width", "embedding_dim", "eval_every"):
            _check(self, key, getattr(self, key) >= 1, "must be at least 1")
        for key in ("patience", "workers"):
            _check(self, key, getattr(self, key) >= 0, "must be at least 0")
        for key in ("train_limit", "eval_limit"):
            value = getattr(self, key)
            _check(self, key, value is None or value >= 1, "must be at least 1 (none: no limit)")
        _check(self, "lr", math.isfinite(self.lr) and self.lr > 0, "must be a number above 0")
        for key in ("weight_decay", "grad_clip"):
            value = getattr(self, key)
            _check(self, key, math.isfinite(value) and value >= 0, "must be a number, at least 0")
        for key in ("momentum", "label_smoothing"):
            _check(self, key, 0 <= getattr(self, key) < 1, "must lie in [0, 1)")
        for key in ("shop_augment", "erase"):
            _check(self, key, 0 <= getattr(self, key) <= 1, "must lie in [0, 1]")
        _check(self, "warmup", 0 < self.warmup < 1, "must lie in (0, 1)")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> TrainConfig:
        return dataclasses.replace(self, **changes)


SHAPE_KEYS = ("architecture", "width", "embedding_dim")  # what a checkpoint's weights fix


def _check(config: TrainConfig, key: str, valid: bool, rule: str) -> None:
    """A ConfigError naming *key* unless *valid* (NaN fails every comparison, so it never is)."""
    if not valid:
        raise ConfigError(f"{key}: {rule}, got {getattr(config, key)!r}", key)


def _field_types() -> dict[str, type]:
    hints = get_type_hints(TrainConfig)
    types = {}
    for f in fields(TrainConfig):
        hint = hints[f.name]
        if get_origin(hint) in (Union, UnionType):  # "int | None" -> int
            hint = next(a for a in get_args(hint) if a is not type(None))
        types[f.name] = hint
    return types


def _coerce(key: str, value: Any, where: str, shown: str | None = None) -> Any:
    """*value* as the type of config key *key*; errors say "<where>: <shown> ..."."""
    types, shown = _field_types(), shown or key
    if key not in types:
        raise ConfigError(f"{where}: unknown key {shown!r}; known: {', '.join(sorted(types))}")
    wanted = types[key]
    if isinstance(value, str) and wanted is not str:
        text = value.strip().lower()
        if text in ("none", "null") and key.endswith("_limit"):
            return None
        try:
            if wanted is bool:
                if text not in ("true", "false", "1", "0", "yes", "no", "on", "off"):
                    raise ValueError(value)
                return text in ("true", "1", "yes", "on")
            return wanted(value)
        except ValueError:
            raise ConfigError(f"{where}: {shown} wants {wanted.__name__}, got {value!r}") from None
    if wanted is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, wanted) or (wanted is int and isinstance(value, bool)):
        raise ConfigError(f"{where}: {shown} wants {wanted.__name__}, got {value!r}")
    return value


def load_config(
    path: Path | None = None, overrides: tuple[str, ...] | list[str] = (), **options: Any
) -> TrainConfig:
    """Defaults, then the file (a TOML table of keys, or a ``[train]`` table), then *options*
    (command-line flags; None means not given), then ``key=value`` *overrides*."""
    return resolve_config(path, overrides, **options)[0]


def resolve_config(
    path: Path | None = None, overrides: tuple[str, ...] | list[str] = (), **options: Any
) -> tuple[TrainConfig, dict[str, str]]:
    """As load_config, and for each key given, where its value came from (the file, a flag or
    an override): errors name that place, and callers can tell a key set from a default."""
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    if path is not None:
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{path}: not UTF-8 text (save it as UTF-8): {exc}") from exc
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
        prefix = "train." if "train" in data else ""  # errors name the key as written
        if prefix:
            if not isinstance(data["train"], dict):
                raise ConfigError(f"{path}: key 'train': must be a table")
            # other tables and keys may be there (pricelens.toml), training keys may not
            stray = sorted(k for k in data if k in _field_types())
            if stray:
                raise ConfigError(
                    f"{path}: key {stray[0]!r} is outside the [train] table, which is all "
                    "that is read from a file that has one; move it into [train]"
                )
        data = data.get("train", data)
        for key, value in data.items():
            values[key] = _coerce(key, value, str(path), f"{prefix}{key}")
            sources[key] = str(path)
    for key, value in options.items():
        if value is not None:
            where = f"--{key.replace('_', '-')}"
            values[key] = _coerce(key, value, where)
            sources[key] = where
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"override {item!r}: expected key=value")
        where = f"override {item!r}"
        values[key.strip()] = _coerce(key.strip(), value.strip(), where)
        sources[key.strip()] = where
    try:
        return TrainConfig(**values), sources
    except ConfigError as exc:
        where = sources.get(exc.key or "") or str(path or "configuration")
        raise ConfigError(f"{where}: {exc}", exc.key) from None


def config_from_checkpoint(data: dict[str, Any]) -> TrainConfig:
    """A saved config; keys from older versions are dropped, missing ones take defaults, and
    so do values older versions accepted but this one refuses (train_limit=0 once meant no
    limit): the run is over, only its shape must be exact."""
    known = {f.name for f in fields(TrainConfig)}
    values = {k: v for k, v in data.items() if k in known}
    while True:
        try:
            return TrainConfig(**values)
        except ConfigError as exc:
            if exc.key in SHAPE_KEYS or exc.key not in values:
                raise
            log.debug("saved config: %s; taking the default", exc)
            del values[exc.key]
