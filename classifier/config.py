"""Training configuration: defaults (the CPU recipe), a TOML file, and ``key=value`` overrides.

The resolved configuration is saved next to every run, so a checkpoint can always be traced back
to what produced it; it holds only plain values, which keeps checkpoints loadable with
``weights_only=True``.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from types import UnionType
from typing import Any, Union, get_args, get_origin, get_type_hints

from classifier.errors import ConfigError

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
    patience: int = 0  # early stopping after this many epochs without improvement; 0: off
    amp: bool = True  # bf16 autocast, CUDA only
    channels_last: bool = True
    compile: bool = False  # torch.compile (CUDA only; compile time is reported apart)
    cuda_graphs: bool = True  # replay each step from a captured CUDA graph (CUDA, one process)
    workers: int = 2  # DataLoader workers decoding scraped photos from disk
    tensorboard: bool = True
    train_limit: int | None = None  # only the first N training images (tests, quick tries)
    eval_limit: int | None = None
    seed: int = 0
    device: str = "auto"

    def __post_init__(self) -> None:
        for key, allowed in CHOICES.items():
            if getattr(self, key) not in allowed:
                raise ConfigError(f"{key}: {getattr(self, key)!r} is not one of {allowed}")
        for key in ("epochs", "batch_size", "width", "embedding_dim"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{key}: must be at least 1, got {getattr(self, key)}")
        if not 0 <= self.shop_augment <= 1 or not 0 <= self.erase <= 1:
            raise ConfigError("shop_augment and erase must lie in [0, 1]")
        if not 0 < self.warmup < 1:
            raise ConfigError("warmup must lie in (0, 1)")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> TrainConfig:
        return dataclasses.replace(self, **changes)


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
    values: dict[str, Any] = {}
    if path is not None:
        try:
            data = tomllib.loads(Path(path).read_text())
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
        data = data.get("train", data)
        for key, value in data.items():
            values[key] = _coerce(key, value, str(path), f"train.{key}")
    for key, value in options.items():
        if value is not None:
            values[key] = _coerce(key, value, f"--{key.replace('_', '-')}")
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"override {item!r}: expected key=value")
        values[key.strip()] = _coerce(key.strip(), value, f"override {item!r}")
    try:
        return TrainConfig(**values)
    except ConfigError as exc:
        raise ConfigError(f"{path or 'configuration'}: {exc}") from None


def config_from_checkpoint(data: dict[str, Any]) -> TrainConfig:
    """A saved config; keys from older versions are dropped, missing ones take defaults."""
    known = {f.name for f in fields(TrainConfig)}
    return TrainConfig(**{k: v for k, v in data.items() if k in known})
