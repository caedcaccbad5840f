"""Shop specs: the shipped TOML files load, and every mistake names the file and the key."""

from __future__ import annotations

import dataclasses

import pytest

from crawler.errors import SpecError
from crawler.spec import (
    FieldRule,
    ShopSpec,
    builtin_spec_paths,
    load_builtin_spec,
    load_spec,
)
from db.records import LABELS

BUILTIN = ("classic", "spa", "scroll", "menu")


def classic_text() -> str:
    return builtin_spec_paths()["classic"].read_text(encoding="utf-8")


def write_variant(tmp_path, old: str, new: str, name: str = "shop.toml"):
    """classic.toml with exactly one piece of its text replaced, written to tmp_path."""
    text = classic_text()
    assert text.count(old) == 1, f"{old!r} must occur exactly once in classic.toml"
    path = tmp_path / name
    path.write_text(text.replace(old, new), encoding="utf-8")
    return path


# -- the shipped specs -------------------------------------------------------------------


def test_builtin_spec_paths_lists_the_shipped_files():
    paths = builtin_spec_paths()
    assert set(paths) == set(BUILTIN)
    for name, path in paths.items():
        assert path.is_file()
        assert path.name == f"{name}.toml"


@pytest.mark.parametrize("name", BUILTIN)
def test_builtin_spec_loads(name):
    spec = load_builtin_spec(name)
    assert isinstance(spec, ShopSpec)
    assert spec.name == name
    assert spec.source == str(builtin_spec_paths()[name])
    assert spec.currency == "KRW"
    assert spec.start_urls
    fields = set(spec.listing.fields) | set(spec.detail.fields if spec.detail else ())
    assert {"title", "price", "url"} <= fields


@pytest.mark.parametrize("name", BUILTIN)
def test_builtin_spec_maps_every_label(name):
    assert set(load_builtin_spec(name).categories.values()) == set(LABELS)


@pytest.mark.parametrize(("name", "strategy"), [("classic", "next_page"), ("spa", "load_more")])
def test_builtin_spec_pagination(name, strategy):
    pagination = load_builtin_spec(name).pagination
    assert pagination.strategy == strategy
    assert pagination.selector


def test_classic_field_rules():
    fields = load_builtin_spec("classic").listing.fields
    assert fields["title"] == FieldRule("h2.product-name")
    assert fields["url"] == FieldRule("a.product-link", ("href",))
    assert fields["image"] == FieldRule("img.thumb", ("data-src", "src"))
    assert fields["sku"] == FieldRule(None, ("data-sku",))


def test_unknown_builtin_name_lists_the_known_ones():
    with pytest.raises(SpecError) as caught:
        load_builtin_spec("nope")
    assert "'nope'" in str(caught.value)
    for name in BUILTIN:
        assert name in str(caught.value)


def test_unchanged_copy_of_classic_loads(tmp_path):
    path = tmp_path / "copy.toml"
    path.write_text(classic_text(), encoding="utf-8")
    copy = load_spec(path)
    assert copy.source == str(path)
    assert dataclasses.replace(copy, source="x") == dataclasses.replace(
        load_builtin_spec("classic"), source="x"
    )


# -- invalid specs -----------------------------------------------------------------------


