"""Shop specs: one TOML file per shop, written without Python, validated on load.

Every key is checked: an unknown key, a wrong type or a CSS selector that does not compile is
a `SpecError` naming the file and the key, so nothing runs half-configured.
"""

from __future__ import annotations

import math
import re
import tomllib
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

from cssselect import SelectorError
from cssselect.xpath import ExpressionError
from lxml.cssselect import CSSSelector

from crawler.addresses import normal_host
from crawler.currencies import is_currency
from crawler.errors import SpecError
from db.records import LABELS

FIELD_NAMES = ("title", "price", "list_price", "url", "image", "sku", "category", "stock")
PAGINATION_STRATEGIES = ("none", "next_page", "load_more", "infinite_scroll")
STEP_ACTIONS = ("dismiss", "click", "wait_for", "scroll", "select", "type")
SETUP_ACTIONS = ("goto", *STEP_ACTIONS)  # goto only in [[setup]]: it would loop after every load
VALUE_STEPS = ("select", "type")  # steps that need a value: the option, the text
NAVIGATING_STEPS = ("click", "select")  # may open another page (a form's submit, a switcher)
# Steps that say how the walk goes on from a page, each the same as its table ([for_each],
# [detail], [pagination]); one of each at most, in this order, as the walk takes them.
WALK_STEPS = {
    "for_each": "for_each",
    "open_detail": "detail",
    **{strategy: "pagination" for strategy in PAGINATION_STRATEGIES[1:]},
}
_WALK_ORDER = ("for_each", "detail", "pagination")
# a load that long, then the hang check, stays under the WebDriver client's 120 s time-out
# (crawler.browser.COMMAND_TIMEOUT_S), past which the browser counts as hung
MAX_PAGE_LOAD_TIMEOUT = 90.0
SHOP_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")  # a shop's name: --shop, file names, SQL


@dataclass(frozen=True)
class FieldRule:
    """Where a field is on a listing item: a CSS selector (None = the item itself), and the
    attributes to read in order (none = the element's text)."""

    selector: str | None
    attrs: tuple[str, ...] = ()


@dataclass(frozen=True)
class Listing:
    item: str
    fields: dict[str, FieldRule]
    sold_out: str | None = None  # present inside an item when it is out of stock
    empty: str | None = None  # present when a listing has no items at all ("no products")
    json_ld: bool = True  # the page's JSON-LD Products first, matched to items by URL


@dataclass(frozen=True)
class Pagination:
    strategy: str = "none"
    selector: str | None = None  # the "next" link or the "load more" button
    max_pages: int = 1000  # pages, clicks or scroll rounds: a cap on endless listings
    done_selector: str | None = None  # infinite scroll: present once the listing has ended


@dataclass(frozen=True)
class Step:
    """A browser step: `dismiss` clicks a modal's button if one is shown, `click` clicks an
    element that must be there, `wait_for` waits for one, `scroll` brings one into view,
    `select` picks the option with this value (or text) in a <select>, `type` types the value
    into an input, `goto` opens *url* (setup only). A step that *navigates* waits for the
    page it opens."""

    action: str
    selector: str | None = None
    value: str | None = None
    url: str | None = None
    navigates: bool = False
    where: str = field(default="", compare=False)  # "steps[2]": its place in the spec file


@dataclass(frozen=True)
class ForEach:
    """Listings reached through links (a category menu): the links are read once from the
    start page and each is opened by its URL (one without a usable URL is clicked there)."""

    selector: str


@dataclass(frozen=True)
class Detail:
    """Fields read from each product's detail page; JSON-LD Product data first if asked.
    Without *render*, the page's HTML is fetched from the listing page (same origin, the
    browser's cookies) and parsed, never rendered: for pages that carry their data in the HTML."""

    fields: dict[str, FieldRule]
    json_ld: bool = True
    sold_out: str | None = None
    render: bool = True


