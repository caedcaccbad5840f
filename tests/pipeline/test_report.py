"""`pricelens report` and `pricelens history` on a small fixture database whose figures were
worked out by hand (see report_fixture.py), plus the HTML report's escaping rules."""

from __future__ import annotations

import csv
import io
import json
import re
import sqlite3
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image as PILImage
from rich.console import Console

from db.store import Store
from pipeline.cli import cli
from pipeline.output import print_whole
from pipeline.report import (
    COLUMNS,
    ComparisonRow,
    ShopPrice,
    comparison_table,
    format_money,
    report_columns,
    wrap_title,
)
from pipeline.report_html import safe_url
from tests.pipeline.report_fixture import Listing, build_store

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")


def invoke(home: Path, *args: str):
    return CliRunner().invoke(cli, ["--home", str(home), *args])


@pytest.fixture
def home(tmp_path):
    ids = build_store(tmp_path / "pricelens.db")
    result = invoke(tmp_path, "match")
    assert result.exit_code == 0, result.output
    return tmp_path, ids


def report_json(home_path: Path, *args: str) -> list[dict]:
    result = invoke(home_path, "report", "--format", "json", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_an_empty_report_says_on_stderr_what_would_fill_it(tmp_path):
    result = invoke(tmp_path, "report")
    assert result.exit_code == 0, result.output
    assert f"no offers in {tmp_path / 'pricelens.db'} yet: run `pricelens crawl`" in (result.stderr)
    build_store(tmp_path / "pricelens.db")
    result = invoke(tmp_path, "report", "--format", "json")
    assert json.loads(result.stdout) == []  # the data stays clean
    assert "not grouped into products yet: run `pricelens match`" in result.stderr
    assert invoke(tmp_path, "match").exit_code == 0
    result = invoke(tmp_path, "report", "--min-shops", "4", "--category", "bag")
    assert (
        "no product is sold by at least 4 shops and matches category bag; --min-shops 1 shows"
        in result.stderr
    )
    assert "no product" not in invoke(tmp_path, "report").stderr


def test_report_figures_equal_the_ones_worked_out_by_hand(home):
    path, ids = home
    rows = report_json(path)
    by_shop = {(r["title"], r["shop"]): r for r in rows}
    tee, boots = "Slim Cotton Tee Black M", "Leather Ankle Boots Brown"
    assert [r["title"] for r in rows] == [boots, boots, tee, tee, tee]  # biggest saving first
    expected = {
        (tee, "classic"): (11900, 12900, -1000, True, True),
        (tee, "menu"): (11000, 12000, -1000, False, False),  # cheaper, but sold out
        (tee, "spa"): (13500, 13500, 0, True, False),
        (boots, "classic"): (59000, 59000, 0, True, False),
        (boots, "spa"): (52000, 55000, -3000, True, True),
    }
    for key, (price, previous, change, in_stock, cheapest) in expected.items():
        row = by_shop[key]
        assert (row["price"], row["previous_price"], row["change"]) == (price, previous, change)
        assert (row["in_stock"], row["cheapest"]) == (in_stock, cheapest)
        assert row["currency"] == "KRW"
    assert {r["savings"] for r in rows if r["title"] == tee} == {1600}
    assert {r["cheapest_shop"] for r in rows if r["title"] == tee} == {"classic"}
    assert {r["savings"] for r in rows if r["title"] == boots} == {7000}
    assert by_shop[(tee, "menu")]["offer_id"] == ids["m-1"]
    assert by_shop[(tee, "menu")]["offer_title"] == "블랙 코튼 티셔츠"
    assert len({r["group_id"] for r in rows if r["title"] == tee}) == 1


def test_csv_and_json_have_the_documented_columns(home):
    path, _ = home
    result = invoke(path, "report", "--format", "csv")
    assert result.exit_code == 0, result.output
    table = list(csv.reader(io.StringIO(result.output)))
    assert table[0] == report_columns() == list(COLUMNS)
    assert len(table) == 6 and all(len(line) == len(COLUMNS) for line in table)
    assert set(report_json(path)[0]) == set(COLUMNS)
    for column in COLUMNS:
        assert f"| `{column}` |" in README, f"CSV/JSON column {column} is not in README.md"


@pytest.mark.parametrize(
    ("args", "titles"),
    [
        (["--category", "tshirt"], ["Slim Cotton Tee Black M"]),
        (["--category", "ankle_boot", "--category", "tshirt"], ["Leather", "Slim"]),
        (["--search", "BOOTS brown"], ["Leather Ankle Boots Brown"]),
        (["--search", "코튼"], ["Slim Cotton Tee Black M"]),  # any shop's title counts
        (["--shop", "menu"], ["Slim Cotton Tee Black M"]),
        (["--min-savings", "2000"], ["Leather Ankle Boots Brown"]),
        (["--min-savings", "1600"], ["Leather", "Slim"]),
        (["--sort", "price"], ["Slim", "Leather"]),
        (["--sort", "savings-pct"], ["Leather", "Slim"]),  # 7000/59000 > 1600/13500
        (["--sort", "drop"], ["Leather", "Slim"]),  # -3000 before -1000
        (["--sort", "title"], ["Leather", "Slim"]),
        (["--sort", "shops"], ["Slim", "Leather"]),
        (["--min-shops", "1", "--category", "bag"], ["Canvas Tote Bag Ivory"]),
        (["--limit", "1"], ["Leather"]),
    ],
)
def test_filters_and_sorting(home, args, titles):
    path, _ = home
    rows = report_json(path, *args)
    got = list(dict.fromkeys(r["title"] for r in rows))
    assert len(got) == len(titles) and all(
        g.startswith(t) for g, t in zip(got, titles, strict=True)
    ), got


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--category", "shoes"], "unknown category 'shoes'"),
        (["--shop", "nowhere"], "unknown shop 'nowhere'"),
        (["--min-savings", "lots"], "'lots' is not an amount"),
    ],
)
def test_bad_filters_name_the_input(home, args, message):
    result = invoke(home[0], "report", *args)
    assert result.exit_code != 0 and message in result.output