INVALID = [
    # (old text, new text, dotted key, words of the problem)
    ('currency = "KRW"\n', 'currency = "KRW"\ncolour = "red"\n', "colour", "unknown key"),
    (
        'title = "h2.product-name"',
        'titel = "h2.product-name"',
        "listing.fields.titel",
        "unknown key",
    ),
    ('attr = "href"', 'atr = "href"', "listing.fields.url.atr", "unknown key"),
    (
        'sold_out = ".sold-out"',
        'sold_out = ".sold-out"\nsoldout = "x"',
        "listing.soldout",
        "unknown key",
    ),
    (
        'selector = "nav.pagination a.next"',
        'selector = "nav.pagination a.next"\npages = 3',
        "pagination.pages",
        "unknown key",
    ),
    (
        'selector = "nav.pagination a.next"',
        'selector = "nav.pagination a.next"\nmax_pages = "ten"',
        "pagination.max_pages",
        "must be an integer",
    ),
    (
        'selector = "nav.pagination a.next"',
        'selector = "nav.pagination a.next"\nmax_pages = true',
        "pagination.max_pages",
        "must be an integer",
    ),
    (
        'selector = "nav.pagination a.next"',
        'selector = "nav.pagination a.next"\nmax_pages = 0',
        "pagination.max_pages",
        "at least 1",
    ),
    ('strategy = "next_page"', 'strategy = "infinite"', "pagination.strategy", "must be one of"),
    (
        'strategy = "next_page"\nselector = "nav.pagination a.next"\n',
        'strategy = "next_page"\n',
        "pagination.selector",
        "is required",
    ),
    (
        'currency = "KRW"\n',
        'currency = "KRW"\n\n[politeness]\ndelay_seconds = "slow"\n',
        "politeness.delay_seconds",
        "must be a float",
    ),
    (
        'currency = "KRW"\n',
        'currency = "KRW"\n\n[politeness]\nwait = 3\n',
        "politeness.wait",
        "unknown key",
    ),
    (
        'currency = "KRW"\n',
        'currency = "KRW"\n\n[politeness]\nconcurrency = 0\n',
        "politeness.concurrency",
        "at least 1",
    ),
    ('currency = "KRW"', 'currency = "krw"', "currency", "ISO 4217"),
    (
        'currency = "KRW"\n',
        'currency = "KRW"\n\n[politeness]\nwait_timeout = nan\n',
        "politeness.wait_timeout",
        "finite",
    ),
    (
        'currency = "KRW"\n',
        'currency = "KRW"\n\n[politeness]\npage_load_timeout = inf\n',
        "politeness.page_load_timeout",
        "finite",
    ),
    (
        'currency = "KRW"\n',
        'currency = "KRW"\n\n[politeness]\npage_load_timeout = 0\n',
        "politeness.page_load_timeout",
        "more than 0",
    ),
    (
        'currency = "KRW"\n',
        'currency = "KRW"\n\n[politeness]\nwait_timeout = 0\n',
        "politeness.wait_timeout",
        "more than 0",
    ),
    (
        'currency = "KRW"\n',
        'currency = "KRW"\n\n[politeness]\nbackoff_seconds = -inf\n',
        "politeness.backoff_seconds",
        "finite",
    ),
    (
        'currency = "KRW"\n',
        'currency = "KRW"\n\n[politeness]\ndelay_seconds = -1\n',
        "politeness.delay_seconds",
        "not be negative",
    ),
    (
        'currency = "KRW"\n',
        'currency = "KRW"\n\n[politeness]\nretries = -1\n',
        "politeness.retries",
        "not be negative",
    ),
    (
        'currency = "KRW"\n',
        'currency = "KRW"\n\n[politeness]\nrobots_timeout = 0\n',
        "politeness.robots_timeout",
        "more than 0",
    ),
    ('currency = "KRW"', 'currency = "WON!"', "currency", "ISO 4217"),
    ('currency = "KRW"', "currency = 410", "currency", "must be a string"),
    (
        'currency = "KRW"',
        'currency = "KRW"\ndecimal_separator = ";"',
        "decimal_separator",
        "'.' or ','",
    ),
    ('start_urls = ["/products?page=1"]', "start_urls = []", "start_urls", "non-empty"),
    ('start_urls = ["/products?page=1"]', "start_urls = [1, 2]", "start_urls", "non-empty"),
    ('start_urls = ["/products?page=1"]', 'start_urls = "/products"', "start_urls", "an array"),
    ('name = "classic"', "name = 7", "name", "must be a string"),
    ('name = "classic"', 'name = ""', "name", "letters, digits"),
    ('name = "classic"', 'name = "my shop"', "name", "letters, digits"),
    ('currency = "KRW"', 'currency = "ABC"', "currency", "ISO 4217"),
    (
        'base_url = "http://127.0.0.1:8101"',
        'base_url = "127.0.0.1:8101"',
        "base_url",
        "absolute http(s) URL",
    ),
    (
        'base_url = "http://127.0.0.1:8101"',
        'base_url = "ftp://127.0.0.1:8101"',
        "base_url",
        "absolute http(s) URL",
    ),
    # selectors the browser runs must be CSS a browser knows (cssselect adds :contains)
    (
        'item = "li.product"',
        "item = \"li.product:contains('Shirt')\"",
        "listing.item",
        "no :contains()",
    ),
    (
        'selector = "nav.pagination a.next"',
        "selector = \"a:contains('Next')\"",
        "pagination.selector",
        "no :contains()",
    ),
    ('item = "li.product"', 'item = "li..product"', "listing.item", "bad CSS selector"),
    ('sold_out = ".sold-out"', 'sold_out = ".sold-out["', "listing.sold_out", "bad CSS selector"),
    (
        'price = ".price .amount"',
        'price = ".price >> .amount"',
        "listing.fields.price",
        "bad CSS selector",
    ),
    (
        'selector = "a.product-link"',
        'selector = "a.product-link:nth-child("',
        "listing.fields.url.selector",
        "bad CSS selector",
    ),
    (
        'selector = "nav.pagination a.next"',
        'selector = "nav.pagination a.next,"',
        "pagination.selector",
        "bad CSS selector",
    ),
    ('attr = "href"', "attr = [1]", "listing.fields.url.attr", "list of strings"),
    ('attr = "href"', "attr = 3", "listing.fields.url.attr", "must be a string or an array"),
    (
        '"의류 > 가방" = "bag"',
        '"의류 > 가방" = "handbag"',
        "categories.의류 > 가방",
        "'handbag' is not one of",
    ),
    (
        '"의류 > 원피스" = "dress"',
        '"의류 > 원피스" = "Dress"',
        "categories.의류 > 원피스",
        "is not one of",
    ),
    ('"의류 > 가방" = "bag"', '"의류 > 가방" = 8', "categories.의류 > 가방", "must be a string"),
    # [[steps]] run after every page load; [[setup]] once per browser, and may navigate
    (
        'currency = "KRW"\n',
        'currency = "KRW"\n\n[[steps]]\naction = "goto"\nurl = "/settings"\n',
        "steps[0].action",
        "goto is for [[setup]]",
    ),
    (
        'currency = "KRW"\n',
        'currency = "KRW"\n\n[[steps]]\naction = "click"\nselector = "a"\nnavigates = true\n',
        "steps[0].navigates",
        "only for [[setup]] steps",
    ),
    (
        'currency = "KRW"\n',
        'currency = "KRW"\n\n[[setup]]\naction = "goto"\nurl = "/"\n\n'
        '[[setup]]\naction = "wait_for"\nselector = "a"\nnavigates = true\n',
        "setup[1].navigates",
        "only for a [[setup]] click or select",
    ),
    (
        'currency = "KRW"\n',
        'currency = "KRW"\n\n[[setup]]\naction = "goto"\n',
        "setup[0].url",
        "is required",
    ),
    (
        'currency = "KRW"\n',
        'currency = "KRW"\n\n[[setup]]\naction = "goto"\nurl = "javascript:alert(1)"\n',
        "setup[0].url",
        "http(s) URL",
    ),
    (
        'currency = "KRW"\n',
        'currency = "KRW"\n\n[[setup]]\naction = "goto"\nurl = "/s"\nselector = "a"\n',
        "setup[0].selector",
        "unknown key",
    ),
    (
        'currency = "KRW"\n',
        'currency = "KRW"\n\n[[setup]]\naction = "hover"\nselector = "a"\n',
        "setup[0].action",
        "must be one of goto, dismiss",
    ),
    (
        'currency = "KRW"\n',
        'currency = "KRW"\n\n[[setup]]\naction = "goto"\nurl = "/"\n\n'
        '[[setup]]\naction = "select"\nselector = "select"\n',
        "setup[1].value",
        "is required for action 'select'",
    ),
    ('currency = "KRW"\n', 'currency = "KRW"\nsetup = "x"\n', "setup", "must be an array"),
    (
        'currency = "KRW"\n',
        'currency = "KRW"\n\n[[setup]]\naction = "click"\nselector = "a"\n',
        "setup[0].action",
        "begin with a goto",
    ),
    (
        'currency = "KRW"\n',
        'currency = "KRW"\n\n[[setup]]\naction = "goto"\nurl = "http://login.example/in"\n',
        "setup[0].url",
        "leaves the shop's host 127.0.0.1:8101",
    ),
    (  # no scheme, but a host all the same: resolved against base_url, it leaves the shop
        'currency = "KRW"\n',
        'currency = "KRW"\n\n[[setup]]\naction = "goto"\nurl = "//evil.example/login"\n',
        "setup[0].url",
        "leaves the shop's host 127.0.0.1:8101",
    ),
    (
        'currency = "KRW"\n',
        'currency = "KRW"\n\n[[setup]]\naction = "goto"\nurl = "http://127.0.0.1:8102/s"\n',
        "setup[0].url",
        "leaves the shop's host 127.0.0.1:8101",
    ),
    # start URLs are checked as setup gotos are
    (
        'start_urls = ["/products?page=1"]',
        'start_urls = ["ftp://127.0.0.1/x"]',
        "start_urls[0]",
        "http(s) URL",
    ),
    (
        'start_urls = ["/products?page=1"]',
        'start_urls = ["javascript:alert(1)"]',
        "start_urls[0]",
        "http(s) URL",
    ),
    ('start_urls = ["/products?page=1"]', 'start_urls = [" "]', "start_urls[0]", "http(s) URL"),
    (
        'start_urls = ["/products?page=1"]',
        'start_urls = ["http:///products"]',
        "start_urls[0]",
        "http(s) URL",
    ),
    (
        'start_urls = ["/products?page=1"]',
        'start_urls = ["http://127.0.0.1:99999/"]',
        "start_urls[0]",
        "http(s) URL",
    ),
    (
        'start_urls = ["/products?page=1"]',
        'start_urls = ["/products?page=1", "https://evil.example/products"]',
        "start_urls[1]",
        "leaves the shop's host 127.0.0.1:8101",
    ),
    (
        'start_urls = ["/products?page=1"]',
        'start_urls = ["//evil.example/products"]',
        "start_urls[0]",
        "leaves the shop's host 127.0.0.1:8101",
    ),
    ('name = "classic"\n', "", "name", "is required"),
    ('start_urls = ["/products?page=1"]\n', "", "start_urls", "is required"),
    ('item = "li.product"\n', "", "listing.item", "is required"),
    ('title = "h2.product-name"\n', "", "listing.fields.title", "is required"),
    ('price = ".price .amount"\n', "", "listing.fields.price", "is required"),
    (
        'url = { selector = "a.product-link", attr = "href" }\n',
        "",
        "listing.fields.url",
        "is required",
    ),
]


