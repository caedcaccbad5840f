"""crawler.browser.evaluate: a script run as one DevTools command after a load, with what
executeScript would return, elements as None, and errors raised as executeScript's."""

from __future__ import annotations

import pytest
from selenium.common.exceptions import JavascriptException

from crawler.browser import BrowserConfig, BrowserSession, evaluate
from tests.remote_chromedriver import chromedriver_on_loopback

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


def test_a_remote_driver_runs_the_script_through_webdriver(mall):
    """A remote's WebDriver may not pass CDP commands on (a Grid of other browsers): the
    script goes as executeScript, and elements come back as elements."""
    with (
        chromedriver_on_loopback() as remote,
        BrowserSession(BrowserConfig(remote_url=remote)) as session,
    ):
        driver = session.start()
        driver.get(mall.base_urls["classic"] + "/products?page=1")
        result = evaluate(driver, SCRIPT, "li.product", None)
        assert result[2].tag_name == "li" and result[1] == 24
