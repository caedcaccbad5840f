"""Scroll: an infinite-scroll shop behind a cookie-consent modal. The listing shows no price:
price, stock and a JSON-LD Product/Offer block are only on each product's detail page.
Titles and categories are Korean; photos are dark products on a light backdrop (WebP)."""

from __future__ import annotations

import json

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

COLOURS_KO = {
    "black": "블랙",
    "white": "화이트",
    "navy": "네이비",
    "grey": "그레이",
    "beige": "베이지",
    "red": "레드",
    "green": "그린",
    "khaki": "카키",
    "ivory": "아이보리",
    "brown": "브라운",
}
MATERIALS_KO = {
    "cotton": "코튼",
    "linen": "린넨",
    "wool": "울",
    "denim": "데님",
    "leather": "레더",
    "nylon": "나일론",
    "fleece": "플리스",
    "canvas": "캔버스",
    "suede": "스웨이드",
    "knit": "니트",
}
NOUNS_KO = {
    "tshirt": "티셔츠",
    "trouser": "팬츠",
    "pullover": "스웨터",
    "dress": "원피스",
    "coat": "코트",
    "sandal": "샌들",
    "shirt": "셔츠",
    "sneaker": "스니커즈",
    "bag": "가방",
    "ankle_boot": "앵클부츠",
}
CATEGORY_NAMES = {
    "tshirt": "상의/티셔츠",
    "trouser": "하의/팬츠",
    "pullover": "상의/니트",
    "dress": "원피스",
    "coat": "아우터/코트",
    "sandal": "슈즈/샌들",
    "shirt": "상의/셔츠",
    "sneaker": "슈즈/스니커즈",
    "bag": "가방",
    "ankle_boot": "슈즈/부츠",
}
FEED_SIZE = 24

_MODAL = """<div id="consent-overlay" style="position:fixed;inset:0;z-index:1000;
background:rgba(0,0,0,.55)"><div class="consent" role="dialog" aria-modal="true"
style="background:#fff;margin:20vh auto;width:320px;padding:24px">
<p>더 나은 서비스를 위해 쿠키를 사용합니다.</p>
<button type="button" class="accept">모두 동의</button></div></div>
<script>
document.querySelector('#consent-overlay .accept').addEventListener('click', () => {
  document.cookie = 'consent=yes; path=/';
  document.getElementById('consent-overlay').remove();
});
</script>"""

_LISTING = """<!doctype html>
<html lang="ko"><head><meta charset="utf-8"><title>Seoul Closet</title>
<style>.feed{{display:grid;grid-template-columns:repeat(4,120px);gap:12px}}
.tile img{{width:96px;height:96px}}</style></head><body>
<h1>Seoul Closet</h1>{modal}
<main id="feed" class="feed"></main>
<div id="sentinel" style="height:8px"></div>
<script>
const feed = document.getElementById('feed');
const sentinel = document.getElementById('sentinel');
let offset = 0, loading = false;
function tile(item) {{
  const a = document.createElement('a');
  a.className = 'tile'; a.href = item.url; a.dataset.sku = item.sku;
  const img = document.createElement('img'); img.src = item.image; img.alt = '';
  const name = document.createElement('p'); name.className = 'tile-name';
  name.textContent = item.title;
  a.append(img, name);
  return a;
}}
async function more() {{
  if (loading) return;
  loading = true;
  let data;
  try {{
    const res = await fetch('/api/feed?offset=' + offset);
    if (!res.ok) throw new Error('HTTP ' + res.status);
    data = await res.json();
  }} catch (err) {{
    return;  // the next scroll tries again
  }} finally {{
    loading = false;
  }}
  data.items.forEach(item => feed.appendChild(tile(item)));
  offset = data.next;
  if (data.modal && !document.getElementById('consent-overlay')) {{
    document.body.insertAdjacentHTML('beforeend', data.modal);
  }}
  if (data.done) {{
    observer.disconnect(); sentinel.remove();
    feed.insertAdjacentHTML('afterend', '<p class="feed-end">마지막 상품입니다</p>');
  }} else if (sentinel.getBoundingClientRect().top < window.innerHeight) {{
    more();
  }}
}}
const observer = new IntersectionObserver(e => {{ if (e[0].isIntersecting) more(); }});
observer.observe(sentinel);
window.addEventListener('scroll', () => {{
  if (sentinel.isConnected && sentinel.getBoundingClientRect().top < window.innerHeight) more();
}});
</script></body></html>"""