@pytest.mark.parametrize(
    ("old", "new", "key", "problem"), INVALID, ids=[f"{row[2]}:{row[3]}" for row in INVALID]
)
def test_invalid_spec_names_file_and_key(tmp_path, old, new, key, problem):
    path = write_variant(tmp_path, old, new)
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    message = str(caught.value)
    assert str(path) in message
    assert f"key '{key}'" in message
    assert problem in message


def test_whole_listing_table_missing_is_required(tmp_path):
    text = classic_text()
    start, end = text.index("[listing]"), text.index("[pagination]")
    path = tmp_path / "nolisting.toml"
    path.write_text(text[:start] + text[end:], encoding="utf-8")
    with pytest.raises(SpecError, match="key 'listing': is required") as caught:
        load_spec(path)
    assert str(path) in str(caught.value)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ('name = "classic"', "name = classic"),
        ('name = "classic"', 'name = "classic'),
        ("[listing]", "[listing"),
        ('currency = "KRW"', 'currency = "KRW"\ncurrency = "USD"'),
    ],
)
def test_invalid_toml_names_the_file(tmp_path, old, new):
    path = write_variant(tmp_path, old, new)
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    assert str(path) in str(caught.value)
    assert "not valid TOML" in str(caught.value)


def test_a_relative_start_url_without_base_url_loads_but_cannot_be_crawled(tmp_path):
    spec = load_spec(write_variant(tmp_path, 'base_url = "http://127.0.0.1:8101"', ""))
    assert "key 'base_url': is required" in spec.unreachable()
    assert spec.with_base_url("http://127.0.0.1:9").unreachable() is None


