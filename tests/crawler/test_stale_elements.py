"""An element the page re-renders between being found and being used (a stale element) is
found again: a step, or the walk's reading of its pagination control, does not fail the
shop for it. Real Chromium; the re-render is the page's own DOM change, made right after
WebDriver finds the element, so chromedriver itself reports the element stale."""

from __future__ import annotations

from dataclasses import replace

import pytest
from selenium.webdriver.common.by import By

from crawler.errors import StepFailed
from crawler.spec import Step, load_builtin_spec
from crawler.steps import STALE_TRIES, Browser

RE_RENDER = "document.querySelectorAll(arguments[0]).forEach(e => e.replaceWith(e.cloneNode(true)))"

PAGE = """data:text/html,<div id=modal><button class=ok onclick="modal.remove()">OK</button></div>
<input id=q><select id=size><option value=s>S</option><option value=m>M</option></select>"""


class ReRendering:
    """The real driver, but each of the first *times* finds of *selector* is followed at once
    by the page replacing those elements with copies."""

    def __init__(self, driver, selector: str, times: int):
        self._driver, self.selector, self.left = driver, selector, times

    def __getattr__(self, name):
        return getattr(self._driver, name)

    def _after_find(self, value: str) -> None:
        if value == self.selector and self.left > 0:
            self.left -= 1
            self._driver.execute_script(RE_RENDER, value)

    def find_element(self, by=By.ID, value=None):
        found = self._driver.find_element(by, value)
        self._after_find(value)
        return found

    def find_elements(self, by=By.ID, value=None):
        found = self._driver.find_elements(by, value)
        self._after_find(value)
        return found


def run(browser, step: Step, times: int) -> ReRendering:
    browser.get(PAGE)
    driver = ReRendering(browser, step.selector, times)
    spec = replace(load_builtin_spec("classic"), steps=(step,))
    spec = replace(spec, politeness=replace(spec.politeness, wait_timeout=5))
    Browser(spec, driver).run_steps()
    return driver


@pytest.mark.parametrize(
    ("step", "check"),
    [
        (Step("dismiss", "#modal .ok"), "return !document.getElementById('modal')"),
        (Step("type", "#q", "linen"), "return document.getElementById('q').value == 'linen'"),
        (Step("select", "#size", "m"), "return document.getElementById('size').value == 'm'"),
        (Step("scroll", "#q"), "return true"),
    ],
    ids=["dismiss", "type", "select", "scroll"],
)
def test_a_step_whose_element_is_re_rendered_once_finds_it_again(browser, step, check):
    driver = run(browser, step, times=1)
    assert driver.left == 0  # it was re-rendered under the step
    assert browser.execute_script(check)


def test_a_step_whose_element_is_always_re_rendered_fails_naming_it(browser):
    with pytest.raises(StepFailed) as caught:
        run(browser, Step("type", "#q", "linen"), times=100)
    message = str(caught.value)
    assert "steps[0]:type" in message and "'#q'" in message
    assert f"replaced {STALE_TRIES} times" in message
