"""The walk as [[steps]]: for_each, open_detail, next_page, load_more and infinite_scroll are
steps as well as tables ([for_each], [detail], [pagination]); either way a spec reads the
same, and a mistake in one names the step's key in the file."""

from __future__ import annotations

import copy
import dataclasses
import tomllib

import pytest

from crawler.errors import SpecError, StepFailed
from crawler.spec import WALK_STEPS, builtin_spec_paths, load_spec, parse_spec
from crawler.steps import Browser


def builtin_data(name: str) -> dict:
    return tomllib.loads(builtin_spec_paths()[name].read_text(encoding="utf-8"))


def as_tables(data: dict) -> dict:
    """*data* with its walk steps written as the tables they stand for."""
    data = copy.deepcopy(data)
    kept = []
    for step in data.pop("steps", []):
        action = step.get("action")
        if action not in WALK_STEPS:
            kept.append(step)
            continue
        table = {key: value for key, value in step.items() if key != "action"}
        if WALK_STEPS[action] == "pagination":
            table = {"strategy": action, **table}
        data[WALK_STEPS[action]] = table
    if kept:
        data["steps"] = kept
    return data


def as_steps(data: dict) -> dict:
    """*data* with its [for_each], [detail] and [pagination] tables written as steps."""
    data = copy.deepcopy(data)
    steps = data.pop("steps", [])
    if "for_each" in data:
        steps.append({"action": "for_each", **data.pop("for_each")})
    if "detail" in data:
        steps.append({"action": "open_detail", **data.pop("detail")})
    pagination = data.pop("pagination", {"strategy": "none"})
    strategy = pagination.pop("strategy", "none")
    if strategy != "none":
        steps.append({"action": strategy, **pagination})
    data["steps"] = steps
    return data


def same(one, other) -> bool:
    return dataclasses.replace(one, source="") == dataclasses.replace(other, source="")


@pytest.mark.parametrize("name", ["classic", "spa", "scroll", "menu"])
def test_every_bundled_spec_reads_the_same_with_its_walk_as_steps_or_as_tables(name):
    data = builtin_data(name)
    shipped = parse_spec(data, name)
    assert same(parse_spec(as_tables(data), name), shipped)
    assert same(parse_spec(as_steps(as_tables(data)), name), shipped)


def test_the_bundled_specs_use_both_forms():
    """The crawl tests walk every bundled shop with real Chromium: both forms are walked."""
    walked_by_steps = {
        name
        for name in ("classic", "spa", "scroll", "menu")
        if any(step.get("action") in WALK_STEPS for step in builtin_data(name).get("steps", []))
    }
    assert walked_by_steps == {"scroll", "menu"}


def test_page_steps_keep_their_place_in_the_file_among_walk_steps():
    data = builtin_data("scroll")
    data["steps"].append({"action": "wait_for", "selector": "a.tile"})
    spec = parse_spec(data, "scroll")
    assert [(step.action, step.where) for step in spec.steps] == [
        ("dismiss", "steps[0]"),
        ("wait_for", "steps[3]"),
    ]
    assert spec.pagination.strategy == "infinite_scroll" and spec.pagination.max_pages == 500
    assert spec.detail is not None and not spec.detail.render


MENU_WALK = '[[steps]]\naction = "for_each"\nselector = "nav.menu a.cat"\n\n'
NEXT = '[[steps]]\naction = "next_page"\nselector = "a.more-next"\n\n'
DETAIL = '[[steps]]\naction = "open_detail"\n\n'