class ScrollShop(DemoShop):
    name = "scroll"
    display_name = "Seoul Closet"
    sku_prefix = "SC"
    photo_style = PhotoStyle(
        size=96, padding=6, background=(246, 246, 244), tint=(30, 30, 36), format="WEBP", quality=85
    )
    hard_photo_style = PhotoStyle(
        size=120,
        padding=10,
        background=(250, 238, 228),
        tint=(70, 40, 30),
        rotation=9,
        shift=(4, 6),
        crop=0.08,
        format="WEBP",
        quality=55,
    )
    shows_list_price = False

    def title_for(self, product: Product, on_sale: bool) -> str:
        return (
            f"{COLOURS_KO[product.colour]} {MATERIALS_KO[product.material]} "
            f"{NOUNS_KO[product.category]} [{product.brand.upper()}]"
        )

    def category_name(self, category: str) -> str:
        return CATEGORY_NAMES[category]

    def detail_path(self, sku: str) -> str:
        return f"/item/{sku}"

    def format_price(self, amount: int) -> str:
        return f"판매가 {won(amount)}원"

    def _needs_modal(self, path: str, cookies: dict[str, str]) -> bool:
        return cookies.get("consent") != "yes" or self.faults.hits(
            "modal_reappears", self.name, path
        )

    def route(self, path, query, cookies):
        if path == "/":
            modal = _MODAL if self._needs_modal(path, cookies) else ""
            return html_response(_LISTING.format(modal=modal))
        if path == "/api/feed":
            try:
                offset = max(0, int(query.get("offset", "0")))
            except ValueError:
                return NOT_FOUND
            return self._feed(offset)
        if path.startswith("/item/"):
            offer = self.by_sku.get(path[len("/item/") :])
            if offer is None:
                return NOT_FOUND
            return html_response(self._detail(offer, self._needs_modal(path, cookies)))
        return NOT_FOUND

    def _feed(self, offset: int) -> Response:
        endless = self.faults.on("endless_scroll")
        count = len(self.offers)
        if endless:  # "recommended for you": the same products again, forever
            chosen = [self.offers[(offset + i) % count] for i in range(FEED_SIZE)]
        else:
            chosen = self.offers[offset : offset + FEED_SIZE]
        next_offset = offset + len(chosen)
        body = {
            "items": [
                {
                    "sku": o.sku,
                    "title": o.title,
                    "url": self.detail_path(o.sku),
                    "image": self.photo_path(o.sku),
                }
                for o in chosen
            ],
            "next": next_offset,
            "done": not endless and next_offset >= count,
            "modal": _MODAL
            if self.faults.hits("modal_reappears", self.name, "feed", offset)
            else None,
        }
        return Response(200, "application/json", json.dumps(body, ensure_ascii=False).encode())

    def _detail(self, offer: ShopOffer, modal: bool) -> str:
        price = self.price_text(offer)
        price_html = f'<p class="price">{esc(price)}</p>' if price else ""
        stock = "구매 가능" if offer.in_stock else "일시품절"
        return f"""<!doctype html>
<html lang="ko"><head><meta charset="utf-8"><title>{esc(offer.title)} | Seoul Closet</title>
{json_ld_script(self.product_data(offer))}</head><body>
{_MODAL if modal else ""}
<nav class="crumbs">{esc(offer.category_name)}</nav>
<h1 class="name">{esc(offer.title)}</h1>
<img class="hero" src="{self.photo_path(offer.sku)}" alt="{esc(offer.title)}">
{price_html}
<p class="stock{"" if offer.in_stock else " soldout"}">{stock}</p>
<a class="back" href="/">목록으로</a>
</body></html>"""