SETUP = """
[[setup]]
action = "goto"
url = "{url}"

[[setup]]
action = "select"
selector = "select[name=per_page]"
value = "48"

[[setup]]
action = "click"
selector = "form.settings button.save"
navigates = true
"""


def test_a_setup_is_read_in_order(tmp_path):
    text = 'currency = "KRW"\n' + SETUP.format(url="/settings")
    spec = load_spec(write_variant(tmp_path, 'currency = "KRW"\n', text))
    assert [(s.action, s.selector, s.value, s.url, s.navigates) for s in spec.setup] == [
        ("goto", None, None, "/settings", False),
        ("select", "select[name=per_page]", "48", None, False),
        ("click", "form.settings button.save", None, None, True),
    ]
    assert spec.steps == ()


def test_a_relative_setup_url_needs_a_base_url(tmp_path):
    """Absolute start URLs need no base_url, but a relative setup URL does."""
    absolute = 'start_urls = ["http://127.0.0.1:8101/products?page=1"]\ncurrency = "KRW"\n'
    text = absolute + SETUP.format(url="/settings")
    start = 'base_url = "http://127.0.0.1:8101"   # the demo replaces this with the port '
    start += 'it picked\nstart_urls = ["/products?page=1"]\ncurrency = "KRW"\n'
    spec = load_spec(write_variant(tmp_path, start, text))
    assert "start or setup URL is relative" in spec.unreachable()
    text = absolute + SETUP.format(url="http://127.0.0.1:8101/settings")
    assert load_spec(write_variant(tmp_path, start, text)).unreachable() is None