def test_table_and_out_file(home):
    path, _ = home
    out = path / "report.txt"
    result = invoke(path, "report", "--out", str(out))
    assert result.exit_code == 0, result.output
    text = out.read_text(encoding="utf-8")
    assert "Slim Cotton" in text and "▼3,000" in text and "sold out" in text
    assert max(len(line) for line in text.splitlines()) <= 100
    csv_out = path / "r.csv"
    assert invoke(path, "report", "--format", "csv", "--out", str(csv_out)).exit_code == 0
    header = csv_out.read_text(encoding="utf-8").splitlines()[0]
    assert header == ",".join(f'"{c}"' for c in COLUMNS)


def header_shops(text: str) -> list[str]:
    header = next(line for line in text.splitlines() if "Product" in line).split()
    return header[header.index("Product") + 1 : header.index("Cheapest")]


def test_only_shops_with_a_price_in_the_rows_shown_get_a_column(home):
    path, _ = home
    with Store(path / "pricelens.db") as store:  # a shop whose first crawl failed at once
        run = store.start_crawl_run("newshop", "http://127.0.0.1:9/")
        store.finish_crawl_run(run, "failed", "newshop: connection refused")
    wide = {"COLUMNS": "100"}
    shown = CliRunner(env=wide).invoke(cli, ["--home", str(path), "report"])
    assert shown.exit_code == 0, shown.output
    assert header_shops(shown.output) == ["classic", "menu", "spa"]
    for args in (["--category", "ankle_boot"], ["--limit", "1"]):  # the boots: no menu offer
        shown = CliRunner(env=wide).invoke(cli, ["--home", str(path), "report", *args])
        assert shown.exit_code == 0, shown.output
        assert header_shops(shown.output) == ["classic", "spa"]
    page = path / "r.html"
    args = ["report", "--format", "html", "--out", str(page), "--category", "ankle_boot"]
    assert invoke(path, *args).exit_code == 0
    html = page.read_text(encoding="utf-8")
    assert re.findall(r'<th class="num">(\w+)</th>', html) == ["classic", "spa", "Save"]


def test_a_shop_whose_offers_have_no_price_gets_no_column():
    row = ComparisonRow(1, "Tee", "tshirt")
    row.prices["classic"] = ShopPrice(12900, None, True, "http://c.test/", currency="KRW")
    row.prices["spa"] = ShopPrice(13500, None, True, "http://s.test/", currency="KRW")
    row.prices["menu"] = ShopPrice(None, None, None, "http://m.test/")  # price never readable
    console = Console(width=100, record=True, file=io.StringIO())
    console.print(comparison_table([row], ["classic", "menu", "spa"], None))
    assert header_shops(console.export_text()) == ["classic", "spa"]


