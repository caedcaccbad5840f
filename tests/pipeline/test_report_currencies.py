"""Offers in different currencies: grouped on photo and title (their prices say nothing about
each other without exchange rates), each price shown in its own currency, and the cheapest
shop and saving worked out only among offers in one currency."""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline.cli import cli
from pipeline.report import ComparisonRow, ShopPrice
from tests.pipeline.report_fixture import Listing, build_store, crawl_once


def invoke(home: Path, *args: str, columns: int = 160):
    return CliRunner(env={"COLUMNS": str(columns)}).invoke(cli, ["--home", str(home), *args])


def report_json(home: Path, *args: str) -> list[dict]:
    result = invoke(home, "report", "--format", "json", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


# By hand, on day 2 (KRW in won, USD in cents):
#   tee:      classic 12,900 KRW, spa 13,500 KRW, usshop 9.90 USD (was 10.00): two KRW offers
#             against one USD, so compared in KRW: cheapest classic, saving 600 won; usshop's
#             990 cents is not the cheapest, and 12.9x the dollar figure does not stop the match
#   bag:      classic 30,000 KRW, spa 30,100 KRW: cheapest classic, saving 100 won
#   boots:    usshop 89.00 USD (was 94.00), usmall 99.00 USD: cheapest usshop, saving 10.00 USD
#   sneakers: classic 9,900 KRW, usshop 89.00 USD (the review's case): one offer each, so
#             nothing is compared: no cheapest shop, no saving
MIXED = (
    Listing("classic", "c-1", "Slim Cotton Tee Black M", (12900, 12900), 0, "tshirt"),
    Listing("spa", "s-1", "[SALE] Black Cotton T-Shirt", (13500, 13500), 0, "tshirt"),
    Listing("usshop", "u-1", "Slim Cotton Tee Black", (1000, 990), 0, "tshirt", currency="USD"),
    Listing("classic", "c-2", "Canvas Tote Bag Ivory", (30000, 30000), 2, "bag"),
    Listing("spa", "s-2", "Ivory Canvas Tote Bag", (30100, 30100), 2, "bag"),
    Listing(
        "usshop", "u-3", "Brown Leather Ankle Boots", (9400, 8900), 1, "ankle_boot", currency="USD"
    ),
    Listing(
        "usmall", "v-3", "Leather Ankle Boots Brown", (9900, 9900), 1, "ankle_boot", currency="USD"
    ),
    Listing("classic", "c-4", "Arcadia Suede Khaki Sneakers", (9900, 9900), 3, "sneaker"),
    Listing(
        "usshop", "u-4", "Arcadia Suede Khaki Sneakers", (8900, 8900), 3, "sneaker", currency="USD"
    ),
)
TEE, BAG, BOOTS, SNEAKERS = (
    "Slim Cotton Tee Black M",
    "Canvas Tote Bag Ivory",
    "Leather Ankle Boots Brown",
    "Arcadia Suede Khaki Sneakers",
)


@pytest.fixture
def mixed(tmp_path):
    ids = build_store(tmp_path / "pricelens.db", MIXED)
    result = invoke(tmp_path, "match")
    assert result.exit_code == 0, result.output
    return tmp_path, ids


def titles(rows: list[dict]) -> list[str]:
    return list(dict.fromkeys(r["title"] for r in rows))


def test_offers_in_other_currencies_are_grouped_and_each_keeps_its_currency(mixed):
    path, ids = mixed
    rows = report_json(path, "--min-shops", "2")
    by_shop = {(r["title"], r["shop"]): r for r in rows}
    assert set(titles(rows)) == {TEE, BAG, BOOTS, SNEAKERS}
    assert len({r["group_id"] for r in rows if r["title"] == TEE}) == 1
    assert {r["shop"] for r in rows if r["title"] == TEE} == {"classic", "spa", "usshop"}
    usd = by_shop[TEE, "usshop"]
    assert (usd["price"], usd["previous_price"], usd["change"]) == (990, 1000, -10)
    assert (usd["currency"], usd["compared"], usd["cheapest"]) == ("USD", False, False)
    assert usd["offer_id"] == ids["u-1"]
    for title, shop, currency, compared, cheapest in [
        (TEE, "classic", "KRW", True, True),
        (TEE, "spa", "KRW", True, False),
        (BAG, "classic", "KRW", True, True),
        (BOOTS, "usshop", "USD", True, True),
        (BOOTS, "usmall", "USD", True, False),
        (SNEAKERS, "classic", "KRW", False, False),
        (SNEAKERS, "usshop", "USD", False, False),
    ]:
        row = by_shop[title, shop]
        assert (row["currency"], row["compared"], row["cheapest"]) == (
            currency,
            compared,
            cheapest,
        ), row
    savings = {r["title"]: (r["cheapest_shop"], r["savings"]) for r in rows}
    assert savings == {
        TEE: ("classic", 600),  # won: 13,500 - 12,900; not 12,900 - 990
        BAG: ("classic", 100),
        BOOTS: ("usshop", 1000),  # cents: 99.00 - 89.00 USD
        SNEAKERS: (None, 0),  # 9,900 won against 89.00 dollars: not compared
    }


def test_csv_gives_each_row_its_own_currency(mixed):
    path, _ = mixed
    result = invoke(path, "report", "--format", "csv")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.output)))
    currency = {(r["title"], r["shop"]): r["currency"] for r in rows}
    assert currency[TEE, "usshop"] == "USD" and currency[TEE, "classic"] == "KRW"
    assert currency[SNEAKERS, "usshop"] == "USD" and currency[SNEAKERS, "classic"] == "KRW"
    assert {r["compared"] for r in rows if r["title"] == SNEAKERS} == {"false"}


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        # money sorts order rows within a currency, the currency of most rows (KRW) first
        ([], [TEE, BAG, BOOTS, SNEAKERS]),
        (["--sort", "price"], [TEE, BAG, BOOTS, SNEAKERS]),
        (["--sort", "savings-pct"], [BOOTS, TEE, BAG, SNEAKERS]),  # 10.1%, 4.4%, 0.3%, 0
        # in each row's own units: 600 won, 100 won, 10.00 dollars
        (["--min-savings", "500"], [TEE]),
        (["--min-savings", "5"], [TEE, BAG, BOOTS]),
        (["--min-savings", "10"], [TEE, BAG, BOOTS]),
        (["--min-savings", "10.01"], [TEE, BAG]),
        (["--min-savings", "0"], [TEE, BAG, BOOTS, SNEAKERS]),
    ],
)
def test_savings_filter_and_sorts_never_mix_currencies(mixed, args, expected):
    assert titles(report_json(mixed[0], *args)) == expected