def spec_with(tmp_path, *changes: tuple[str, str]):
    """classic.toml with each (old, new) piece of text replaced, loaded."""
    text = classic_text()
    for old, new in changes:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    path = tmp_path / "shop.toml"
    path.write_text(text, encoding="utf-8")
    return load_spec(path)


BASE = 'base_url = "http://127.0.0.1:8101"   # the demo replaces this with the port it picked\n'
START = 'start_urls = ["/products?page=1"]\n'
TITLE, PRICE = 'title = "h2.product-name"\n', 'price = ".price .amount"\n'


def detail(json_ld: bool, *fields: str) -> tuple[str, str]:
    """A [detail] table (inline, among the top-level keys) giving *fields*."""
    given = ", ".join(f'{name} = ".{name}"' for name in fields)
    table = f"detail = {{ json_ld = {str(json_ld).lower()}, fields = {{ {given} }} }}\n"
    return ('currency = "KRW"\n', 'currency = "KRW"\n' + table)


@pytest.mark.parametrize(
    ("changes", "missing"),
    [
        ((detail(False, "category"), (TITLE, ""), (PRICE, "")), "title"),
        ((detail(False, "title"), (PRICE, "")), "price"),
        ((detail(False), (TITLE, "")), "title"),
    ],
    ids=["listing-has-only-url", "no-price-anywhere", "no-title-anywhere"],
)
def test_without_json_ld_the_title_and_price_need_a_selector(tmp_path, changes, missing):
    with pytest.raises(SpecError) as caught:
        spec_with(tmp_path, *changes)
    message = str(caught.value)
    assert f"key 'listing.fields.{missing}': is required" in message
    assert "json_ld = false" in message


@pytest.mark.parametrize(
    "changes",
    [
        (detail(False, "title", "price"), (TITLE, ""), (PRICE, "")),  # both on the detail page
        (detail(False, "price"), (PRICE, "")),  # title in the listing, price on the detail page
        (detail(True), (TITLE, ""), (PRICE, "")),  # JSON-LD may give both
        (detail(False),),  # the listing has both
    ],
    ids=["detail-gives-both", "one-each", "json-ld", "listing-gives-both"],
)
def test_a_detail_page_may_give_the_title_and_price(tmp_path, changes):
    assert spec_with(tmp_path, *changes).detail is not None


@pytest.mark.parametrize(
    "goto",
    [
        "https://shop.example:443/settings",
        "https://SHOP.EXAMPLE/settings",
        "http://shop.example./settings",
        "//shop.example/settings",
        "/settings",
    ],
)
def test_a_setup_goto_on_the_shops_origin_is_accepted_however_it_is_written(tmp_path, goto):
    setup = f'\n[[setup]]\naction = "goto"\nurl = "{goto}"\n'
    spec = spec_with(
        tmp_path,
        (BASE, 'base_url = "https://shop.example"\n'),
        ('currency = "KRW"\n', 'currency = "KRW"\n' + setup),
    )
    assert spec.setup[0].url == goto and spec.host == "shop.example"