def test_terminal_table_fits_100_columns_with_five_shops():
    shops = ["classic", "spa", "scroll", "menu", "outlet"]
    row = ComparisonRow(1, "Very Long Product Title " * 4, "ankle_boot")
    for n, shop in enumerate(shops):
        row.prices[shop] = ShopPrice(
            1_234_500 + n * 10_000, 1_334_500, n != 2, "http://x.test/", currency="KRW"
        )
    console = Console(width=100, record=True, file=io.StringIO())
    console.print(comparison_table([row] * 3, shops, None))
    text = console.export_text()
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 100
    header = next(line for line in lines if "Product" in line)
    assert all(shop in header for shop in shops) and "Save" in header and "…" not in header
    assert "ankle_boot" in text
    assert "1,234,500" in text


HOSTILE = (
    Listing("classic", "c-1", "<script>alert(1)</script>", (12900, 11900), 0, "tshirt"),
    Listing(
        "spa",
        "s-1",
        "{{7*7}} <img src=x onerror=alert(2)>",
        (13500, 13000),
        0,
        "tshirt",
        url="javascript:alert(3)",
        image_url="javascript:alert(4)",
    ),
    Listing("classic", "c-2", 'Boots" onmouseover="alert(5)', (59000, 59000), 1, "ankle_boot"),
    Listing("spa", "s-2", "Boots ' & <b>", (55000, 52000), 1, "ankle_boot", url="data:text/html,x"),
)


def test_html_report_is_self_contained_and_scraped_text_is_inert(tmp_path):
    build_store(tmp_path / "pricelens.db", HOSTILE)
    assert invoke(tmp_path, "match").exit_code == 0
    out = tmp_path / "report.html"
    result = invoke(tmp_path, "report", "--format", "html", "--min-shops", "1", "--out", str(out))
    assert result.exit_code == 0, result.output
    page = out.read_text(encoding="utf-8")
    lowered = page.lower()
    assert "<script" not in lowered and "javascript:" not in lowered
    tags = re.findall(r"<img [^>]*>", page)
    assert tags and all(t.startswith('<img src="data:image/png;base64,') for t in tags)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "{{7*7}} &lt;img src=x onerror=alert(2)&gt;" in page
    assert ">49<" not in page  # the template never evaluates scraped text
    assert "Boots&#34; onmouseover=&#34;alert(5)" in page
    assert "data:text/html" not in page
    links = re.findall(r'href="([^"]*)"', page)
    assert links and all(link.startswith(("http://", "https://")) for link in links)
    sources = re.findall(r'src="([^"]*)"', page)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)
    assert 'http-equiv="Content-Security-Policy"' in page
    products = page.count('<td class="thumb">')
    assert products >= 3 and page.count("<svg") == products  # a price-history chart each
    assert "Biggest price drops" in page and page.index("Biggest price drops") < page.index(
        "<tbody"
    )


def test_html_drops_list_biggest_first(home):
    path, _ = home
    result = invoke(path, "report", "--format", "html")
    assert result.exit_code == 0, result.output
    drops = result.output.split("<ol>", 1)[1].split("</ol>", 1)[0]
    percents = re.findall(r"<strong>(-\d+)%</strong>", drops)
    assert percents == ["-8", "-8", "-5"]  # menu 12,000→11,000, classic 12,900→11,900, spa boots


@pytest.mark.parametrize(
    ("url", "safe"),
    [
        ("http://shop.test/p/1", True),
        ("HTTPS://shop.test/p/1?a=1&b=2", True),
        ("javascript:alert(1)", False),
        ("JaVaScRiPt:alert(1)", False),
        (" javascript:alert(1)", False),
        ("java\tscript:alert(1)", False),
        ("data:text/html,hi", False),
        ("//shop.test/p/1", False),
        ("/p/1", False),
        ("http:///nohost", False),
        (None, False),
    ],
)
def test_safe_url_lets_only_absolute_http_urls_through(url, safe):
    assert (safe_url(url) is not None) is safe and safe_url(url) in (url, None)


