"""Price text to integer minor units: never a float, never 0 for "unknown"."""

from __future__ import annotations

from decimal import Decimal

import pytest

from crawler.currencies import currency_of_sign, exponent, is_currency
from crawler.prices import ParsedPrice, minor_units, parse_price


@pytest.mark.parametrize(
    ("text", "default", "amount", "currency"),
    [
        ("12,900원", "KRW", 12900, "KRW"),
        ("₩12,900", "KRW", 12900, "KRW"),
        ("KRW 12900", "KRW", 12900, "KRW"),
        ("KRW 12900", "USD", 12900, "KRW"),
        ("12 900 원", "KRW", 12900, "KRW"),
        ("12900", "KRW", 12900, "KRW"),
        ("  12,900원  ", "KRW", 12900, "KRW"),
        ("1,290,000원", "KRW", 1290000, "KRW"),
        ("$1,234.50", "KRW", 123450, "USD"),
        ("US$ 12.50", "KRW", 1250, "USD"),
        ("12.99", "USD", 1299, "USD"),
        ("12,900", "USD", 1290000, "USD"),
        ("1.234,50 €", "KRW", 123450, "EUR"),
        ("1 234,50 €", "EUR", 123450, "EUR"),
        ("12,50", "EUR", 1250, "EUR"),
        ("£3.99", "KRW", 399, "GBP"),
        ("CHF 12.50", "KRW", 1250, "CHF"),
        ("¥1,200", "KRW", 1200, "JPY"),
    ],
)
def test_parses_amount_and_currency(text, default, amount, currency):
    parsed = parse_price(text, default)
    assert (parsed.amount, parsed.currency, parsed.error) == (amount, currency, None)
    assert parsed.raw == text.strip()
    assert parsed.is_from is False


@pytest.mark.parametrize(
    ("text", "amount"),
    [
        ("from 9,900원", 9900),
        ("From $5", 500),
        ("starting at $5", 500),
        ("ab 19,99 €", 1999),
        ("à partir de 19,99 €", 1999),
        ("9,900원부터", 9900),
        ("9,900원~", 9900),
        ("9,900원 ~ ", 9900),
    ],
)
def test_from_prices_are_flagged(text, amount):
    parsed = parse_price(text, "KRW")
    assert parsed.amount == amount
    assert parsed.is_from is True
    assert parsed.error is None


@pytest.mark.parametrize(
    ("text", "amount"),
    [("1.250 KD", 1250), ("KD 1.250", 1250), ("0.001 KWD", 1), ("1,234.567 KD", 1234567)],
)
def test_kuwaiti_dinar_with_a_decimal_point_hint(text, amount):
    parsed = parse_price(text, "KWD", decimal_separator=".")
    assert (parsed.amount, parsed.currency, parsed.error) == (amount, "KWD", None)


@pytest.mark.parametrize(
    ("text", "amount"),
    [("1.250 KD", 1250), ("0.001 KWD", 1), ("12.345 KWD", 12345), ("1,234.567 KD", 1234567)],
)
def test_kuwaiti_dinar_with_the_default_separator(text, amount):
    parsed = parse_price(text, "KWD")
    assert (parsed.amount, parsed.currency) == (amount, "KWD")


@pytest.mark.parametrize("text", ["$0.505", "$1,234.505"])
def test_three_decimals_in_dollars_are_refused(text):
    parsed = parse_price(text, "USD")
    assert parsed.amount is None
    assert "more decimals than USD" in (parsed.error or "")


@pytest.mark.parametrize(
    ("text", "separator", "amount"),
    [("1.234,50", ",", 123450), ("1,234.50", ".", 123450), ("12,50", ",", 1250)],
)
def test_decimal_separator_hint(text, separator, amount):
    assert parse_price(text, "EUR", decimal_separator=separator).amount == amount


@pytest.mark.parametrize(
    ("text", "default", "reason"),
    [
        ("", "KRW", "no price text"),
        ("   ", "KRW", "no price text"),
        (None, "KRW", "no price text"),
        ("call us", "KRW", "no number"),
        ("품절", "KRW", "no number"),
        ("Sold out", "USD", "no number"),
        ("0원", "KRW", "zero"),
        ("₩0", "KRW", "zero"),
        ("$0.00", "USD", "zero"),
        ("0", "EUR", "zero"),
        ("12.5원", "KRW", "more decimals than KRW"),
        ("₩12,900.5", "KRW", "more decimals than KRW"),
        ("1.5", "JPY", "more decimals than JPY"),
        ("$12.5055", "USD", "more decimals than USD"),
        ("-12,900원", "KRW", "negative"),
        ("-$5.00", "USD", "negative"),
        ("−5 €", "EUR", "negative"),
        ("USD -5", "USD", "negative"),
        ("Kz 500", "KRW", "unknown currency"),
    ],
)
def test_unreadable_price_is_none_with_a_reason(text, default, reason):
    parsed = parse_price(text, default)
    assert parsed.amount is None
    assert parsed.error is not None
    assert reason in parsed.error


@pytest.mark.parametrize(("text", "default"), [("₩-12,900", "KRW"), ("$-5.00", "USD")])
def test_minus_after_the_currency_sign_is_negative(text, default):
    parsed = parse_price(text, default)
    assert parsed.amount is None
    assert "negative" in (parsed.error or "")


