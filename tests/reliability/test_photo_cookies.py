"""Photos are requested with the cookies the browser holds for the page they were found on,
though the browser is asked for its cookies only when something says they changed."""

from __future__ import annotations

from typing import ClassVar

import pytest

import crawler.steps
from demo.catalog import Catalog
from demo.classic import ClassicShop
from demo.faults import FaultPlan
from demo.shop import Response
from tests.reliability.conftest import crawl_served

pytestmark = pytest.mark.browser


class CookieShop(ClassicShop):
    """Classic with six items a page. Page 1's script sets a cookie scripts can see, page 2's
    response an HttpOnly one, page 3's script changes the first; later pages set nothing.
    Each photo request is logged with the cookies it came with."""

    page_size = 6
    photo_cookies: ClassVar[dict[str, dict[str, str]]] = {}

    def handle(self, path, query, cookies=None):
        if path.startswith("/images/"):
            sku = path.rsplit("/", 1)[1].rsplit(".", 1)[0]
            self.photo_cookies[sku] = dict(cookies or {})
        return super().handle(path, query, cookies)

    def route(self, path, query, cookies):
        response = super().route(path, query, cookies)
        number = self.page_number(query) if path in ("/", "/products") else None
        if number is None or response.status != 200:
            return response
        body, headers = response.body, response.headers
        script = {1: "seen=a", 3: "seen=c"}.get(number)
        if script:  # set while the page is parsed, before the crawler looks at it
            tag = f"<script>document.cookie = '{script}; path=/'</script></body>"
            body = body.replace(b"</body>", tag.encode())
        if number == 2:
            headers += (("Set-Cookie", "session=b; Path=/; HttpOnly"),)
        return Response(response.status, response.content_type, body, headers)


def expected_cookies(page: int) -> dict[str, str]:
    if page == 1:
        return {"seen": "a"}
    return {"seen": "a" if page == 2 else "c", "session": "b"}


def test_photos_carry_the_cookies_of_their_page_read_only_when_changed(tmp_path, monkeypatch):
    reads = []
    real = crawler.steps.cookies_header
    monkeypatch.setattr(crawler.steps, "cookies_header", lambda d: reads.append(1) or real(d))
    # however slow the machine, the age rule (tested apart) must not add reads here
    monkeypatch.setattr(crawler.steps, "COOKIES_MAX_AGE_S", 3600.0)
    shop = CookieShop(Catalog(4, 45), 0, FaultPlan(), False)
    CookieShop.photo_cookies = {}
    _, result, _ = crawl_served(tmp_path, shop)
    assert result.status == "ok" and result.pages == shop.page_count >= 5, result
    page_of = {o.sku: n for n in range(1, shop.page_count + 1) for o in shop.page(n)}
    assert set(CookieShop.photo_cookies) == set(page_of)  # every photo was fetched
    for sku, cookies in CookieShop.photo_cookies.items():
        assert cookies == expected_cookies(page_of[sku]), (sku, page_of[sku])
    # page 1 (nothing read yet), 2 (a response set one), 3 (a script changed one); the
    # later pages use the header read for page 3
    assert len(reads) == 3
