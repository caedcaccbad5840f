"""The README's TOML examples are what the code accepts: the shop-spec reference and its
walk-as-steps form load as specs, and the pricelens.toml example loads as a configuration."""

from __future__ import annotations

import re

from crawler.spec import load_spec
from pipeline.config import load_config
from tests.test_docs import README

BLOCKS = re.findall(r"```toml\n(.*?)```", README, re.DOTALL)


def block_with(text: str) -> str:
    (found,) = [block for block in BLOCKS if text in block]
    return found


def test_the_shop_spec_reference_is_a_valid_spec(tmp_path):
    path = tmp_path / "classic.toml"
    path.write_text(block_with('name = "classic"'), encoding="utf-8")
    spec = load_spec(path)
    assert spec.pagination.strategy == "next_page" and spec.for_each and spec.detail
    assert spec.setup[0].action == "goto" and spec.steps


def test_the_walk_as_steps_example_is_valid_in_a_spec(tmp_path):
    head = 'name = "shop"\nstart_urls = ["/"]\n[listing]\nitem = "li"\n'
    head += '[listing.fields]\nurl = { selector = "a", attr = "href" }\n\n'
    path = tmp_path / "shop.toml"
    path.write_text(head + block_with('action = "for_each"'), encoding="utf-8")
    spec = load_spec(path)
    assert spec.for_each.selector == "nav.menu a.cat" and spec.detail.fields["price"]
    assert (spec.pagination.strategy, spec.pagination.max_pages) == ("next_page", 200)
    assert [(step.action, step.where) for step in spec.steps] == [("dismiss", "steps[0]")]


def test_the_pricelens_toml_example_loads(tmp_path):
    path = tmp_path / "pricelens.toml"
    path.write_text(block_with("[pipeline]"), encoding="utf-8")
    config = load_config(path)
    assert config.timezone == "Asia/Seoul" and config.pipeline.cron