@dataclass(frozen=True)
class Politeness:
    delay_seconds: float = 0.0
    page_load_timeout: float = 30.0
    wait_timeout: float = 15.0
    retries: int = 3  # on 5xx/429, time-outs and network errors, with exponential backoff
    backoff_seconds: float = 0.5
    concurrency: int = 1  # sessions on this shop at once; also unrendered detail fetches
    robots_timeout: float = 5.0  # for robots.txt, redirects included; no answer means disallow


@dataclass(frozen=True)
class ShopSpec:
    name: str
    base_url: str
    start_urls: tuple[str, ...]
    listing: Listing
    currency: str = "KRW"
    display_name: str = ""
    decimal_separator: str | None = None
    pagination: Pagination = Pagination()
    categories: dict[str, str] = field(default_factory=dict)
    politeness: Politeness = Politeness()
    steps: tuple[Step, ...] = ()  # after every page load
    setup: tuple[Step, ...] = ()  # once in each browser, before its first page of the shop
    for_each: ForEach | None = None
    detail: Detail | None = None
    source: str = "<memory>"

    def with_base_url(self, base_url: str) -> ShopSpec:
        """The same shop served elsewhere (the demo mall picks free ports); ValueError if
        *base_url* is not an absolute http(s) URL."""
        return replace(self, base_url=normal_base_url(base_url))

    def unreachable(self) -> str | None:
        """Why the shop cannot be crawled as it stands (a relative start URL and no base URL)."""
        urls = [*self.start_urls, *(step.url for step in self.setup if step.url)]
        if not self.base_url and any(not urlsplit(url).scheme for url in urls):
            return (
                f"{self.source}: key 'base_url': is required when a start or setup URL is "
                "relative (or give the shop's address with --base-url)"
            )
        return None

    def absolute(self, url: str) -> str:
        return urljoin(self.base_url + "/", url)

    @property
    def host(self) -> str | None:
        """The shop's host, as `crawler.addresses.normal_host` writes it: base_url's, else
        the first absolute start URL's. Pages, redirects, detail fetches and photos are
        measured against this one value. None only for a spec `unreachable` refuses (no
        base_url, no absolute start URL), and then no URL is the shop's."""
        return _shop_host(self.base_url, self.start_urls)

    def label_for(self, category_raw: str | None) -> str | None:
        """The shared label for the shop's category text; longest matching prefix wins."""
        if not category_raw:
            return None
        text = " ".join(category_raw.split())
        best = None
        for name, label in self.categories.items():
            matches = text == name or text.startswith(name + " ")
            if matches and (best is None or len(name) > len(best[0])):
                best = (name, label)
        return best[1] if best else None


# what TOML calls the Python types tomllib gives: an error speaks the file's language
TOML_TYPES = {
    dict: "a table",
    list: "an array",
    str: "a string",
    int: "an integer",
    float: "a float",
    bool: "a boolean",
}


def wrong_type(kind: type | tuple, value: Any) -> str:
    """The problem with *value*, read from TOML where *kind* was wanted ("must be an
    integer, not a string")."""
    kinds = kind if isinstance(kind, tuple) else (kind,)
    expected = " or ".join(TOML_TYPES.get(k, k.__name__) for k in kinds)
    return f"must be {expected}, not {TOML_TYPES.get(type(value), type(value).__name__)}"


class _Reader:
    """Pops typed values out of a TOML table and complains about leftovers."""

    def __init__(self, source: str, table: dict, prefix: str = ""):
        self.source, self.table, self.prefix = source, dict(table), prefix

    def key(self, name: str) -> str:
        return f"{self.prefix}{name}"

    def fail(self, name: str, problem: str) -> SpecError:
        return SpecError(f"{self.source}: key '{self.key(name)}': {problem}")

    def take(self, name: str, kind: type | tuple, default: Any = ..., required: bool = False):
        if name not in self.table:
            if required:
                raise self.fail(name, "is required")
            return default
        value = self.table.pop(name)
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise self.fail(name, wrong_type(kind, value))
        return value

    def sub(self, name: str, required: bool = False) -> _Reader:
        return _Reader(self.source, self.take(name, dict, {}, required), self.key(name) + ".")

    def selector(self, name: str, required: bool = False, browser: bool = False) -> str | None:
        """A CSS selector; *browser*: one the browser runs too (document.querySelectorAll)."""
        value = self.take(name, str, None, required)
        if value is not None:
            check_selector(value, self.source, self.key(name), browser)
        return value

    def number(
        self, name: str, default: float, positive: bool = False, at_most: float | None = None
    ) -> float:
        """A finite float (TOML allows nan and inf), at least 0 or, if *positive*, above 0,
        and no more than *at_most*."""
        value = self.take(name, float, default)
        if not math.isfinite(value):
            raise self.fail(name, f"must be a finite number, not {value}")
        if value < 0 or (positive and value == 0):
            raise self.fail(name, "must be more than 0" if positive else "must not be negative")
        if at_most is not None and value > at_most:
            raise self.fail(name, f"must be at most {at_most:g}")
        return value

    def finish(self) -> None:
        if self.table:
            name = sorted(self.table)[0]
            raise self.fail(name, "unknown key")


