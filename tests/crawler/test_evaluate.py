"""crawler.browser.evaluate: a script run as one DevTools command after a load, with what
executeScript would return, elements as None, and errors raised as executeScript's."""

from __future__ import annotations

import pytest
from selenium.common.exceptions import JavascriptException

from crawler.browser import evaluate

pytestmark = pytest.mark.browser

SCRIPT = """
const [selector, extra] = arguments;
const items = document.querySelectorAll(selector);
return [document.URL, items.length, items[0], extra, {nested: [1.5, true, null]}];"""


@pytest.fixture
def listing(mall, browser):
    browser.get(mall.base_urls["classic"] + "/products?page=1")
    return browser


def test_evaluate_returns_what_execute_script_returns_but_elements(listing):
    url, count, element, extra, nested = listing.execute_script(SCRIPT, "li.product", ["x"])
    assert element.tag_name == "li"  # executeScript: an element handle
    assert evaluate(listing, SCRIPT, "li.product", ["x"]) == [url, count, None, extra, nested]
    assert count == 24 and extra == ["x"] and nested == {"nested": [1.5, True, None]}


def test_evaluate_shares_the_page_state_with_execute_script(listing):
    evaluate(listing, "document.__mark = arguments[0]", "set by evaluate")
    assert listing.execute_script("return document.__mark") == "set by evaluate"
    assert evaluate(listing, "return undefined") is None


def test_a_script_error_is_raised_as_execute_script_raises_it(listing):
    with pytest.raises(JavascriptException, match="boom"):
        evaluate(listing, "throw new Error('boom')")


class RemoteLike:
    """A driver without DevTools (a remote one): evaluate falls back to execute_script."""

    def __init__(self, driver):
        self.execute_script = driver.execute_script


def test_a_driver_without_devtools_runs_the_script_through_webdriver(listing):
    result = evaluate(RemoteLike(listing), SCRIPT, "li.product", None)
    assert result[2].tag_name == "li" and result[1] == 24
