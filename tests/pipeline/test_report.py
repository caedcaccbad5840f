"""`pricelens report` and `pricelens history` on a small fixture database whose figures were
worked out by hand (see report_fixture.py), plus the HTML report's escaping rules."""

from __future__ import annotations

import csv
import io
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image as PILImage
from rich.console import Console

from pipeline.cli import cli
from pipeline.report import COLUMNS, ComparisonRow, ShopPrice, comparison_table, report_columns
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
    return json.loads(result.output)


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
    assert csv_out.read_text(encoding="utf-8").splitlines()[0] == ",".join(COLUMNS)


def test_terminal_table_fits_100_columns_with_five_shops():
    shops = ["classic", "spa", "scroll", "menu", "outlet"]
    row = ComparisonRow(1, "Very Long Product Title " * 4, "ankle_boot", "KRW")
    for n, shop in enumerate(shops):
        row.prices[shop] = ShopPrice(1_234_500 + n * 10_000, 1_334_500, n != 2, "http://x.test/")
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