@pytest.mark.parametrize("text", ["0원", "$0.00", "0", "₩0", "-12,900원", "call us", ""])
def test_a_failed_price_is_never_zero(text):
    assert parse_price(text, "KRW").amount != 0


@pytest.mark.parametrize("default", ["KRW", "USD", "KWD"])
def test_unreadable_price_keeps_the_default_currency_and_raw_text(default):
    parsed = parse_price("  call us  ", default)
    assert parsed == ParsedPrice(None, default, "call us", "no number in price text")


def test_amount_is_an_int_not_a_float():
    amount = parse_price("$1,234.50", "USD").amount
    assert type(amount) is int


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        ("12900", "KRW", 12900),
        ("12900.00", "KRW", 12900),
        ("12.5", "KRW", None),
        ("100", "JPY", 100),
        ("12.5", "USD", 1250),
        ("12.50", "USD", 1250),
        ("0.01", "USD", 1),
        ("12.505", "USD", None),
        ("1234.5", "EUR", 123450),
        ("1.25", "KWD", 1250),
        ("1.250", "KWD", 1250),
        ("0.001", "KWD", 1),
        ("1.2505", "KWD", None),
        ("7", "XYZ", 700),
        ("7.12", "XYZ", 712),
        ("7.123", "XYZ", None),
    ],
)
def test_minor_units(amount, currency, expected):
    assert minor_units(Decimal(amount), currency) == expected


@pytest.mark.parametrize(
    ("currency", "digits"),
    [
        ("KRW", 0),
        ("JPY", 0),
        ("VND", 0),
        ("USD", 2),
        ("EUR", 2),
        ("KWD", 3),
        ("BHD", 3),
        ("TND", 3),
    ],
)
def test_exponents_follow_iso_4217(currency, digits):
    assert exponent(currency) == digits
    assert minor_units(Decimal(1), currency) == 10**digits


@pytest.mark.parametrize(
    ("text", "shop_currency", "amount", "currency"),
    [
        # a sign several currencies print means the shop's own currency where it uses it
        ("$12.99", "CAD", 1299, "CAD"),
        ("$12.99", "KRW", 1299, "USD"),
        ("¥12.50", "CNY", 1250, "CNY"),
        ("¥1,250", "JPY", 1250, "JPY"),
        ("199 kr", "SEK", 19900, "SEK"),
        ("199 kr", "NOK", 19900, "NOK"),
        ("C$ 14.99", "CAD", 1499, "CAD"),
        ("A$12.99", "AUD", 1299, "AUD"),
        ("R$ 1.299,90", "BRL", 129990, "BRL"),
        ("12,99 zł", "PLN", 1299, "PLN"),
        ("Rs. 1,299", "INR", 129900, "INR"),
        ("12.900₫", "VND", 12900, "VND"),
        ("Fr. 12.50", "CHF", 1250, "CHF"),
        ("3.500 TND", "TND", 3500, "TND"),
        ("€5", "USD", 500, "EUR"),  # a sign of one currency only is that currency
    ],
)
def test_shared_and_local_currency_signs(text, shop_currency, amount, currency):
    parsed = parse_price(text, shop_currency)
    assert (parsed.amount, parsed.currency, parsed.error) == (amount, currency, None)


def test_currency_codes_come_from_iso_4217():
    assert is_currency("SEK") and is_currency("KRW")
    assert not is_currency("ABC") and not is_currency("krw")
    assert currency_of_sign("sek", "KRW") == "SEK"
    assert currency_of_sign("@@", "KRW") is None


@pytest.mark.parametrize(
    ("text", "default", "amount", "currency"),
    [
        ("١٢٫٩٩", "AED", 1299, "AED"),  # Arabic-Indic digits, Arabic decimal separator
        ("١٬٢٣٤٫٥٠ ر.س", "SAR", 123450, "SAR"),  # and thousands separator
        ("۱۲۵٫۵۰", "AED", 12550, "AED"),  # Persian digits
        ("١٢٬٩٠٠원 -١٠٪", "KRW", 12900, "KRW"),  # an Arabic percent sign: a discount badge
        ("１，２００円", "JPY", 1200, "JPY"),  # full-width digits and comma
        ("￥１，２００", "KRW", 1200, "JPY"),
        ("＄１２．５０", "USD", 1250, "USD"),
    ],
)
def test_digits_of_other_scripts_are_read_as_ascii(text, default, amount, currency):
    parsed = parse_price(text, default)
    assert (parsed.amount, parsed.currency, parsed.error) == (amount, currency, None)
    assert parsed.raw == text  # as the shop wrote it


@pytest.mark.parametrize(
    ("text", "default", "amount", "error"),
    [
        ("$99999999999999999999", "USD", None, "amount too large"),
        ("92233720368547758.08", "USD", None, "amount too large"),  # 2**63 cents
        ("9223372036854775808원", "KRW", None, "amount too large"),
        ("92233720368547758.07", "USD", 2**63 - 1, None),  # the largest SQLite integer
    ],
)
def test_an_amount_too_large_to_store_is_refused(text, default, amount, error):
    parsed = parse_price(text, default)
    assert (parsed.amount, parsed.error) == (amount, error)


def test_a_full_width_tilde_marks_a_from_price():
    parsed = parse_price("９，９００원～", "KRW")
    assert (parsed.amount, parsed.is_from) == (9900, True)
