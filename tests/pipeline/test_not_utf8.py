"""A file that is not UTF-8 text is an error naming it, wherever pricelens reads one: the
service configuration, a training config, an answer key (was "unexpected UnicodeDecodeError")."""

from __future__ import annotations

import pytest

from tests.pipeline.test_schedule import invoke

LATIN1 = "# prix moyen: 12,99 \u20ac\n".encode("cp1252")  # 0x80: not UTF-8


@pytest.mark.parametrize(
    ("name", "args", "problem"),
    [
        ("pricelens.toml", ("run", "--steps", "report"), "not UTF-8 text (save it as UTF-8)"),
        ("pricelens.toml", ("schedule", "list"), "not UTF-8 text (save it as UTF-8)"),
        ("train.toml", ("train", "--config", "{file}", "--epochs", "1"), "not UTF-8 text"),
        ("key.json", ("match", "--evaluate", "{file}"), "answer key is not UTF-8 text"),
    ],
)
def test_a_file_that_is_not_utf8_is_an_error_naming_it(tmp_path, name, args, problem):
    path = tmp_path / name
    path.write_bytes(LATIN1)
    result = invoke(tmp_path, *(arg.replace("{file}", str(path)) for arg in args))
    assert result.exit_code == 1
    assert f"{path}: {problem}" in result.stderr and "unexpected" not in result.stderr