def test_history_of_a_group_and_an_offer_with_charts(home):
    path, ids = home
    rows = report_json(path)
    tee = next(r["group_id"] for r in rows if r["shop"] == "menu")
    result = invoke(path, "history", f"g{tee}", "--format", "json")
    assert result.exit_code == 0, result.output
    history = json.loads(result.output)
    assert [(h["shop"], h["price"], h["change"]) for h in history] == [
        ("classic", 12900, None),
        ("menu", 12000, None),
        ("spa", 13500, None),
        ("classic", 11900, -1000),
        ("menu", 11000, -1000),
        ("spa", 13500, 0),
    ]
    svg = path / "tee.svg"
    result = invoke(path, "history", str(tee), "--chart", str(svg))
    assert result.exit_code == 0, result.output
    assert "12,900" in result.output and "▼1,000" in result.output and "sold out" in result.output
    root = ET.fromstring(svg.read_text(encoding="utf-8"))
    assert len(root.findall("{http://www.w3.org/2000/svg}polyline")) == 3
    png = path / "boots.png"
    result = invoke(path, "history", f"o{ids['s-2']}", "--chart", str(png))
    assert result.exit_code == 0, result.output
    assert (
        "55,000" in result.output and "52,000" in result.output and "classic" not in result.output
    )
    with PILImage.open(png) as image:
        assert image.format == "PNG" and image.size == (640, 240)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["g999"], "product group g999 does not exist"),
        (["o999"], "offer o999 does not exist"),
        (["x1"], "'x1' is not a group (g12) or offer (o34) id"),
        (["g1", "--chart", "c.gif"], "chart file must end in .png or .svg"),
    ],
)
def test_history_errors_name_the_input(home, args, message):
    result = invoke(home[0], "history", *args)
    assert result.exit_code != 0 and message in result.output, result.output


# Four shops with six-digit prices, and changes and "sold out" under them, as in the demo mall:
# on 80 columns (a terminal, or any pipe) the Save column used to lose its last digit.
COATS = tuple(
    Listing(shop, f"{shop[0]}-{n}", title, prices, n, label, stock)
    for n, (title, label, offers) in enumerate(
        [
            (
                "Arcadia Wool Blend Long Coat Charcoal",
                "coat",
                [
                    ("classic", (270500, 260500), (True, True)),
                    ("menu", (266300, 266300), (False, False)),
                    ("scroll", (270700, 270700), (True, True)),
                    ("spa", (318900, 318900), (False, False)),
                ],
            ),
            (
                "DAON Coat - beige/canvas Double Breasted",
                "coat",
                [
                    ("menu", (266300, 266300), (True, True)),
                    ("scroll", (299000, 301500), (True, False)),
                    ("spa", (313600, 323600), (True, True)),
                ],
            ),
            (
                "Solace Cashmere Overcoat Camel",
                "coat",
                [
                    ("classic", (1250000, 1250000), (True, True)),
                    ("menu", (1310000, 1298000), (True, True)),
                    ("scroll", (1298000, 1298000), (True, False)),
                    ("spa", (1390000, 1390000), (True, True)),
                ],
            ),
            (
                "Mirae Linen Black Pullover Knit",
                "pullover",
                [
                    ("classic", (235400, 235400), (True, True)),
                    ("menu", (291400, 291400), (True, True)),
                    ("scroll", (262800, 252800), (True, True)),
                    ("spa", (265100, 265100), (True, True)),
                ],
            ),
        ]
    )
    for shop, prices, stock in offers
)


def whole(figure: str, text: str) -> bool:
    """*figure* appears in *text* with no digit or separator glued to either side."""
    return re.search(rf"(?<![\d,.]){re.escape(figure)}(?![\d,.])", text) is not None


def test_money_is_never_cut_on_80_columns(tmp_path):
    build_store(tmp_path / "pricelens.db", COATS)
    assert invoke(tmp_path, "match").exit_code == 0
    rows = list(csv.DictReader(io.StringIO(invoke(tmp_path, "report", "--format", "csv").output)))
    savings = {int(r["savings"]) for r in rows}
    prices = {int(r["price"]) for r in rows}
    assert len({r["group_id"] for r in rows}) == 4 and min(savings) >= 10_000
    result = CliRunner(env={"COLUMNS": "80"}).invoke(cli, ["--home", str(tmp_path), "report"])
    assert result.exit_code == 0, result.output
    text = result.output
    assert max(len(line) for line in text.splitlines()) <= 80
    for amount in savings | prices:
        assert whole(f"{amount:,}", text), f"{amount:,} is cut in\n{text}"
    header = next(line for line in text.splitlines() if "Product" in line)
    assert header.split()[-2:] == ["Cheapest", "Save"]
    assert all(shop in header for shop in ("classic", "menu", "scroll", "spa"))


