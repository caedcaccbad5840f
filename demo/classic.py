"""Classic: a server-rendered shop with numbered pagination, a "next" link and breadcrumbs.
Prices look like ``12,900원``; categories are Korean breadcrumbs. A settings form (a cookie)
chooses how many products a page shows, as real shops' "show 24 / 48 / 96" switches do."""

from __future__ import annotations

from demo.catalog import Product
from demo.photos import PhotoStyle
from demo.shop import (
    NOT_FOUND,
    DemoShop,
    Response,
    ShopOffer,
    esc,
    html_response,
    json_ld_script,
    won,
)

PAGE_SIZES = (24, 48, 96)  # the settings page's choices; without one, page_size

CATEGORY_NAMES = {
    "tshirt": "상의 > 티셔츠",
    "trouser": "하의 > 바지",
    "pullover": "상의 > 스웨터",
    "dress": "원피스",
    "coat": "아우터 > 코트",
    "sandal": "신발 > 샌들",
    "shirt": "상의 > 셔츠",
    "sneaker": "신발 > 스니커즈",
    "bag": "가방",
    "ankle_boot": "신발 > 앵클부츠",
}


class ClassicShop(DemoShop):
    name = "classic"
    display_name = "Hanbit Classic"
    sku_prefix = "HC"
    photo_style = PhotoStyle(size=112, padding=8, format="PNG")
    hard_photo_style = PhotoStyle(
        size=112,
        padding=4,
        rotation=7,
        shift=(5, -3),
        crop=0.06,
        background=(30, 30, 40),
        format="PNG",
    )
    shows_list_price = False
    # variants, off in the mall: where the last page's "next" link points ("self" or
    # "first"; none by default), as some shops' last pages do, and an anchor every "next"
    # jumps to ("#list"), shown as the listing's id
    last_page_next = ""
    next_anchor = ""

    def title_for(self, product: Product, on_sale: bool) -> str:
        return f"{product.brand} {product.material} {product.colour} {product.noun}".title()

    def category_name(self, category: str) -> str:
        return "의류 > " + CATEGORY_NAMES[category]

    def detail_path(self, sku: str) -> str:
        return f"/products/{sku}"

    def format_price(self, amount: int) -> str:
        return f"{won(amount)}원"

    def _price(self, offer: ShopOffer) -> str:
        text = self.price_text(offer)
        return "" if text is None else f'<p class="price"><span class="amount">{text}</span></p>'

    def route(self, path, query, cookies):
        size = self._page_size(cookies)
        if path in ("/", "/products"):
            number = self.page_number(query, self.pages_of(size))
            return NOT_FOUND if number is None else html_response(self._listing(number, size))
        if path.startswith("/products/"):
            offer = self.by_sku.get(path.rsplit("/", 1)[1])
            return html_response(self._detail(offer)) if offer else NOT_FOUND
        if path == "/settings":
            return self._settings(query, size)
        return NOT_FOUND

    def _page_size(self, cookies: dict[str, str]) -> int:
        chosen = cookies.get("per_page", "")
        return int(chosen) if chosen in {str(n) for n in PAGE_SIZES} else self.page_size

    def _settings(self, query: dict[str, str], size: int) -> Response:
        """The form, or (submitted) a cookie with the choice and a redirect to the listing."""
        chosen = query.get("per_page")
        if chosen is None:
            options = "".join(
                f'<option value="{n}"{" selected" if n == size else ""}>{n}개씩</option>'
                for n in PAGE_SIZES
            )
            return html_response(f"""<!doctype html>
<html lang="ko"><head><meta charset="utf-8"><title>{self.display_name} – 보기 설정</title>
</head><body><form class="settings" action="/settings" method="get">
<label>한 페이지에 <select name="per_page">{options}</select></label>
<button type="submit" class="save">저장</button></form></body></html>""")
        if chosen not in {str(n) for n in PAGE_SIZES}:
            return html_response("<p>잘못된 설정입니다</p>", status=400)
        cookie = f"per_page={chosen}; Path=/; SameSite=Lax"
        headers = (("Set-Cookie", cookie), ("Location", "/products?page=1"))
        return Response(303, "text/html; charset=utf-8", b"", headers)

    def _card(self, offer: ShopOffer) -> str:
        link = self.detail_path(offer.sku)
        stock = "" if offer.in_stock else '<p class="sold-out">품절</p>'
        return f"""
<li class="product" data-sku="{offer.sku}">
  <a class="product-link" href="{link}"><img class="thumb" src="{self.photo_path(offer.sku)}"
     alt="{esc(offer.title)}" width="112" height="112"></a>
  <nav class="breadcrumb">{esc(offer.category_name)}</nav>
  <h2 class="product-name"><a href="{link}">{esc(offer.title)}</a></h2>
  {self._price(offer)}{stock}
</li>"""

    def _pagination(self, number: int, size: int) -> str:
        href = "/products?page="
        pages = self.pages_of(size)
        links = []
        if number > 1:
            links.append(f'<a class="prev" rel="prev" href="{href}{number - 1}">‹ 이전</a>')
        # like real shops: the first and last page, and a window around the current one
        window = {1, pages, *range(max(1, number - 4), number + 5)}
        for n in sorted(p for p in window if p <= pages):
            attrs = ' aria-current="page" class="page current"' if n == number else ' class="page"'
            links.append(f'<a{attrs} href="{href}{n}">{n}</a>')
        following = {"self": number, "first": 1}.get(self.last_page_next)
        if number < pages:
            following = number + 1
        if following:
            anchor = f"#{self.next_anchor}" if self.next_anchor else ""
            links.append(f'<a class="next" rel="next" href="{href}{following}{anchor}">다음 ›</a>')
        return '<nav class="pagination">' + " ".join(links) + "</nav>"

    def _listing(self, number: int, size: int) -> str:
        offers = self.page(number, size)
        cards = "".join(self._card(offer) for offer in offers)
        # the page's products as JSON-LD too, as many shops' category pages publish them
        listed = [
            {"@type": "ListItem", "position": n, "item": self.product_data(offer)}
            for n, offer in enumerate(offers, 1)
        ]
        item_list = json_ld_script({"@type": "ItemList", "itemListElement": listed})
        return f"""<!doctype html>
<html lang="ko"><head><meta charset="utf-8"><title>{self.display_name} – 전체상품 {number}</title>
{item_list}</head><body>
<header><h1 class="logo">{self.display_name}</h1>
<a class="settings" href="/settings">{size}개씩 보기</a></header>
<main{f' id="{self.next_anchor}"' if self.next_anchor else ""}><ul class="product-list">{cards}
</ul>{self._pagination(number, size)}</main>
</body></html>"""

    def _detail(self, offer: ShopOffer) -> str:
        return f"""<!doctype html>
<html lang="ko"><head><meta charset="utf-8"><title>{esc(offer.title)}</title></head><body>
<nav class="breadcrumb">{esc(offer.category_name)}</nav>
<h1 class="product-name">{esc(offer.title)}</h1>
<img class="photo" src="{self.photo_path(offer.sku)}" alt="{esc(offer.title)}">
{self._price(offer)}
<p class="stock">{"재고 있음" if offer.in_stock else "품절"}</p>
</body></html>"""