# cssselect's extensions to CSS, which a browser's querySelectorAll refuses
_PYTHON_ONLY_CSS = re.compile(r":(-soup-)?contains\(", re.IGNORECASE)


def check_selector(selector: str, source: str, key: str, browser: bool = False) -> None:
    try:
        CSSSelector(selector, translator="html")
    except (SelectorError, ExpressionError) as exc:  # syntax, or a pseudo-class not supported
        raise SpecError(f"{source}: key '{key}': bad CSS selector {selector!r}: {exc}") from exc
    if browser and _PYTHON_ONLY_CSS.search(selector):
        raise SpecError(
            f"{source}: key '{key}': bad CSS selector {selector!r}: the browser runs this one, "
            "and browsers have no :contains(); select by class, id or attribute"
        )


# What a link or a photo is read from when its rule names no attribute: an element's text
# is never its URL. A lazy photo's real address comes first, its placeholder last.
DEFAULT_ATTRS = {"url": ("href",), "image": ("data-src", "data-srcset", "srcset", "src")}


def _field_rule(reader: _Reader, name: str) -> FieldRule | None:
    value = reader.table.get(name)
    if value is None:
        return None
    if isinstance(value, str):
        return FieldRule(reader.selector(name), DEFAULT_ATTRS.get(name, ()))
    sub = reader.sub(name)
    selector = sub.selector("selector")
    attr = sub.take("attr", (str, list), None)
    attrs = (attr,) if isinstance(attr, str) else tuple(attr or ())
    if not all(isinstance(a, str) for a in attrs):
        raise sub.fail("attr", "must be a string or a list of strings")
    sub.finish()
    if not attrs:
        attrs = DEFAULT_ATTRS.get(name, ())
    return FieldRule(selector, attrs)


def _fields(reader: _Reader) -> dict[str, FieldRule]:
    fields = {}
    for field_name in FIELD_NAMES:
        rule = _field_rule(reader, field_name)
        if rule is not None:
            fields[field_name] = rule
    reader.finish()
    return fields


