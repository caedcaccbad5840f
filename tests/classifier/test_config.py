"""Training configuration: every key's range is checked, and an error names the key and where
its value came from (the file, a flag or an override)."""

from __future__ import annotations

import re

import pytest
import torch

from classifier.checkpoints import load_checkpoint
from classifier.config import config_from_checkpoint, load_config, resolve_config
from classifier.errors import CheckpointError, ConfigError


@pytest.mark.parametrize(
    ("item", "rule"),
    [
        ("architecture=resnet", "'resnet' is not one of ('shopnet', 'shopnet-s'"),
        ("lr=-1", "must be a number above 0, got -1.0"),
        ("lr=0", "must be a number above 0"),
        ("lr=nan", "must be a number above 0, got nan"),
        ("lr=inf", "must be a number above 0, got inf"),
        ("label_smoothing=2", r"must lie in [0, 1), got 2.0"),
        ("label_smoothing=1", r"must lie in [0, 1)"),
        ("label_smoothing=-0.1", r"must lie in [0, 1)"),
        ("momentum=5", r"must lie in [0, 1), got 5.0"),
        ("weight_decay=-1", "must be a number, at least 0, got -1.0"),
        ("grad_clip=-1", "must be a number, at least 0"),
        ("grad_clip=nan", "must be a number, at least 0"),
        ("patience=-1", "must be at least 0, got -1"),
        ("workers=-3", "must be at least 0, got -3"),
        ("train_limit=0", "must be at least 1 (none: no limit), got 0"),
        ("train_limit=-5", "must be at least 1 (none: no limit), got -5"),
        ("eval_limit=0", "must be at least 1 (none: no limit)"),
        ("epochs=0", "must be at least 1, got 0"),
        ("erase=1.5", "must lie in [0, 1], got 1.5"),
        ("shop_augment=-0.5", "must lie in [0, 1]"),
        ("warmup=1", "must lie in (0, 1)"),
        ("monitor=bad", "'bad' is not one of ('val_accuracy', 'val_loss')"),
    ],
)
def test_a_bad_override_is_named_with_its_key_and_rule(item, rule):
    key = item.split("=")[0]
    with pytest.raises(ConfigError) as raised:
        load_config(None, [item])
    assert str(raised.value).startswith(f"override '{item}': {key}: {rule}"), raised.value
    assert raised.value.key == key


def test_an_override_is_blamed_for_its_own_value_not_the_config_file(tmp_path):
    good = tmp_path / "good.toml"
    good.write_text("epochs = 1\n")
    for item in ("epochs=0", "monitor=bad", "patience=-1"):
        with pytest.raises(ConfigError, match=f"^override '{item}': ") as raised:
            load_config(good, [item])
        assert str(good) not in str(raised.value)


def test_a_bad_file_value_names_the_file_and_a_bad_flag_names_the_flag(tmp_path):
    path = tmp_path / "train.toml"
    path.write_text("[train]\nlr = 1.0\npatience = -2\n")
    with pytest.raises(ConfigError, match=f"^{re.escape(str(path))}: patience: must be at least 0"):
        load_config(path, ["lr=0.1"])
    with pytest.raises(ConfigError, match=r"^--epochs: epochs: must be at least 1, got 0"):
        load_config(None, [], epochs=0)


def test_edge_values_that_make_sense_are_accepted():
    edges = "label_smoothing=0 grad_clip=0 patience=0 workers=0 train_limit=1 eval_limit=none"
    config = load_config(None, [*edges.split(), "momentum=0", "lr=1e-9", "architecture=shopnet-p"])
    assert (config.train_limit, config.eval_limit, config.workers) == (1, None, 0)


def test_resolve_config_says_where_each_given_key_came_from(tmp_path):
    path = tmp_path / "train.toml"
    path.write_text("width = 24\nlr = 0.5\n")
    config, sources = resolve_config(path, ["lr=0.01"], epochs=3, device=None)
    assert (config.width, config.lr, config.epochs) == (24, 0.01, 3)
    assert sources == {"width": str(path), "lr": "override 'lr=0.01'", "epochs": "--epochs"}


def test_a_saved_config_from_an_older_version_still_loads_but_keeps_its_shape():
    # train_limit=0 once meant "no limit" and patience=-1 was accepted: the model stays usable
    saved = {"architecture": "shopnet-s", "width": 8, "train_limit": 0, "patience": -1,
             "retired_key": 1}  # fmt: skip
    config = config_from_checkpoint(saved)
    assert (config.architecture, config.width) == ("shopnet-s", 8)
    assert (config.train_limit, config.patience) == (None, 0)
    with pytest.raises(ConfigError, match="architecture: 'resnet'"):
        config_from_checkpoint({**saved, "architecture": "resnet"})


def test_a_corrupt_checkpoint_is_named_without_torchs_advice_to_unpickle_it(tmp_path):
    path = tmp_path / "last.pt"
    path.write_text("garbage\n")
    with pytest.raises(CheckpointError) as raised:
        load_checkpoint(path)
    message = str(raised.value)
    assert message.startswith(f"{path}: not a loadable pricelens checkpoint: ")
    assert "weights_only" not in message and "\n" not in message
    torch.save({"model": {}, "config": {}}, path)  # loadable, but not one of ours
    with pytest.raises(CheckpointError, match="no model/config/classes"):
        load_checkpoint(path)


@pytest.mark.parametrize(
    ("text", "named"), [('lr = "x"\n', "lr"), ('[train]\nlr = "x"\n', "train.lr")]
)
def test_a_bad_file_value_is_named_as_the_file_writes_it(tmp_path, text, named):
    path = tmp_path / "train.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=f"^{re.escape(str(path))}: {re.escape(named)} wants"):
        load_config(path)