@pytest.mark.parametrize(
    ("steps", "tables", "key", "problem"),
    [
        (NEXT + NEXT.replace("next_page", "load_more"), "", "steps[1].action", "a second way"),
        (MENU_WALK + MENU_WALK, "", "steps[1].action", "a second for_each: steps[0] is"),
        (DETAIL + DETAIL, "", "steps[1].action", "a second open_detail"),
        (NEXT, '[pagination]\nstrategy = "none"\n', "steps[0].action", "[pagination] table"),
        (MENU_WALK, '[for_each]\nselector = "a"\n', "steps[0].action", "[for_each] table"),
        (DETAIL, "[detail]\n", "steps[0].action", "[detail] table"),
        (NEXT + MENU_WALK, "", "steps[1].action", "must come before the next_page at steps[0]"),
        (NEXT + DETAIL, "", "steps[1].action", "open_detail must come before the next_page"),
        (
            '[[steps]]\naction = "next_page"\n',
            "",
            "steps[0].selector",
            "is required for action 'next_page'",
        ),
        (NEXT.replace("\n\n", "\nmax_pages = 0\n\n"), "", "steps[0].max_pages", "at least 1"),
        (NEXT.replace("\n\n", '\ndone_selector = ".end"\n\n'), "", "steps[0].done_selector", ""),
        (NEXT.replace("\n\n", '\ncolour = "red"\n\n'), "", "steps[0].colour", "unknown key"),
        (
            '[[steps]]\naction = "infinite_scroll"\nselector = ".feed"\n',
            "",
            "steps[0].selector",
            "is for next_page and load_more, not action 'infinite_scroll'",
        ),
        (
            "",
            '[pagination]\nstrategy = "none"\nmax_pages = 5\n',
            "pagination.max_pages",
            "is for a listing that goes on, not strategy 'none'",
        ),
        (
            "",
            '[pagination]\nstrategy = "none"\nselector = "a.next"\n',
            "pagination.selector",
            "not strategy 'none'",
        ),
        (NEXT.replace('"a.more-next"', '"a:contains(x)"'), "", "steps[0].selector", "browser"),
        ('[[steps]]\naction = "for_each"\n', "", "steps[0].selector", "is required"),
        (
            DETAIL.replace("\n\n", '\nfields = { price = "p[" }\n\n'),
            "",
            "steps[0].fields.price",
            "bad CSS selector",
        ),
        (DETAIL.replace("\n\n", '\nrender = "no"\n\n'), "", "steps[0].render", "a boolean"),
        ('[[steps]]\naction = "paginate"\n', "", "steps[0].action", "next_page, load_more"),
        ('[[steps]]\naction = ["for_each"]\n', "", "steps[0].action", "must be a string"),
        ("[[steps]]\naction = { go = 1 }\n", "", "steps[0].action", "not a table"),
        (
            '[[setup]]\naction = "goto"\nurl = "/"\n[[setup]]\naction = "next_page"\n',
            "",
            "setup[1].action",
            "must be one of goto, dismiss",
        ),
    ],
)
def test_a_mistake_in_a_walk_step_names_the_file_and_the_steps_key(
    tmp_path, steps, tables, key, problem
):
    text = builtin_spec_paths()["classic"].read_text(encoding="utf-8")
    text = text.replace('[pagination]\nstrategy = "next_page"', '[paged]\nstrategy = "next_page"')
    head, paged = text.split("[paged]")
    rest = paged[paged.index("\n[") :]  # classic's [pagination] table left out
    path = tmp_path / "shop.toml"
    path.write_text(head + tables + rest + "\n" + steps, encoding="utf-8")
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: key '{key}': ") and problem in message


def test_a_failing_page_step_after_a_walk_step_is_named_by_its_place_in_the_file(browser):
    data = as_steps(builtin_data("menu"))
    data["steps"].append({"action": "click", "selector": "#nowhere"})
    data["politeness"] = {"wait_timeout": 0.2}
    spec = parse_spec(data, "menu.toml")
    browser.get("data:text/html,<h1>Shop</h1>")
    with pytest.raises(StepFailed) as caught:
        Browser(spec, browser).run_steps()
    assert "steps[2]:click" in str(caught.value) and "'#nowhere'" in str(caught.value)


def test_a_detail_step_without_json_ld_names_itself_where_the_price_may_come_from():
    data = builtin_data("scroll")  # the price is on the detail page only
    data["steps"][1]["json_ld"] = False
    del data["steps"][1]["fields"]["price"]
    with pytest.raises(SpecError) as caught:
        parse_spec(data, "scroll.toml")
    assert str(caught.value) == (
        "scroll.toml: key 'listing.fields.price': is required (here or in steps[1].fields) "
        "with steps[1].json_ld = false"
    )