def test_a_drop_in_a_price_not_compared_does_not_count():
    row = ComparisonRow(1, "Tee", "tshirt")
    row.prices["classic"] = ShopPrice(12900, 12900, True, "http://c.test/", currency="KRW")
    row.prices["spa"] = ShopPrice(13500, 13500, True, "http://s.test/", currency="KRW")
    row.prices["usshop"] = ShopPrice(990, 5000, True, "http://u.test/", currency="USD")
    assert row.currency == "KRW" and row.biggest_drop == 0 and row.cheapest == "classic"
    row.prices["spa"] = ShopPrice(13500, 14000, True, "http://s.test/", currency="KRW")
    assert row.biggest_drop == -500


def test_table_shows_codes_and_marks_prices_not_compared(mixed):
    result = invoke(mixed[0], "report")
    assert result.exit_code == 0, result.output
    text = result.output
    lines = {line.split()[1]: line for line in text.splitlines() if re.match(r"\s*\d+ ", line)}
    tee = next(line for key, line in lines.items() if key == "Slim")
    assert "12,900 KRW" in tee and "13,500 KRW" in tee and "9.90 USD" in tee
    assert tee.split()[-3:] == ["classic", "600", "KRW"]
    boots = next(line for key, line in lines.items() if key == "Leather")
    assert "89.00 USD" in boots and boots.split()[-3:] == ["usshop", "10.00", "USD"]
    sneakers = next(line for key, line in lines.items() if key == "Arcadia")
    assert "9,900 KRW" in sneakers and "89.00 USD" in sneakers
    assert sneakers.split()[-2:] == ["–", "–"]  # no cheapest shop, no saving
    assert text.count("not compared") == 3  # the tee's dollars, both sneakers
    assert "▼0.10" in text  # 10.00 -> 9.90 USD, in cents' own digits