def test_without_base_url_the_first_absolute_start_url_names_the_shop(tmp_path):
    start = 'start_urls = ["https://shop.example/a", "/b", "https://shop.example:443/c"]\n'
    spec = spec_with(tmp_path, (BASE, ""), (START, start))
    assert spec.base_url == "" and spec.host == "shop.example"
    with pytest.raises(SpecError, match=r"key 'start_urls\[1\]'.*leaves the shop's host"):
        spec_with(
            tmp_path,
            (BASE, ""),
            (START, 'start_urls = ["https://a.example/", "https://b.example/"]\n'),
        )
    goto = '\n[[setup]]\naction = "goto"\nurl = "https://evil.example/in"\n'
    with pytest.raises(SpecError, match=r"key 'setup\[0\].url'.*leaves the shop's host"):
        spec_with(
            tmp_path,
            (BASE, ""),
            (START, start),
            ('currency = "KRW"\n', 'currency = "KRW"\n' + goto),
        )


def test_a_spec_that_is_not_utf8_is_a_spec_error_naming_it(tmp_path):
    path = tmp_path / "latin1.toml"
    path.write_bytes(classic_text().replace("Hanbit", "Caf\u00e9").encode("latin-1", "replace"))
    with pytest.raises(SpecError, match="not UTF-8") as caught:
        load_spec(path)
    assert str(path) in str(caught.value)


def test_missing_file_is_a_spec_error_naming_it(tmp_path):
    path = tmp_path / "absent.toml"
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    assert str(path) in str(caught.value)


@pytest.mark.parametrize(
    ("old", "new", "check"),
    [
        (
            'currency = "KRW"',
            'currency = "KRW"\ndecimal_separator = ","',
            lambda s: s.decimal_separator == ",",
        ),
        ('currency = "KRW"', 'currency = "USD"', lambda s: s.currency == "USD"),
        (
            'strategy = "next_page"\nselector = "nav.pagination a.next"\n',
            'strategy = "none"\n',
            lambda s: (s.pagination.strategy, s.pagination.selector) == ("none", None),
        ),
        (
            'selector = "nav.pagination a.next"',
            'selector = "nav.pagination a.next"\nmax_pages = 3',
            lambda s: s.pagination.max_pages == 3,
        ),
        (
            'currency = "KRW"\n',
            'currency = "KRW"\n\n[politeness]\ndelay_seconds = 2\n',
            lambda s: (
                s.politeness.delay_seconds == 2.0 and type(s.politeness.delay_seconds) is float
            ),
        ),
        (
            'attr = "href"',
            'attr = ["href", "data-href"]',
            lambda s: s.listing.fields["url"].attrs == ("href", "data-href"),
        ),
        (
            '"의류 > 가방" = "bag"',
            '"의류  >   가방" = "bag"',
            lambda s: s.categories.get("의류 > 가방") == "bag",
        ),
        ('display_name = "Hanbit Classic"\n', "", lambda s: s.display_name == "classic"),
        (
            'base_url = "http://127.0.0.1:8101"',
            'base_url = "http://127.0.0.1:8101/"',
            lambda s: s.base_url == "http://127.0.0.1:8101",
        ),
        (  # the browser reports hosts in lower case; so does the spec, for comparisons
            'base_url = "http://127.0.0.1:8101"',
            'base_url = "http://Shop.Example:8101/Path"',
            lambda s: s.base_url == "http://shop.example:8101/Path",
        ),
        (
            'base_url = "http://127.0.0.1:8101"',
            'base_url = "https://shop.example:443/"',
            lambda s: s.base_url == "https://shop.example",
        ),
        (  # as Chrome reports an internationalised name: in punycode
            'base_url = "http://127.0.0.1:8101"',
            'base_url = "https://쇼핑.한국"',
            lambda s: (
                s.base_url == "https://xn--hp4bo76a.xn--3e0b707e"
                and s.host == "xn--hp4bo76a.xn--3e0b707e"
            ),
        ),
        (
            'base_url = "http://127.0.0.1:8101"',
            'base_url = "http://Shop.Example.:80"',
            lambda s: s.base_url == "http://shop.example" and s.host == "shop.example",
        ),
        (  # the same origin however it is written
            'start_urls = ["/products?page=1"]',
            'start_urls = ["HTTP://127.0.0.1:8101/a", "//127.0.0.1:8101/b", "/c"]',
            lambda s: len(s.start_urls) == 3 and s.host == "127.0.0.1:8101",
        ),
        (  # absolute start URLs need no base_url
            'base_url = "http://127.0.0.1:8101"   # the demo replaces this with the port '
            'it picked\nstart_urls = ["/products?page=1"]',
            'start_urls = ["http://127.0.0.1:8101/products?page=1"]',
            lambda s: s.base_url == "" and s.start_urls[0].startswith("http://"),
        ),
        (  # a Python-side selector may use cssselect's :contains()
            'sold_out = ".sold-out"',
            "sold_out = \"span:contains('Sold out')\"",
            lambda s: s.listing.sold_out == "span:contains('Sold out')",
        ),
        ('currency = "KRW"', 'currency = "SEK"', lambda s: s.currency == "SEK"),
    ],
)
def test_valid_variation_is_read(tmp_path, old, new, check):
    assert check(load_spec(write_variant(tmp_path, old, new)))


