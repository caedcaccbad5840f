"""Menu: products are reachable only through a category menu (click a category, then
paginate). Some products come in sizes whose prices differ: the listing says
``from 9,900원`` and a size selector on the detail page changes the price; others show
``KRW 12900``."""

from __future__ import annotations

import random
from functools import cached_property

from demo.catalog import Product
from demo.photos import PhotoStyle
from demo.shop import NOT_FOUND, DemoShop, ShopOffer, esc, html_response, won

CATEGORIES = {  # label -> (url slug, menu text)
    "tshirt": ("tees", "Tees 티셔츠"),
    "trouser": ("pants", "Pants 팬츠"),
    "pullover": ("knit", "Knit 니트"),
    "dress": ("dresses", "Dresses 원피스"),
    "coat": ("coats", "Coats 코트"),
    "sandal": ("sandals", "Sandals 샌들"),
    "shirt": ("shirts", "Shirts 셔츠"),
    "sneaker": ("sneakers", "Sneakers 스니커즈"),
    "bag": ("bags", "Bags 가방"),
    "ankle_boot": ("boots", "Boots 부츠"),
}
SLUGS = {slug: label for label, (slug, _) in CATEGORIES.items()}
SIZED = {
    "tshirt",
    "trouser",
    "pullover",
    "dress",
    "coat",
    "shirt",
    "sneaker",
    "sandal",
    "ankle_boot",
}
SIZES = ("S", "M", "L", "XL")
SIZED_SHARE = 0.4
SIZE_STEP = 2_000  # each bigger size costs this much more
PAGE = 12


# the script that opens a category from a menu link without a URL (the by-script variant)
_MENU_SCRIPT = """<script>
document.querySelectorAll('nav.menu a.cat[data-href]').forEach(a => a.addEventListener(
  'click', e => { e.preventDefault(); location.href = a.dataset.href; }));
</script>"""


def _menu_entry(slug: str, text: str, current: bool, by_script: bool) -> str:
    if current:
        return f'<li><span class="cat current" aria-current="page">{esc(text)}</span></li>'
    if by_script:
        return f'<li><a class="cat" href="#" data-href="/c/{slug}">{esc(text)}</a></li>'
    return f'<li><a class="cat" href="/c/{slug}">{esc(text)}</a></li>'


def _page(title: str, body: str, current: str | None = None, by_script: bool = False) -> str:
    """A page with the category menu; *current* (a slug) is shown as text, not a link, and
    *by_script* menu links carry no URL: a script opens their category."""
    menu = "".join(
        _menu_entry(slug, text, slug == current, by_script) for slug, text in CATEGORIES.values()
    )
    return f"""<!doctype html>
<html lang="ko"><head><meta charset="utf-8"><title>{esc(title)} - Busan Market</title></head>
<body><header><a class="home" href="/">Busan Market</a>
<nav class="menu"><ul>{menu}</ul></nav>{_MENU_SCRIPT if by_script else ""}</header>
<main>{body}</main></body></html>"""