def test_one_currency_shows_no_codes(tmp_path):
    build_store(tmp_path / "pricelens.db")
    assert invoke(tmp_path, "match").exit_code == 0
    text = invoke(tmp_path, "report").output
    assert "KRW" not in text and "not compared" not in text and "11,900" in text


def test_html_formats_each_price_in_its_currency_and_charts_one_currency(mixed):
    path, _ = mixed
    result = invoke(path, "report", "--format", "html")
    assert result.exit_code == 0, result.output
    page = result.output
    assert "Prices are in several currencies" in page
    assert "9.90 USD" in page and "12,900 KRW" in page and "10.00 USD" in page
    assert page.count(">not compared<") == 3
    drops = page.split("<ol>", 1)[1].split("</ol>", 1)[0]
    assert "94.00 USD" in drops and "89.00 USD" in drops and "10.00 USD" in drops
    # one line per compared shop: tee 2 (not the dollars), bag 2, boots 2, sneakers none
    assert page.count("<polyline") == 6 and page.count("<svg") == 3


def test_a_shop_that_changed_currency_shows_no_change_across_it(mixed):
    path, _ = mixed
    moved = replace(MIXED[0], currency="USD", prices=(12900, 1100))  # classic's tee in dollars
    crawl_once(path / "pricelens.db", "classic", [moved, *MIXED[3:4], MIXED[7]], day=2)
    assert invoke(path, "match").exit_code == 0
    row = next(r for r in report_json(path) if r["shop"] == "classic" and r["title"] == TEE)
    assert (row["price"], row["currency"]) == (1100, "USD")
    assert row["previous_price"] is None and row["change"] is None  # not 12,900 won


def test_history_shows_each_price_in_its_currency_and_charts_one(mixed, tmp_path):
    path, ids = mixed
    moved = replace(MIXED[0], currency="USD", prices=(12900, 1100))  # classic's tee in dollars
    crawl_once(path / "pricelens.db", "classic", [moved, *MIXED[3:4], MIXED[7]], day=2)
    group = next(r["group_id"] for r in report_json(path) if r["title"] == TEE)
    result = invoke(path, "history", f"g{group}", "--chart", str(tmp_path / "tee.svg"))
    assert result.exit_code == 0, result.output
    lines = [[c.strip() for c in line.split("│")[1:-1]] for line in result.stdout.splitlines()]
    lines = [c for c in lines if len(c) == 6]  # observed, shop, offer, price, change, stock
    cells = {(c[1], c[3]) for c in lines}
    # usshop's cents are dollars, not won; the tee classic sells in dollars now shows no
    # change against its won price
    assert {("usshop", "10.00 USD"), ("usshop", "9.90 USD"), ("classic", "11.00 USD")} <= cells
    assert ("classic", "12,900 KRW") in cells and ("spa", "13,500 KRW") in cells
    classic_tee = [c for c in lines if c[1] == "classic" and c[2] == f"o{ids['c-1']}"]
    assert classic_tee[-1][3:5] == ["11.00 USD", ""]  # after 12,900 KRW: no change
    assert "the chart shows prices in KRW only" in result.stderr
    assert "not charted: classic, usshop" in result.stderr
    svg = (tmp_path / "tee.svg").read_text()
    assert "9.90" not in svg and "11.00" not in svg
    rows = json.loads(invoke(path, "history", f"g{group}", "--format", "json").stdout)
    assert [r["change"] for r in rows if r["shop"] == "usshop"] == [None, -10]
    assert [(r["price"], r["currency"], r["change"]) for r in rows if r["shop"] == "classic"][
        -1
    ] == (1100, "USD", None)