def parse_spec(data: dict, source: str) -> ShopSpec:
    top = _Reader(source, data)
    name = top.take("name", str, required=True)
    if not SHOP_NAME.fullmatch(name):
        raise top.fail(
            "name",
            f"{name!r}: use letters, digits, '-' and '_', beginning with a letter or digit "
            "(it names the shop)",
        )
    listing_reader = top.sub("listing", required=True)
    item = listing_reader.selector("item", required=True, browser=True)
    fields_reader = listing_reader.sub("fields", required=True)
    fields = _fields(fields_reader)
    walk = _walk_steps(top)
    detail = _detail(top, walk.get("detail"))
    # without a detail page, the listing must carry the price; with one, only the link,
    # unless the detail page's JSON-LD is not read: then a selector in one of the two
    for needed in ("title", "price", "url"):
        if needed in fields:
            continue
        if needed == "url" or detail is None:
            raise fields_reader.fail(needed, "is required")
        if not detail.json_ld and needed not in detail.fields:
            step = walk.get("detail")
            where = f"steps[{step.index}]" if step else "detail"
            raise fields_reader.fail(
                needed,
                f"is required (here or in {where}.fields) with {where}.json_ld = false",
            )
    listing = Listing(
        item,
        fields,
        listing_reader.selector("sold_out"),
        listing_reader.selector("empty", browser=True),
        listing_reader.take("json_ld", bool, True),
    )
    listing_reader.finish()

    pagination = _pagination(top, walk.get("pagination"))
    pol_reader = top.sub("politeness")
    politeness = Politeness(
        delay_seconds=pol_reader.number("delay_seconds", 0.0),
        page_load_timeout=pol_reader.number(
            "page_load_timeout", 30.0, positive=True, at_most=MAX_PAGE_LOAD_TIMEOUT
        ),
        wait_timeout=pol_reader.number("wait_timeout", 15.0, positive=True),
        retries=pol_reader.take("retries", int, 3),
        backoff_seconds=pol_reader.number("backoff_seconds", 0.5),
        concurrency=pol_reader.take("concurrency", int, 1),
        robots_timeout=pol_reader.number("robots_timeout", 5.0, positive=True),
    )
    if politeness.retries < 0:
        raise pol_reader.fail("retries", "must not be negative")
    if politeness.concurrency < 1:
        raise pol_reader.fail("concurrency", "must be at least 1")
    pol_reader.finish()

    cat_reader = top.sub("categories")
    categories = {}
    for raw_name in list(cat_reader.table):
        label = cat_reader.take(raw_name, str)
        if label not in LABELS:
            raise cat_reader.fail(raw_name, f"label {label!r} is not one of {', '.join(LABELS)}")
        categories[" ".join(raw_name.split())] = label

    start_urls = top.take("start_urls", list, required=True)
    if not start_urls or not all(isinstance(u, str) for u in start_urls):
        raise top.fail("start_urls", "must be a non-empty list of strings")
    base_url = _base_url(top)
    for index, url in enumerate(start_urls):
        _check_shop_url(top, f"start_urls[{index}]", url, base_url, start_urls)
    currency = top.take("currency", str, "KRW")
    if not is_currency(currency):
        raise top.fail("currency", f"{currency!r} is not an ISO 4217 currency code such as KRW")
    decimal_separator = top.take("decimal_separator", str, None)
    if decimal_separator not in (None, ".", ","):
        raise top.fail("decimal_separator", "must be '.' or ','")
    spec = ShopSpec(
        name=name,
        display_name=top.take("display_name", str, name),
        base_url=base_url,
        start_urls=tuple(start_urls),
        currency=currency,
        decimal_separator=decimal_separator,
        listing=listing,
        pagination=pagination,
        categories=categories,
        politeness=politeness,
        steps=_steps(top, "steps", STEP_ACTIONS),
        setup=_setup(top, base_url, start_urls),
        for_each=_for_each(top, walk.get("for_each")),
        detail=detail,
        source=source,
    )
    top.finish()
    return spec


def _base_url(top: _Reader) -> str:
    """May be left out, and given at crawl time (--base-url, pricelens.toml)."""
    base = top.take("base_url", str, "")
    if not base:
        return ""
    try:
        return normal_base_url(base)
    except ValueError as exc:
        raise top.fail("base_url", str(exc)) from None


def normal_base_url(url: str) -> str:
    """*url* as the browser writes the URLs it reports (host in lower case and IDNA, without
    a trailing dot or default port; no trailing slash), so they compare; ValueError if not
    an absolute http(s) URL."""
    parts = urlsplit(url)
    try:
        _ = parts.port  # a ValueError for a port that is not a number in range
    except ValueError as exc:
        raise ValueError(f"{url!r}: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{url!r} is not an absolute http(s) URL")
    host = normal_host(url)
    if host is None:
        raise ValueError(f"{url!r}: {parts.hostname!r} is not a valid host name")
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = f"{userinfo}@{host}" if userinfo else host
    return urlunsplit(parts._replace(netloc=netloc)).rstrip("/")


def _shop_host(base_url: str, start_urls) -> str | None:
    """base_url's host, else the first absolute start URL's (see ShopSpec.host)."""
    for url in (base_url, *start_urls):
        if url and urlsplit(url).scheme:
            return normal_host(url)
    return None