class MenuShop(DemoShop):
    name = "menu"
    display_name = "Busan Market"
    sku_prefix = "BM"
    photo_style = PhotoStyle(
        size=160,
        padding=12,
        background=(236, 241, 250),
        tint=(20, 32, 70),
        rotation=3,
        format="JPEG",
        quality=90,
    )
    hard_photo_style = PhotoStyle(
        size=176,
        padding=8,
        background=(255, 250, 235),
        tint=(90, 20, 20),
        rotation=-11,
        shift=(-8, 5),
        crop=0.1,
        format="JPEG",
        quality=50,
    )
    shows_list_price = False
    # variants, off in the mall: a category page shows its own category as plain text, not
    # a link (as many shops do); the menu's links carry no URL ("#"), a script opens them
    current_category_as_text = False
    menu_links_by_script = False

    def sizes(self, offer: ShopOffer) -> list[tuple[str, int]]:
        """(size, price) pairs, or [] for a product sold in one size."""
        count = self._size_count(offer.product)
        return [(size, offer.price + i * SIZE_STEP) for i, size in enumerate(SIZES[:count])]

    def _size_count(self, product: Product) -> int:
        """How many sizes the product comes in; 0 for one size only."""
        rng = random.Random(f"sizes:{self.catalog.seed}:{self.name}:{product.id}")
        if product.category not in SIZED or rng.random() >= SIZED_SHARE:
            return 0
        return rng.choice((2, 3, 4))

    def title_for(self, product: Product, on_sale: bool) -> str:
        noun = product.noun.title()
        title = f"{product.brand.upper()} {noun} - {product.colour}/{product.material}"
        count = self._size_count(product)
        return f"{title} ({SIZES[0]}-{SIZES[count - 1]})" if count else title

    def category_name(self, category: str) -> str:
        return CATEGORIES[category][1]

    def detail_path(self, sku: str) -> str:
        return f"/goods/{sku}"

    def format_price(self, amount: int) -> str:
        return f"KRW {amount}"

    def price_text(self, offer: ShopOffer) -> str | None:
        text = super().price_text(offer)
        if text and text != self.unreadable_price and self.sizes(offer):
            return f"from {won(offer.price)}원"
        return text

    def in_category(self, label: str) -> list[ShopOffer]:
        return self._by_category.get(label, [])

    @cached_property
    def _by_category(self) -> dict[str, list[ShopOffer]]:
        grouped: dict[str, list[ShopOffer]] = {}
        for offer in self.offers:
            grouped.setdefault(offer.product.category, []).append(offer)
        return grouped

    def route(self, path, query, cookies):
        if path == "/":
            return html_response(
                _page(
                    "Home",
                    '<section class="welcome"><h1>어서 오세요'
                    "</h1><p>Choose a category.</p></section>",
                    by_script=self.menu_links_by_script,
                )
            )
        if path.startswith("/c/") and path[3:] in SLUGS:
            return self._category(SLUGS[path[3:]], query)
        if path.startswith("/goods/"):
            offer = self.by_sku.get(path[len("/goods/") :])
            return html_response(self._detail(offer)) if offer else NOT_FOUND
        return NOT_FOUND

    def _category(self, label: str, query: dict[str, str]):
        offers = self.in_category(label)
        pages = max(1, -(-len(offers) // PAGE))
        number = self.page_number(query, pages)
        if number is None:
            return NOT_FOUND
        slug, text = CATEGORIES[label]
        shown = offers[(number - 1) * PAGE : number * PAGE]
        empty = '<p class="empty">상품이 없습니다 (no products yet)</p>'
        cards = "".join(self._card(o) for o in shown) or empty
        nav = (
            f'<a class="more-next" href="/c/{slug}?page={number + 1}">Next ›</a>'
            if number < pages
            else ""
        )
        body = (
            f'<h1 class="cat-title">{esc(text)}</h1><div class="goods-list">{cards}</div>'
            f'<div class="paging"><span class="page-no">{number} / {pages}</span>'
            f"{nav}</div>"
        )
        current = slug if self.current_category_as_text else None
        return html_response(_page(text, body, current, self.menu_links_by_script))

    def _card(self, offer: ShopOffer) -> str:
        price = self.price_text(offer)
        price_html = f'<span class="goods-price">{esc(price)}</span>' if price else ""
        sold = "" if offer.in_stock else '<span class="goods-soldout">SOLD OUT</span>'
        return (
            f'<div class="goods" data-goods="{offer.sku}">'
            f'<a class="goods-link" href="{self.detail_path(offer.sku)}">'
            f'<img src="{self.photo_path(offer.sku)}" alt="" width="160" height="160">'
            f'<strong class="goods-name">{esc(offer.title)}</strong></a>'
            f'<em class="goods-cat">{esc(offer.category_name)}</em>'
            f"{price_html}{sold}</div>"
        )

    def _detail(self, offer: ShopOffer) -> str:
        sizes = self.sizes(offer)
        price = self.price_text(offer)
        selector = ""
        if sizes and price != self.unreadable_price and price is not None:
            options = "".join(
                f'<option value="{s}" data-price="{p}">{s}</option>' for s, p in sizes
            )
            selector = f"""<label>Size <select id="size"><option value="">Choose a size
</option>{options}</select></label>
<script>
document.getElementById('size').addEventListener('change', e => {{
  const chosen = e.target.selectedOptions[0];
  if (chosen.dataset.price) document.getElementById('price').textContent =
    'KRW ' + chosen.dataset.price;
}});
</script>"""
        price_html = (
            f'<p><span id="price" class="goods-price">{esc(price)}</span></p>' if price else ""
        )
        body = (
            f'<h1 class="goods-name">{esc(offer.title)}</h1>'
            f'<img src="{self.photo_path(offer.sku)}" alt="">{price_html}{selector}'
            f'<p class="stock">{"In stock" if offer.in_stock else "SOLD OUT"}</p>'
        )
        return _page(offer.title, body, by_script=self.menu_links_by_script)
