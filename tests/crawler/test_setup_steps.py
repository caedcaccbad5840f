"""A shop's [[setup]]: steps run once in each browser before its first page of the shop (here
the classic demo shop's "products per page" form), again in a recycled or restarted browser.
Each test has a browser of its own: the setup's cookie must not leak into other tests."""

from __future__ import annotations

from dataclasses import replace

import pytest

from crawler.browser import BrowserSession
from crawler.engine import crawl_shop
from crawler.spec import Step, load_builtin_spec
from demo.mall import MallSettings, run_mall

pytestmark = pytest.mark.browser

PER_PAGE = "48"


@pytest.fixture(scope="module")
def classic_mall():
    with run_mall(MallSettings(seed=11, products=200, shops=("classic",))) as running:
        yield running


def with_setup(mall, *setup: Step, **politeness):
    spec = load_builtin_spec("classic").with_base_url(mall.base_urls["classic"])
    return replace(spec, setup=setup, politeness=replace(spec.politeness, **politeness))


CHOOSE_48 = (
    Step("goto", url="/settings"),
    Step("select", "form.settings select[name=per_page]", PER_PAGE),
    Step("click", "form.settings button.save", navigates=True),
)


def crawl(spec, session, tmp_path, **options):
    pages, failures = [], []
    summary = crawl_shop(
        spec,
        session.driver,
        tmp_path / "images",
        pages.append,
        failures.append,
        session=session,
        **options,
    )
    return summary, pages, failures


def test_the_setup_applies_to_the_whole_walk_and_to_a_recycled_browser(classic_mall, tmp_path):
    """48 products a page instead of 24: half the pages. The browser is recycled every two
    loads, so later pages are only 48 long if each new browser ran the setup again."""
    shop = classic_mall.servers["classic"].shop
    with BrowserSession() as session:
        summary, pages, failures = crawl(
            with_setup(classic_mall, *CHOOSE_48), session, tmp_path, recycle_after=2
        )
        assert session.starts >= 3  # recycled at least twice
    assert failures == []
    assert summary.pages == shop.pages_of(int(PER_PAGE)) < shop.page_count
    assert [len(p.offers) for p in pages] == [len(shop.page(n, 48)) for n in (1, 2, 3)]
    truth = {o["url"]: o["price"] for o in classic_mall.answer_key()["shops"]["classic"]["offers"]}
    assert {o.url: o.price for p in pages for o in p.offers} == truth


def test_a_failing_setup_is_an_error_naming_its_step_and_is_tried_again(classic_mall, tmp_path):
    """No such option: each start URL fails at the setup (tried again for the second),
    naming the step, selector and URL; nothing is crawled at the wrong page size."""
    broken = (CHOOSE_48[0], Step("select", "select[name=per_page]", "1000"), CHOOSE_48[2])
    spec = replace(
        with_setup(classic_mall, *broken), start_urls=("/products?page=1", "/products?page=2")
    )
    with BrowserSession() as session:
        summary, pages, failures = crawl(spec, session, tmp_path)
    assert pages == [] and summary.offers == 0
    assert [f.step for f in failures] == ["setup[1]:select"] * 2
    message = failures[0].message
    assert "no option '1000'" in message and "select[name=per_page]" in message
    assert message.count("/settings") == 1 and failures[0].url.endswith("/settings")


def test_a_navigating_click_that_opens_no_page_is_a_step_error(classic_mall, tmp_path):
    """The settings form's <select> is no link: waiting for a page it opens ends in an
    error at the wait time-out, not in a crawl of the settings page."""
    setup = (CHOOSE_48[0], Step("click", "select[name=per_page]", navigates=True))
    with BrowserSession() as session:
        _, pages, failures = crawl(
            with_setup(classic_mall, *setup, wait_timeout=1.0), session, tmp_path
        )
    assert pages == []
    assert [f.step for f in failures] == ["setup[1]:click"]
    assert "no new page opened" in failures[0].message


def test_a_setup_goto_obeys_the_shops_host(classic_mall, tmp_path):
    setup = (Step("goto", url="http://example.invalid/settings"),)
    with BrowserSession() as session:
        _, pages, failures = crawl(with_setup(classic_mall, *setup), session, tmp_path)
    assert pages == [] and [f.step for f in failures] == ["setup[0]:goto"]
    assert "leaves the shop's host" in failures[0].message