# -- label_for ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shop", "category_raw", "label"),
    [
        ("classic", "의류 > 가방", "bag"),
        ("classic", "의류 > 상의 > 티셔츠", "tshirt"),
        ("classic", "의류 > 신발 > 앵클부츠", "ankle_boot"),
        ("classic", "  의류  >  상의 >\n티셔츠 ", "tshirt"),
        ("classic", "의류 > 가방 > 백팩", "bag"),
        ("classic", "의류 > 가방류", None),
        ("classic", "의류 > 상의", None),
        ("classic", "의류", None),
        ("classic", "가방", None),
        ("classic", "", None),
        ("classic", None, None),
        ("spa", "Tops / Tees", "tshirt"),
        ("spa", "Shoes / Boots", "ankle_boot"),
        ("spa", "Shoes / Boots / Chelsea", "ankle_boot"),
        ("spa", "tops / tees", None),
        ("spa", "Tops", None),
        ("spa", "Hats", None),
    ],
)
def test_label_for_builtin_categories(shop, category_raw, label):
    assert load_builtin_spec(shop).label_for(category_raw) == label


@pytest.mark.parametrize(
    ("category_raw", "label"),
    [
        ("Shoes", "sneaker"),
        ("Shoes / Sandals", "sandal"),
        ("Shoes / Sandals / Kids", "sandal"),
        ("Shoes / Sandals / Kids / Beach", "dress"),
        ("Shoes / Boots", "sneaker"),
        ("Shoes / Sandalwood", "sneaker"),
        ("Shoestring", None),
    ],
)
def test_label_for_prefers_the_longest_matching_prefix(category_raw, label):
    categories = {
        "Shoes / Sandals / Kids / Beach": "dress",
        "Shoes": "sneaker",
        "Shoes / Sandals": "sandal",
    }
    spec = dataclasses.replace(load_builtin_spec("spa"), categories=categories)
    assert spec.label_for(category_raw) == label


# -- base URLs ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shop", "base", "expected"),
    [
        ("classic", "http://127.0.0.1:9999", "http://127.0.0.1:9999/products?page=1"),
        ("classic", "http://127.0.0.1:9999/", "http://127.0.0.1:9999/products?page=1"),
        ("classic", "http://127.0.0.1:9999///", "http://127.0.0.1:9999/products?page=1"),
        ("spa", "http://localhost:40123", "http://localhost:40123/"),
    ],
)
def test_with_base_url_resolves_start_urls(shop, base, expected):
    original = load_builtin_spec(shop)
    moved = original.with_base_url(base)
    assert moved.base_url == base.rstrip("/")
    assert [moved.absolute(u) for u in moved.start_urls] == [expected]
    # the original is untouched: specs are values
    assert original.base_url != moved.base_url
    assert moved.listing == original.listing


@pytest.mark.parametrize(
    ("base", "url", "expected"),
    [
        ("http://h:1", "/p/1", "http://h:1/p/1"),
        ("http://h:1", "p/1", "http://h:1/p/1"),
        ("http://h:1/shop", "p/1", "http://h:1/shop/p/1"),
        ("http://h:1/shop", "/p/1", "http://h:1/p/1"),
        ("http://h:1", "?page=2", "http://h:1/?page=2"),
        ("http://h:1", "https://cdn.test/i.png", "https://cdn.test/i.png"),
        ("http://h:1", "//cdn.test/i.png", "http://cdn.test/i.png"),
    ],
)
def test_absolute(base, url, expected):
    assert load_builtin_spec("classic").with_base_url(base).absolute(url) == expected
