"""SPA: a JavaScript shop. Cards come from a JSON API, a "Load more" button appends pages,
photos lazy-load from ``data-src`` when scrolled into view, and sale items show the old price
struck through beside ``₩12,900``."""

from __future__ import annotations

import json

from demo.catalog import Product
from demo.photos import PhotoStyle
from demo.shop import NOT_FOUND, DemoShop, Response, esc, html_response, won

CATEGORY_NAMES = {
    "tshirt": "Tops / Tees",
    "trouser": "Bottoms / Trousers",
    "pullover": "Tops / Knitwear",
    "dress": "Dresses",
    "coat": "Outerwear",
    "sandal": "Shoes / Sandals",
    "shirt": "Tops / Shirts",
    "sneaker": "Shoes / Sneakers",
    "bag": "Bags",
    "ankle_boot": "Shoes / Boots",
}
ABBREVIATIONS = {
    "t-shirt": "Tee",
    "trousers": "Pants",
    "pullover": "Sweater",
    "ankle boots": "Ankle Bts",
}

# What the "Load more" button does once the last page is in: the mall's shop removes it;
# variants (tests) leave it disabled, leave it aria-disabled (clicks ignored), leave it
# working but adding the last page's cards again ("more like these"), leave it looking
# usable but doing nothing, leave it throwing a script error when clicked, or tuck it,
# still working, into a box of no height that hides what overflows (only a check as
# thorough as Selenium's is_displayed sees it is not shown)
END_OF_LIST = {
    "remove": "more.remove();",
    "disabled": "{ ended = 'disabled'; more.textContent = 'No more products'; }",
    "aria-disabled": "{ ended = 'aria'; more.setAttribute('aria-disabled', 'true'); }",
    "repeat": "page = data.pages - 1;",
    "inert": "ended = 'inert';",
    "broken": "ended = 'broken';",
    "tucked": "{ const box = document.createElement('div'); box.style.cssText = "
    "'height: 0; overflow: hidden'; more.before(box); box.appendChild(more); }",
}

_SHELL = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Gangnam Style Store</title>
<style>.grid{display:flex;flex-wrap:wrap}.card{width:160px;margin:8px}
.card img{width:128px;height:128px;background:#eee}</style></head><body>
<h1>Gangnam Style Store</h1>
<section id="grid" class="grid" aria-live="polite"></section>
<button id="load-more" type="button">Load more</button>
<script>
const grid = document.getElementById('grid');
const more = document.getElementById('load-more');
const blank = 'data:image/gif;base64,R0lGODlhAQABAAAAACw=';
let page = 0, ended = '';
const lazy = new IntersectionObserver(entries => entries.forEach(e => {
  if (e.isIntersecting) { e.target.src = e.target.dataset.src; lazy.unobserve(e.target); }
}));
function text(tag, cls, value) {
  const el = document.createElement(tag); el.className = cls; el.textContent = value; return el;
}
function card(item) {
  const art = document.createElement('article');
  art.className = 'card'; art.dataset.id = item.id;
  const link = document.createElement('a'); link.href = item.url; link.className = 'card-link';
  const img = document.createElement('img');
  img.className = 'lazy'; img.src = blank; img.dataset.src = item.image; img.alt = item.title;
  link.appendChild(img); art.appendChild(link);
  art.appendChild(text('h3', 'card-title', item.title));
  art.appendChild(text('span', 'card-category', item.category));
  const price = document.createElement('div'); price.className = 'card-price';
  if (item.was) price.appendChild(text('s', 'was', item.was));
  if (item.price !== null) price.appendChild(text('strong', 'now', item.price));
  art.appendChild(price);
  if (!item.in_stock) art.appendChild(text('em', 'oos', 'Sold out'));
  lazy.observe(img);
  return art;
}
async function loadMore() {
  if (ended === 'broken') throw new TypeError('demo: no next page to load');
  if (ended) return;
  more.disabled = true;
  try {
    const res = await fetch('/api/products?page=' + (page + 1));
    if (!res.ok) throw new Error('HTTP ' + res.status);
    const data = await res.json();
    data.items.forEach(item => grid.appendChild(card(item)));
    page = data.page;
    if (page >= data.pages) __END_OF_LIST__
  } catch (err) {
    more.textContent = 'Load more (try again)';
  } finally {
    more.disabled = ended === 'disabled';
  }
}
more.addEventListener('click', loadMore);
loadMore();
</script></body></html>"""


class SpaShop(DemoShop):
    name = "spa"
    display_name = "Gangnam Style Store"
    sku_prefix = "GS"
    unreadable_price = "Price on request"
    end_of_list = "remove"  # a key of END_OF_LIST; the others are variants for tests
    photo_style = PhotoStyle(
        size=128, padding=14, background=(24, 24, 24), tint=(255, 236, 210), format="JPEG"
    )
    hard_photo_style = PhotoStyle(
        size=144,
        padding=22,
        background=(60, 52, 48),
        tint=(255, 220, 170),
        rotation=-6,
        shift=(-6, 4),
        format="JPEG",
        quality=60,
    )

    def title_for(self, product: Product, on_sale: bool) -> str:
        noun = ABBREVIATIONS.get(product.noun, product.noun.title())
        promo = "[SALE] " if on_sale else ""
        return (
            f"{promo}{product.colour.title()} {product.material.title()} {noun} · "
            f"{product.brand.upper()}"
        )

    def category_name(self, category: str) -> str:
        return CATEGORY_NAMES[category]

    def detail_path(self, sku: str) -> str:
        return f"/p/{sku}"

    def format_price(self, amount: int) -> str:
        return f"₩{won(amount)}"

    def route(self, path, query, cookies):
        if path == "/":
            return html_response(_SHELL.replace("__END_OF_LIST__", END_OF_LIST[self.end_of_list]))
        if path == "/api/products":
            number = self.page_number(query)
            return NOT_FOUND if number is None else self._api_page(number)
        if path.startswith("/p/"):
            offer = self.by_sku.get(path[3:])
            if offer is None:
                return NOT_FOUND
            return html_response(
                f"<!doctype html><html><head><meta charset='utf-8'><title>{esc(offer.title)}"
                f"</title></head><body><h1>{esc(offer.title)}</h1>"
                f"<p class='now'>{esc(self.price_text(offer) or '')}</p></body></html>"
            )
        return NOT_FOUND

    def _api_page(self, number: int) -> Response:
        items = [
            {
                "id": o.sku,
                "url": self.detail_path(o.sku),
                "title": o.title,
                "category": o.category_name,
                "image": self.photo_path(o.sku),
                "price": self.price_text(o),
                "was": self.format_price(o.list_price) if o.list_price else None,
                "in_stock": o.in_stock,
            }
            for o in self.page(number)
        ]
        body = {"page": number, "pages": self.page_count, "items": items}
        return Response(200, "application/json", json.dumps(body, ensure_ascii=False).encode())