def _steps(top: _Reader, key: str, actions: tuple[str, ...]) -> tuple[Step, ...]:
    """[[steps]] (after every page load) or [[setup]] (once per browser, may navigate)."""
    setup = key == "setup"
    steps = []
    for index, table in enumerate(top.take(key, list, [])):
        if not isinstance(table, dict):
            raise top.fail(f"{key}[{index}]", f"must be a table ([[{key}]])")
        reader = _Reader(top.source, table, f"{key}[{index}].")
        action = reader.take("action", str, required=True)
        if not setup and action in WALK_STEPS:
            continue  # read by _walk_steps
        if action == "goto" and not setup:
            raise reader.fail(
                "action", "goto is for [[setup]]: [[steps]] run after every page load"
            )
        if action not in actions:
            known = (*actions, *WALK_STEPS) if not setup else actions
            raise reader.fail("action", f"must be one of {', '.join(known)}")
        if setup and index == 0 and action != "goto":
            raise reader.fail("action", "the setup runs in a new browser: begin with a goto")
        if action == "goto":
            step = Step(action, url=_step_url(reader), where=f"{key}[{index}]")
        else:
            selector = reader.selector("selector", required=True, browser=True)
            value = reader.take("value", str, None)
            if action in VALUE_STEPS and value is None:
                raise reader.fail("value", f"is required for action {action!r}")
            navigates = reader.take("navigates", bool, False)
            if navigates and not (setup and action in NAVIGATING_STEPS):
                where = "a [[setup]] click or select" if setup else "[[setup]] steps"
                raise reader.fail("navigates", f"is only for {where}")
            step = Step(action, selector, value, navigates=navigates, where=f"{key}[{index}]")
        steps.append(step)
        reader.finish()
    return tuple(steps)


def _setup(top: _Reader, base_url: str, start_urls: list[str]) -> tuple[Step, ...]:
    """[[setup]]; a goto must stay on the shop's host where the spec names it."""
    setup = _steps(top, "setup", SETUP_ACTIONS)
    for index, step in enumerate(setup):
        if step.url is not None:
            _check_shop_url(top, f"setup[{index}].url", step.url, base_url, start_urls)
    return setup


def _check_shop_url(top: _Reader, key: str, url: str, base_url: str, start_urls) -> None:
    """A start or setup URL must be a path on the shop or an http(s) URL, and one that names
    a host (https://..., //...) must name the shop's (ShopSpec.host: base_url's, else the
    first absolute start URL's), compared as the crawl compares them."""
    parts = urlsplit(url)
    if (
        parts.scheme not in ("", "http", "https")
        or not url.strip()
        or (parts.scheme and not parts.netloc)  # http:///x, http:/x: no host
        or (parts.netloc and normal_host(urljoin("http://x/", url)) is None)  # a bad host, port
    ):
        raise SpecError(
            f"{top.source}: key '{key}': {url!r}: give a path on the shop or an http(s) URL"
        )
    host = _shop_host(base_url, start_urls)
    if not parts.netloc or host is None:
        return  # a path: on the shop's host wherever that is
    reference = base_url + "/" if base_url else next(u for u in start_urls if urlsplit(u).scheme)
    if normal_host(urljoin(reference, url)) != host:
        raise SpecError(
            f"{top.source}: key '{key}': {url!r} leaves the shop's host {host}; the crawl "
            "opens pages on it only"
        )


def _step_url(reader: _Reader) -> str:
    return reader.take("url", str, required=True)  # checked with the shop's host: _setup


@dataclass(frozen=True)
class _WalkStep:
    index: int
    action: str
    reader: _Reader  # the step's keys but its action


