"""Turning shop price text into integer minor units of an ISO 4217 currency.

price-parser finds the number and the currency sign; our rules add the currency's exponent,
shop locale hints, "from" prices and refusals. A price that cannot be read is ``None`` with
a reason, never 0.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

from price_parser import Price

from crawler.currencies import currency_of_sign, exponent

_FROM = re.compile(r"^\s*(from|ab|à partir de|starting at)\b|부터|~\s*$", re.IGNORECASE)
# a minus not preceded by a digit ("9,900-12,900" is a range, "₩-12,900" is negative)
_NEGATIVE = re.compile(r"(?<![\d\s])\s*[-−]\s*\d|^\s*[-−]")
_SEPARATED = re.compile(r"\d([.,])(\d+)\D*$")


@dataclass(frozen=True)
class ParsedPrice:
    amount: int | None  # minor units
    currency: str
    raw: str
    error: str | None = None
    is_from: bool = False  # "from 9,900원": the lowest of several variants


def minor_units(amount: Decimal, currency: str) -> int | None:
    """12900 KRW -> 12900; 12.5 USD -> 1250; None if it has more decimals than allowed."""
    scaled = amount.scaleb(exponent(currency))
    if scaled != scaled.to_integral_value():
        return None
    return int(scaled)


def _decimal_separator(raw: str, currency: str) -> str | None:
    """Settle "1.250": price-parser reads a separator before exactly three digits as thousands,
    which is wrong for 3-decimal currencies (1.250 KWD) and after a zero ($0.505)."""
    match = _SEPARATED.search(raw)
    if not match or len(match.group(2)) != 3:
        return None
    separator = match.group(1)
    other = "," if separator == "." else "."
    number = re.search(r"[\d.,]+", raw[: match.end(2)][::-1]).group(0)[::-1]
    if other in number:
        return separator  # "1,234.505": with both kinds, the last one is the decimal point
    if exponent(currency) == 3 or re.fullmatch(r"0" + re.escape(separator) + r"\d+", number):
        return separator
    return None


def parse_price(
    text: str | None, default_currency: str, decimal_separator: str | None = None
) -> ParsedPrice:
    """Parse a shop's price string. *default_currency* (the shop's) applies when the text
    shows no currency, and to a sign it shares with others ("$" on a CAD shop)."""
    raw = (text or "").strip()
    if not raw:
        return ParsedPrice(None, default_currency, raw, "no price text")
    parsed = Price.fromstring(raw, decimal_separator=decimal_separator)
    if parsed.amount is None:
        return ParsedPrice(None, default_currency, raw, "no number in price text")
    currency = default_currency
    if parsed.currency:
        currency = currency_of_sign(parsed.currency, default_currency)
        if currency is None:
            return ParsedPrice(None, default_currency, raw, f"unknown currency {parsed.currency!r}")
    if decimal_separator is None:
        guessed = _decimal_separator(raw, currency)
        if guessed:
            parsed = Price.fromstring(raw, decimal_separator=guessed)
    if _NEGATIVE.search(raw):
        return ParsedPrice(None, currency, raw, "negative price")
    amount = minor_units(parsed.amount, currency)
    if amount is None:
        return ParsedPrice(
            None, currency, raw, f"{parsed.amount} has more decimals than {currency} allows"
        )
    if amount == 0:
        return ParsedPrice(None, currency, raw, "zero price")
    return ParsedPrice(amount, currency, raw, None, bool(_FROM.search(raw)))
