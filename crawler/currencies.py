"""Currencies: which ISO 4217 codes exist and their minor-unit digits (CLDR, through Babel),
and which currency a sign printed next to a price stands for.

Many signs are shared ("$", "kr", "¥", "Rs"): on a shop whose currency uses the sign, the sign
means the shop's currency ("$" on a CAD shop is CAD); elsewhere it means the first currency
listed for it ("$" on a KRW shop is USD).
"""

from __future__ import annotations

from functools import cache

from babel.numbers import get_currency_precision, list_currencies

# fmt: off
_DOLLARS = (
    "USD", "CAD", "AUD", "NZD", "SGD", "HKD", "TWD", "MXN", "ARS", "CLP", "COP", "UYU", "DOP",
    "CUP", "BSD", "BBD", "BZD", "BMD", "BND", "FJD", "GYD", "JMD", "KYD", "LRD", "NAD", "SBD",
    "SRD", "TTD", "XCD",
)
# fmt: on
_RUPEES = ("INR", "PKR", "LKR", "NPR", "MUR", "SCR")
_FRANCS = ("CHF", "XOF", "XAF", "XPF")
# lower-cased sign -> the currencies that print it, the one meant on a shop using none first
_SIGNS: dict[str, tuple[str, ...]] = {
    "$": _DOLLARS,
    "us$": ("USD",),
    "u$s": ("USD",),
    "ca$": ("CAD",),
    "can$": ("CAD",),
    "c$": ("CAD", "NIO"),
    "a$": ("AUD",),
    "au$": ("AUD",),
    "nz$": ("NZD",),
    "hk$": ("HKD",),
    "s$": ("SGD",),
    "nt$": ("TWD",),
    "mx$": ("MXN",),
    "r$": ("BRL",),
    "€": ("EUR",),
    "£": ("GBP", "EGP", "GIP", "FKP", "SHP"),
    "₩": ("KRW",),
    "원": ("KRW",),
    "won": ("KRW",),
    "¥": ("JPY", "CNY"),
    "￥": ("JPY", "CNY"),
    "円": ("JPY",),
    "元": ("CNY",),
    "rmb": ("CNY",),
    "kr": ("SEK", "NOK", "DKK", "ISK"),
    "kr.": ("DKK", "ISK"),
    "zł": ("PLN",),
    "kč": ("CZK",),
    "ft": ("HUF",),
    "lei": ("RON",),
    "лв": ("BGN",),
    "лв.": ("BGN",),
    "₽": ("RUB",),
    "руб": ("RUB",),
    "руб.": ("RUB",),
    "₴": ("UAH",),
    "грн": ("UAH",),
    "₺": ("TRY",),
    "tl": ("TRY",),
    "₪": ("ILS",),
    "₹": ("INR",),
    "rs": _RUPEES,
    "rs.": _RUPEES,
    "₫": ("VND",),
    "฿": ("THB",),
    "₱": ("PHP",),
    "rp": ("IDR",),
    "rm": ("MYR",),
    "r": ("ZAR",),
    "fr": _FRANCS,
    "fr.": _FRANCS,
    "₦": ("NGN",),
    "kd": ("KWD",),
    "bd": ("BHD",),
}


@cache
def known_codes() -> frozenset[str]:
    return frozenset(list_currencies())


def is_currency(code: str) -> bool:
    return code in known_codes()


@cache
def exponent(code: str) -> int:
    """Digits after the decimal point: KRW 0, USD 2, KWD 3 (2 for a code Babel lacks)."""
    return get_currency_precision(code) if is_currency(code) else 2


def currency_of_sign(sign: str, shop_currency: str) -> str | None:
    """The currency *sign* (as printed: "$", "kr", "EUR") means on a shop that prices in
    *shop_currency*; None for a sign we cannot place."""
    sign = sign.strip()
    code = sign.upper()
    if is_currency(code):
        return code
    currencies = _SIGNS.get(sign.lower())
    if not currencies:
        return None
    return shop_currency if shop_currency in currencies else currencies[0]
