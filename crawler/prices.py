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

_FROM = re.compile(
    r"^\s*(from|ab|à partir de|starting (at|from)|price from|as low as|desde|dès)\b|"
    r"부터|최저|~\s*$",
    re.IGNORECASE,
)
# a range of prices ("9,900원 - 12,900원", "$9.99 – $19.99"): its low end is a "from" price
_RANGE = re.compile(r"\d\D{0,4}?\s*[-–~]\s*\D{0,4}?\d")
# a minus before the first digit ("₩-12,900", "-5 USD"); one after a number is a range
# ("9,900원 - 12,900원"); a percentage is a discount badge, not the price ("-10%")
_NEGATIVE = re.compile(r"^[^\d]*[-−]\s*(?:[^\w\s]{1,3}|[A-Z]{3})?\s*\d")
_PERCENT = re.compile(r"\(?[-−+]?\s*\d+(?:[.,]\d+)?\s*%\)?")
# digits grouped by a space must come in threes ("1 234,56"); "12 99" is a price whose
# cents were a separate element (<sup>99</sup>): which number it is cannot be told
_ODD_SPACE_GROUP = re.compile(r"\d[ \u00a0\u202f]+(\d{1,2}|\d{4,})(?!\d)")
_SEPARATED = re.compile(r"\d([.,])(\d+)\D*$")
# digits and signs other scripts write, as ASCII: price-parser reads "١٢٫٩٩" as 12 and
# "１，２００円" as 1. Arabic-Indic and Persian digits, the Arabic decimal, thousands and
# percent signs, and the full-width forms of ASCII (U+FF01-FF5E) and of ¥ £ ₩.
_ASCII = str.maketrans(
    {
        **{chr(0x0660 + digit): str(digit) for digit in range(10)},
        **{chr(0x06F0 + digit): str(digit) for digit in range(10)},
        **{chr(code): chr(code - 0xFEE0) for code in range(0xFF01, 0xFF5F)},
        "\u066b": ".",
        "\u066c": ",",
        "\u066a": "%",
        "\uffe1": "£",
        "\uffe5": "¥",
        "\uffe6": "₩",
    }
)
_LARGEST_STORABLE = 2**63 - 1  # SQLite's integers are signed 64-bit


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
    ascii_text = raw.translate(_ASCII)
    number_text = _PERCENT.sub(" ", ascii_text).strip()
    if _ODD_SPACE_GROUP.search(number_text):
        return ParsedPrice(None, default_currency, raw, "digits grouped ambiguously")
    parsed = Price.fromstring(number_text, decimal_separator=decimal_separator)
    if parsed.amount is None:
        return ParsedPrice(None, default_currency, raw, "no number in price text")
    currency = default_currency
    if parsed.currency:
        currency = currency_of_sign(parsed.currency, default_currency)
        if currency is None:
            return ParsedPrice(None, default_currency, raw, f"unknown currency {parsed.currency!r}")
    if decimal_separator is None:
        guessed = _decimal_separator(number_text, currency)
        if guessed:
            parsed = Price.fromstring(number_text, decimal_separator=guessed)
    if _NEGATIVE.search(number_text):
        return ParsedPrice(None, currency, raw, "negative price")
    amount = minor_units(parsed.amount, currency)
    if amount is None:
        return ParsedPrice(
            None, currency, raw, f"{parsed.amount} has more decimals than {currency} allows"
        )
    if amount > _LARGEST_STORABLE:
        return ParsedPrice(None, currency, raw, "amount too large")
    if amount == 0:
        return ParsedPrice(None, currency, raw, "zero price")
    is_from = bool(_FROM.search(ascii_text) or _RANGE.search(number_text))
    return ParsedPrice(amount, currency, raw, None, is_from)