def test_a_table_too_wide_for_the_terminal_runs_past_it_rather_than_cut_a_price():
    shops = ["classic", "spa", "scroll", "menu", "northwind-outlet"]
    row = ComparisonRow(1, "Long Product Title " * 3, "coat")
    for n, shop in enumerate(shops):
        row.prices[shop] = ShopPrice(
            1_234_500 + n * 10_000, 1_334_500, n != 2, "http://x.test/", currency="KRW"
        )
    console = Console(width=60, record=True, file=io.StringIO())
    print_whole(console, comparison_table([row], shops, None))
    text = console.export_text()
    assert console.width == 60  # only that table was printed wider
    for n in range(len(shops)):
        assert whole(f"{1_234_500 + n * 10_000:,}", text)
    assert whole(f"{row.savings:,}", text) and "northwind-outlet" in text


def test_titles_break_between_words_or_after_a_slash_never_inside_a_word():
    shops = ["classic", "spa", "scroll", "menu", "outlet"]  # the Product column: 10 wide
    title = "Relaxed beige/canvas Tote-Bag with long straps"
    row = ComparisonRow(1, title, "bag")
    for n, shop in enumerate(shops):
        row.prices[shop] = ShopPrice(1_234_500 + n, 1_334_500, True, "http://x.test/")
    console = Console(width=80, record=True, file=io.StringIO())
    print_whole(console, comparison_table([row], shops, None))
    text = console.export_text()
    assert title not in text  # the Product column is narrower than the title
    for word in re.split(r"[\s/-]+", title):
        assert re.search(rf"(?<!\w){re.escape(word)}(?!\w)", text), text


@pytest.mark.parametrize(
    ("title", "width", "lines"),
    [
        ("Relaxed beige/canvas tote", 12, ["Relaxed", "beige/canvas", "tote"]),
        ("Relaxed beige/canvas tote", 10, ["Relaxed", "beige/", "canvas", "tote"]),
        ("Slim-Fit T-Shirt", 6, ["Slim-", "Fit T-", "Shirt"]),
        ("Unbreakablewordhere x", 8, ["Unbreakablewordhere", "x"]),  # the table folds it
        ("한빛 클래식 코트", 6, ["한빛", "클래식", "코트"]),  # two cells a letter
        ("", 5, [""]),
    ],
)
def test_wrap_title(title, width, lines):
    assert wrap_title(title, width).split("\n") == lines


@pytest.mark.parametrize(
    ("amount", "currency", "shown"),
    [
        (12900, "KRW", "12,900"),
        (1234, "JPY", "1,234"),
        (450, "USD", "4.50"),
        (123456789, "EUR", "1,234,567.89"),
        (1250, "KWD", "1.250"),
        (750, "BHD", "0.750"),
        (2500, "OMR", "2.500"),
        (1005, "JOD", "1.005"),
        (1234, None, "1,234"),
    ],
)
def test_money_uses_the_currencys_minor_unit(amount, currency, shown):
    assert format_money(amount, currency) == shown


KUWAIT = (
    Listing("classic", "c-1", "Slim Cotton Tee Black M", (1250, 1250), 0, "tshirt", currency="KWD"),
    Listing("spa", "s-1", "Black Cotton T-Shirt Slim", (2000, 2000), 0, "tshirt", currency="KWD"),
)


def test_three_decimal_currencies_show_and_filter_in_their_own_units(tmp_path):
    build_store(tmp_path / "pricelens.db", KUWAIT)
    assert invoke(tmp_path, "match").exit_code == 0
    assert {r["savings"] for r in report_json(tmp_path)} == {750}  # fils, as stored
    table = invoke(tmp_path, "report").output
    assert whole("1.250", table) and whole("2.000", table) and whole("0.750", table)
    assert report_json(tmp_path, "--min-savings", "1") == []  # 0.750 KWD is less than 1
    assert len(report_json(tmp_path, "--min-savings", "0.75")) == 2
    history = invoke(tmp_path, "history", str(report_json(tmp_path)[0]["group_id"])).output
    assert whole("1.250", history)


def test_a_from_price_is_marked_in_every_format(home):
    path, ids = home
    with sqlite3.connect(path / "pricelens.db") as db:
        db.execute("UPDATE offers SET price_is_from = 1 WHERE id = ?", (ids["s-2"],))
    rows = report_json(path)
    marked = {(r["shop"], r["title"]) for r in rows if r["price_is_from"]}
    assert marked == {("spa", "Leather Ankle Boots Brown")}
    table = invoke(path, "report").output
    assert table.count("from: variants") == 1
    html = invoke(path, "report", "--format", "html").output
    assert html.count("from: variants") == 1
