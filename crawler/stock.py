"""Reading a shop's stock text ("In stock", "Sold out", "품절", "Only 3 left", a schema.org
availability URL) as in stock, out of stock, or unknown."""

from __future__ import annotations

import re

# "almost sold out" first: it contains the words for sold out
_ALMOST = re.compile(
    r"almost\s+(sold\s+out|gone)|low\s+stock|selling\s+fast|품절\s*임박|재고\s*[1-9]\d*\s*개",
    re.IGNORECASE,
)
# out-of-stock wording before in-stock: "not available" must not read as "available",
# nor "notify me when available" (the button a sold-out item shows)
_OUT = re.compile(
    r"sold[\s-]*out|out[\s-]*of[\s-]*stock|outofstock|soldout|discontinued|unavailable|"
    r"not\s+(available|in\s+stock)|no\s+longer\s+available|currently\s+unavailable|"
    r"\b0\s+(left|in\s+stock)|(notify|email|tell|alert)\s+me|back\s+in\s+stock\s+soon|"
    r"available\s+soon|coming\s+soon|nicht\s+(auf\s+lager|lieferbar)|no\s+disponible|"
    r"non\s+disponibile|niet\s+(op\s+voorraad|leverbaar)|ej\s+i\s+lager|在庫なし|无货|"
    r"품절|재고\s*없음|일시\s*품절|판매\s*종료|在庫切れ|売り切れ|缺货|售罄|ausverkauft|"
    r"nicht\s+verfügbar|épuisé|rupture\s+de\s+stock|agotado|esaurito|uitverkocht|slutsåld",
    re.IGNORECASE,
)
_IN = re.compile(
    r"in[\s-]*stock|instock|available|limitedavailability|instoreonly|onlineonly|preorder|"
    r"pre-order|\b[1-9]\d*\s+(left|in\s+stock|available)|only\s+\d+|add\s+to\s+(cart|bag)|"
    r"재고\s*있음|구매\s*가능|在庫あり|有货|auf\s+lager|lieferbar|en\s+stock|disponible|"
    r"disponibile|op\s+voorraad|i\s+lager",
    re.IGNORECASE,
)


def in_stock(text: str | None) -> bool | None:
    """True, False, or None when *text* is missing or says neither."""
    if not text or not text.strip():
        return None
    if _ALMOST.search(text):
        return True
    if _OUT.search(text):
        return False
    if _IN.search(text):
        return True
    return None
