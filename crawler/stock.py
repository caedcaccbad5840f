"""Reading a shop's stock text ("In stock", "Sold out", "품절", "Only 3 left", a schema.org
availability URL) as in stock, out of stock, or unknown."""

from __future__ import annotations

import re

# out-of-stock wording first: "not available" must not read as "available"
_OUT = re.compile(
    r"sold[\s-]*out|out[\s-]*of[\s-]*stock|outofstock|soldout|discontinued|unavailable|"
    r"not\s+available|no\s+longer\s+available|currently\s+unavailable|\b0\s+(left|in\s+stock)|"
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
    if _OUT.search(text):
        return False
    if _IN.search(text):
        return True
    return None