def _walk_steps(top: _Reader) -> dict[str, _WalkStep]:
    """The [[steps]] that say how the walk goes on, by the table each stands for."""
    steps = top.table.get("steps")
    found: dict[str, _WalkStep] = {}
    for index, table in enumerate(steps if isinstance(steps, list) else ()):
        action = table.get("action") if isinstance(table, dict) else None
        if not isinstance(action, str) or action not in WALK_STEPS:
            continue  # _steps reads it, and reports what is wrong with it
        keys = {name: value for name, value in table.items() if name != "action"}
        step = _WalkStep(index, action, _Reader(top.source, keys, f"steps[{index}]."))
        role = WALK_STEPS[action]
        if role in found:
            earlier = found[role]
            what = "way to go on to more items" if role == "pagination" else action
            raise step.reader.fail(
                "action", f"a second {what}: steps[{earlier.index}] is {earlier.action}"
            )
        if role in top.table:
            raise step.reader.fail(
                "action", f"the spec also has a [{role}] table, which says the same: keep one"
            )
        for later in found.values():
            if _WALK_ORDER.index(WALK_STEPS[later.action]) > _WALK_ORDER.index(role):
                raise step.reader.fail(
                    "action",
                    f"{action} must come before the {later.action} at steps[{later.index}] "
                    "(the walk opens the links for_each names, then each page's detail pages, "
                    "then the next page)",
                )
        found[role] = step
    return found


def _pagination(top: _Reader, step: _WalkStep | None) -> Pagination:
    if step is not None:
        reader, strategy, named = step.reader, step.action, f"action {step.action!r}"
    else:
        reader = top.sub("pagination")
        strategy = reader.take("strategy", str, "none")
        named = f"strategy {strategy!r}"
    capped = "max_pages" in reader.table
    pagination = Pagination(
        strategy=strategy,
        selector=reader.selector("selector", browser=True),
        max_pages=reader.take("max_pages", int, 1000),
        done_selector=reader.selector("done_selector", browser=True),
    )
    if pagination.strategy not in PAGINATION_STRATEGIES:
        raise reader.fail("strategy", f"must be one of {', '.join(PAGINATION_STRATEGIES)}")
    if pagination.strategy in ("next_page", "load_more") and not pagination.selector:
        raise reader.fail("selector", f"is required for {named}")
    # a key its strategy does not read is a mistake, not a setting
    if pagination.selector and pagination.strategy not in ("next_page", "load_more"):
        raise reader.fail("selector", f"is for next_page and load_more, not {named}")
    if pagination.done_selector and pagination.strategy != "infinite_scroll":
        raise reader.fail("done_selector", f"is for infinite_scroll, not {named}")
    if capped and strategy == "none":
        raise reader.fail("max_pages", f"is for a listing that goes on, not {named}")
    if pagination.max_pages < 1:
        raise reader.fail("max_pages", "must be at least 1")
    reader.finish()
    return pagination


def _for_each(top: _Reader, step: _WalkStep | None) -> ForEach | None:
    if step is None and "for_each" not in top.table:
        return None
    reader = step.reader if step else top.sub("for_each")
    result = ForEach(reader.selector("selector", required=True, browser=True))
    reader.finish()
    return result


def _detail(top: _Reader, step: _WalkStep | None) -> Detail | None:
    if step is None and "detail" not in top.table:
        return None
    reader = step.reader if step else top.sub("detail")
    fields = _fields(reader.sub("fields"))
    result = Detail(
        fields,
        reader.take("json_ld", bool, True),
        reader.selector("sold_out"),
        reader.take("render", bool, True),
    )
    reader.finish()
    return result


def load_spec(path: str | Path) -> ShopSpec:
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SpecError(f"{path}: cannot read shop spec: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise SpecError(f"{path}: not UTF-8 text (save it as UTF-8): {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{path}: not valid TOML: {exc}") from exc
    return parse_spec(data, str(path))


def builtin_spec_paths() -> dict[str, Path]:
    """The shop specs shipped with pricelens (the demo mall's shops), by file stem."""
    folder = resources.files("crawler") / "shops"
    return {Path(str(p)).stem: Path(str(p)) for p in folder.iterdir() if p.name.endswith(".toml")}


def load_builtin_spec(name: str) -> ShopSpec:
    paths = builtin_spec_paths()
    if name not in paths:
        raise SpecError(f"no built-in shop spec {name!r}; known: {', '.join(sorted(paths))}")
    return load_spec(paths[name])
