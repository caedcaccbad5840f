"""robots.txt, against a real local web server whose /robots.txt answer each test chooses."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from crawler import addresses
from crawler.engine import ShopCrawler
from crawler.identity import FETCH_USER_AGENT
from crawler.images import HttpContext
from crawler.robots import MAX_BYTES, MAX_REDIRECTS, RobotsPolicy, robots_url
from crawler.spec import load_builtin_spec
from crawler.steps import MAX_CRAWL_DELAY, Browser, Pacer


class Site:
    """A shop's web server: routes by path, a request log, and paths that hang until released."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[int, dict[str, str], bytes]] = {}
        self.hanging: set[str] = set()  # no answer at all
        self.stalling: set[str] = set()  # headers and a first rule, then nothing
        self.release = threading.Event()
        self.requests: list[tuple[str, str | None]] = []  # (path, User-Agent)
        self.base = ""

    def robots(self, text: str | bytes, status: int = 200) -> None:
        body = text.encode() if isinstance(text, str) else text
        self.routes["/robots.txt"] = (status, {"Content-Type": "text/plain"}, body)

    def robots_requests(self) -> int:
        return sum(1 for path, _ in self.requests if path == "/robots.txt")

    def url(self, path: str) -> str:
        return self.base + path


def handler_for(site: Site) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            site.requests.append((self.path, self.headers.get("User-Agent")))
            if self.path in site.hanging:
                site.release.wait()  # set at teardown, so the server can shut down
                return
            if self.path in site.stalling:
                self.send_response(200)
                self.send_header("Content-Length", "1000")
                self.end_headers()
                self.wfile.write(b"User-agent: *\nDisallow: /private/\n")
                self.wfile.flush()
                site.release.wait()
                return
            status, headers, body = site.routes.get(self.path, (404, {}, b"not found"))
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@contextlib.contextmanager
def serve_site(host: str = "127.0.0.1") -> Iterator[Site]:
    shop = Site()
    httpd = ThreadingHTTPServer((host, 0), handler_for(shop))
    httpd.daemon_threads = True
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    shop.base = f"http://{host}:{httpd.server_address[1]}"
    try:
        yield shop
    finally:
        shop.release.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join()


@pytest.fixture
def site() -> Iterator[Site]:
    with serve_site() as shop:
        yield shop


@pytest.fixture
def elsewhere() -> Iterator[Site]:
    """Another host on this machine (127.0.0.2): loopback too, but not the shop's host."""
    with serve_site("127.0.0.2") as other:
        yield other


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_disallow_rules_are_honoured(site):
    site.robots("User-agent: *\nDisallow: /private/\n")
    policy = RobotsPolicy()
    refused = site.url("/private/x")
    assert not policy.allowed(refused)
    reason = policy.why_not(refused)
    assert refused in reason and site.url("/robots.txt") in reason
    assert "\n" not in reason
    assert policy.allowed(site.url("/products"))
    assert policy.why_not(site.url("/products")) is None
    assert policy.allowed(site.url("/private"))  # the rule is a prefix with its slash


def test_robots_txt_is_fetched_with_our_user_agent(site):
    site.robots("User-agent: *\nAllow: /\n")
    RobotsPolicy().allowed(site.url("/"))
    assert site.requests == [("/robots.txt", FETCH_USER_AGENT)]


def test_a_group_for_our_agent_beats_the_star_group(site):
    site.robots("User-agent: pricelens\nDisallow: /\n\nUser-agent: *\nAllow: /\n")
    assert not RobotsPolicy().allowed(site.url("/products"))
    assert not RobotsPolicy().allowed(site.url("/"))
    assert RobotsPolicy(user_agent="otherbot").allowed(site.url("/products"))


@pytest.mark.parametrize(
    ("rules", "path", "allowed"),
    [
        ("Disallow: /*.json$", "/api/x.json", False),
        ("Disallow: /*.json$", "/api/x.json?page=2", True),  # $ ends the whole path+query
        ("Disallow: /*.json$", "/api/x.jsonp", True),
        ("Disallow: /*.json$", "/api/x.html", True),
        ("Disallow: /search*q=", "/search?q=shoes", False),
        ("Disallow: /search*q=", "/search/all?page=2&q=shoes", False),
        ("Disallow: /search*q=", "/search?page=2", True),
        ("Disallow: /*/print", "/products/12/print", False),
        ("Disallow: /*/print", "/print", True),
        ("Disallow: /shop/\nAllow: /shop/public/", "/shop/cart", False),
        ("Disallow: /shop/\nAllow: /shop/public/", "/shop/public/list", True),
        ("Disallow: /shop/\nAllow: /shop/public/", "/shop/publicity", False),
        ("Allow: /shop/public/\nDisallow: /shop/", "/shop/public/list", True),  # order-free
        ("Disallow: /\nAllow: /$", "/", True),
        ("Disallow: /\nAllow: /$", "/products", False),
        ("Disallow:", "/anything", True),  # an empty Disallow allows everything
    ],
)
def test_patterns_and_longest_match(site, rules, path, allowed):
    site.robots(f"User-agent: *\n{rules}\n")
    assert RobotsPolicy().allowed(site.url(path)) is allowed


@pytest.mark.parametrize("status", [404, 410, 401, 403])
def test_a_missing_or_forbidden_robots_txt_allows_everything(site, status):
    site.robots("User-agent: *\nDisallow: /\n", status=status)
    policy = RobotsPolicy()
    assert policy.allowed(site.url("/private/x"))
    assert policy.crawl_delay(site.url("/")) is None


@pytest.mark.parametrize("status", [500, 502, 503, 429])
def test_a_failing_robots_txt_disallows_everything(site, status, caplog):
    site.robots("User-agent: *\nAllow: /\n", status=status)
    policy = RobotsPolicy()
    assert not policy.allowed(site.url("/products"))
    reason = policy.why_not(site.url("/products"))
    assert "unreachable" in reason and str(status) in reason and "disallowed" in reason
    assert site.url("/robots.txt") in reason
    assert "127.0.0.1" in caplog.text and str(status) in caplog.text


def test_a_hanging_robots_txt_times_out_and_disallows_everything(site, caplog):
    site.hanging.add("/robots.txt")
    policy = RobotsPolicy(timeout=0.5)
    url = site.url("/products")
    assert not policy.allowed(url)
    reason = policy.why_not(url)
    assert url in reason and "timed out" in reason and "disallowed" in reason
    assert "timed out" in caplog.text
    assert site.robots_requests() == 1  # the failure is remembered, not retried per page


def test_a_robots_txt_that_stalls_mid_body_times_out(site):
    site.stalling.add("/robots.txt")
    policy = RobotsPolicy(timeout=0.5)
    assert not policy.allowed(site.url("/products"))  # half a file is not the site's rules
    assert "timed out" in policy.why_not(site.url("/products"))


def test_connection_refused_disallows_everything(caplog):
    url = f"http://127.0.0.1:{closed_port()}/products"
    policy = RobotsPolicy(timeout=2)
    assert not policy.allowed(url)
    reason = policy.why_not(url)
    assert url in reason and "unreachable" in reason and "disallowed" in reason
    assert "127.0.0.1" in caplog.text


def test_a_redirected_robots_txt_is_followed(site):
    site.routes["/robots.txt"] = (301, {"Location": "/real-robots.txt"}, b"")
    site.routes["/real-robots.txt"] = (200, {}, b"User-agent: *\nDisallow: /private/\n")
    policy = RobotsPolicy()
    assert not policy.allowed(site.url("/private/x"))
    assert policy.allowed(site.url("/products"))


def test_a_hanging_robots_txt_times_out_within_the_time_the_question_brings(site):
    site.hanging.add("/robots.txt")
    policy = RobotsPolicy()  # 5 s by default; the shop's politeness.robots_timeout wins
    reason = policy.why_not(site.url("/products"), timeout=0.2)
    assert "timed out after 0.2 s" in reason and "disallowed" in reason


# -- redirects: each hop checked like a photo's (private addresses, schemes, a hop cap) ------


def test_a_redirect_to_another_private_host_is_refused_and_disallows(site, elsewhere, caplog):
    target = elsewhere.url("/robots.txt")
    site.routes["/robots.txt"] = (302, {"Location": target}, b"")
    elsewhere.robots("User-agent: *\nAllow: /\n")
    policy = RobotsPolicy(backoff_seconds=0.01)
    url = site.url("/products")
    reason = policy.why_not(url)
    assert reason.startswith(f"{url}: {site.url('/robots.txt')} unreachable")
    assert f"its redirect to {target} is refused" in reason
    assert "private address 127.0.0.2 (loopback)" in reason and "disallowed" in reason
    assert elsewhere.requests == []  # never contacted
    assert site.robots_requests() == 1  # a refusal is final, not retried
    logged = [r.getMessage() for r in caplog.records if r.name == "crawler.robots"]
    assert len(logged) == 1, logged
    assert "refused" in logged[0] and "everything there is disallowed" in logged[0]


def test_a_redirect_through_the_shop_then_off_it_is_refused_at_that_hop(site, elsewhere):
    site.routes["/robots.txt"] = (301, {"Location": "/moved/robots.txt"}, b"")
    site.routes["/moved/robots.txt"] = (307, {"Location": elsewhere.url("/r.txt")}, b"")
    policy = RobotsPolicy()
    assert not policy.allowed(site.url("/products"))
    assert [path for path, _ in site.requests] == ["/robots.txt", "/moved/robots.txt"]
    assert elsewhere.requests == []


def assert_redirect_followed(site: Site, target: Site) -> None:
    """*site*'s robots.txt redirects to *target*'s, which disallows /private/: its rules hold,
    fetched once."""
    target.robots("User-agent: *\nDisallow: /private/\n")
    site.routes["/robots.txt"] = (302, {"Location": target.url("/robots.txt")}, b"")
    policy = RobotsPolicy()
    assert not policy.allowed(site.url("/private/x"))
    assert policy.allowed(site.url("/products"))
    assert target.robots_requests() == 1


def test_a_redirect_to_the_same_host_on_another_port_is_followed(site):
    with serve_site() as other_port:  # 127.0.0.1 too: the shop's own host
        assert_redirect_followed(site, other_port)


def test_a_redirect_to_another_public_host_is_followed(site, elsewhere, monkeypatch):
    # the internet cannot be reached from here: pretend 127.0.0.2 is public; resolving,
    # connecting and following are the real code path
    real = addresses.non_public_kind
    monkeypatch.setattr(
        addresses, "non_public_kind", lambda a: None if a == "127.0.0.2" else real(a)
    )
    assert_redirect_followed(site, elsewhere)


@pytest.mark.parametrize(
    "location", ["file:///etc/passwd", "ftp://127.0.0.1/robots.txt", "data:text/plain,Allow: /"]
)
def test_a_redirect_to_another_scheme_is_refused_and_disallows(site, location):
    site.routes["/robots.txt"] = (302, {"Location": location}, b"")
    reason = RobotsPolicy().why_not(site.url("/products"))
    assert f"its redirect to {location} is refused: only http(s)" in reason
    assert "disallowed" in reason


def test_a_redirect_loop_ends_and_counts_as_no_robots_txt(site, caplog):
    site.routes["/robots.txt"] = (302, {"Location": "/robots.txt"}, b"")
    policy = RobotsPolicy()
    assert policy.allowed(site.url("/products"))  # as Google does after five hops
    assert site.robots_requests() == MAX_REDIRECTS + 1
    assert f"more than {MAX_REDIRECTS} redirects" in caplog.text


def test_robots_txt_is_fetched_once_per_host(site):
    site.robots("User-agent: *\nDisallow: /private/\n")
    policy = RobotsPolicy()
    for n in range(50):
        policy.allowed(site.url(f"/products?page={n}"))
        policy.why_not(site.url(f"/private/{n}"))
        policy.crawl_delay(site.url(f"/p/{n}"))
    assert site.robots_requests() == 1
    assert len(site.requests) == 1


def test_concurrent_first_questions_fetch_robots_txt_once(site):
    site.robots("User-agent: *\nDisallow: /private/\n")
    policy = RobotsPolicy()
    start = threading.Barrier(16)

    def ask(n: int) -> bool:
        start.wait()
        return policy.allowed(site.url(f"/private/{n}" if n % 2 else f"/products/{n}"))

    with ThreadPoolExecutor(max_workers=16) as pool:
        answers = list(pool.map(ask, range(16)))
    assert answers == [n % 2 == 0 for n in range(16)]
    assert site.robots_requests() == 1


def test_each_host_and_port_has_its_own_robots_txt(site):
    site.robots("User-agent: *\nDisallow: /\n")
    other = site.base.replace("127.0.0.1", "localhost")
    policy = RobotsPolicy()
    assert not policy.allowed(site.url("/a"))
    assert not policy.allowed(f"{other}/a")
    assert not policy.allowed(site.url("/b").replace("http://", "HTTP://"))
    assert site.robots_requests() == 2


@pytest.mark.parametrize(
    ("text", "delay"),
    [
        ("User-agent: *\nCrawl-delay: 2.5\n", 2.5),
        ("User-agent: *\nCrawl-delay: 1\n\nUser-agent: pricelens\nCrawl-delay: 4\n", 4.0),
        ("User-agent: otherbot\nCrawl-delay: 9\n", None),
        ("User-agent: *\nDisallow: /x\n", None),
        ("User-agent: *\nCrawl-delay: soon\n", None),
    ],
)
def test_crawl_delay(site, text, delay):
    site.robots(text)
    assert RobotsPolicy().crawl_delay(site.url("/products")) == delay


def test_crawl_delay_is_none_where_robots_txt_is_unreachable(site):
    site.robots("User-agent: *\nCrawl-delay: 3\n", status=503)
    assert RobotsPolicy().crawl_delay(site.url("/")) is None


def test_a_byte_order_mark_and_bad_utf8_do_not_hide_rules(site):
    site.robots(b"\xef\xbb\xbfUser-agent: *\n# caf\xe9 \xff\nDisallow: /private/\n")
    assert not RobotsPolicy().allowed(site.url("/private/x"))


def test_rules_past_the_size_cap_are_ignored(site):
    head = b"User-agent: *\nDisallow: /early/\n"
    padding = b"# padding padding padding\n" * (MAX_BYTES // 26 + 1)
    site.robots(head + padding + b"Disallow: /late/\n")
    policy = RobotsPolicy()
    assert not policy.allowed(site.url("/early/x"))
    assert policy.allowed(site.url("/late/x"))


def test_a_rule_cut_by_the_size_cap_is_dropped_not_shortened(site):
    head = b"User-agent: *\n"
    padding = b"#" * (MAX_BYTES - len(head) - len(b"Disallow: /") - 1) + b"\n"
    site.robots(head + padding + b"Disallow: /private/\n")  # the cap falls after "Disallow: /"
    assert RobotsPolicy().allowed(site.url("/products"))


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "javascript:alert(1)",
        "data:text/html,<h1>hi</h1>",
        "ftp://127.0.0.1/x",
        "mailto:shop@example.com",
        "/relative/path",
        "http:///no-host",
    ],
)
@pytest.mark.parametrize("obey", [True, False])
def test_only_http_urls_can_be_allowed(url, obey):
    policy = RobotsPolicy(obey=obey)
    assert not policy.allowed(url)
    reason = policy.why_not(url)
    assert url in reason and "\n" not in reason
    assert policy.crawl_delay(url) is None


def test_obey_false_allows_everything_without_asking(site):
    site.robots("User-agent: *\nDisallow: /\nCrawl-delay: 10\n")
    policy = RobotsPolicy(obey=False)
    assert policy.allowed(site.url("/private/x"))
    assert policy.why_not(site.url("/")) is None
    assert policy.crawl_delay(site.url("/")) is None
    assert policy.allowed(f"http://127.0.0.1:{closed_port()}/x")
    assert site.requests == []


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://Shop.Example:80/a?b=1#c", "http://shop.example/robots.txt"),
        ("https://shop.example:443/x", "https://shop.example/robots.txt"),
        ("https://shop.example:8443/x", "https://shop.example:8443/robots.txt"),
        ("http://user:secret@shop.example/x", "http://shop.example/robots.txt"),
        ("http://[::1]:8000/x", "http://[::1]:8000/robots.txt"),
    ],
)
def test_robots_url_is_one_per_scheme_host_and_port(url, expected):
    assert robots_url(url) == expected


@pytest.mark.parametrize(
    ("own_delay", "crawl_delay", "held"),
    [(0.0, "2.5", 2.5), (4.0, "2.5", 4.0), (0.0, "3600", MAX_CRAWL_DELAY)],
    ids=["robots-slower", "spec-slower", "held-to-the-cap"],
)
def test_a_shops_pages_keep_the_sites_crawl_delay(site, own_delay, crawl_delay, held):
    """The spec's delay_seconds is a floor; a longer Crawl-delay (up to a cap) wins."""
    site.robots(f"User-agent: *\nCrawl-delay: {crawl_delay}\n")
    spec = load_builtin_spec("classic").with_base_url(site.base)
    spec = replace(spec, politeness=replace(spec.politeness, delay_seconds=own_delay))
    browser = Browser(spec, driver=None, robots=RobotsPolicy())
    browser.guard(site.url("/products?page=1"), "goto")
    assert browser.pacer.delay == held


def test_photos_on_the_shops_host_obey_its_robots_txt_and_share_its_pacer(site, tmp_path):
    class CountingPacer(Pacer):
        waits = 0

        def wait(self) -> None:
            CountingPacer.waits += 1

    site.robots("User-agent: *\nDisallow: /images/private/\n")
    spec = load_builtin_spec("classic").with_base_url(site.base)
    crawler = ShopCrawler(
        spec, None, tmp_path, print, print, RobotsPolicy(), pacer=CountingPacer(0.0)
    )
    refused = crawler._photo_gate(site.url("/images/private/1.png"))
    assert refused and "disallowed" in refused and "/images/private/1.png" in refused
    assert crawler._photo_gate(site.url("/images/2.png")) is None
    assert CountingPacer.waits == 1  # the allowed one waited its turn with the pages
    # another host (a CDN) is neither asked for its robots.txt nor paced as the shop
    assert crawler._photo_gate("http://cdn.pricelens-test.invalid/images/private/3.png") is None
    assert CountingPacer.waits == 1 and site.robots_requests() == 1


def test_a_photo_on_the_shops_host_obeys_robots_txt_however_its_url_spells_the_host(site, tmp_path):
    """The shop is http://localhost:PORT; its photos written with capitals, a final dot or
    no base_url at all are the shop's all the same: robots.txt is asked, and at every
    redirect hop, so a photo that redirects into a disallowed path is not requested."""
    site.robots("User-agent: *\nDisallow: /images/private/\n")
    site.routes["/images/moved.png"] = (302, {"Location": "/images/private/3.png"}, b"")
    shop = site.base.replace("127.0.0.1", "localhost")
    spec = load_builtin_spec("classic")
    spec = replace(spec, base_url="", start_urls=(f"{shop}/products?page=1",))  # no base_url
    # no retries: the name with a dot may not resolve here, and that needs no backoff
    crawler = ShopCrawler(spec, None, tmp_path, print, print, RobotsPolicy(retries=0))
    spelled = shop.replace("localhost", "LocalHost")
    for url in (f"{spelled}/images/private/1.png", f"{shop}/images/private/2.png"):
        refused = crawler._photo_gate(url)
        assert refused and "disallowed" in refused, url
    with_dot = shop.replace("localhost", "localhost.")  # robots.txt asked there, or unreachable
    assert crawler._photo_gate(f"{with_dot}/images/private/4.png")
    http = HttpContext(shop_host="localhost", retries=0)
    moved = f"{shop}/images/moved.png"
    results = crawler._photos.start([f"{spelled}/images/private/1.png", moved], http)()
    crawler._photos.close()
    assert results.images == {}
    assert "disallowed" in results.errors[f"{spelled}/images/private/1.png"]
    assert results.errors[moved].startswith(f"{moved}: redirected to {shop}/images/private/3.png")
    asked = [path for path, _ in site.requests]
    assert "/images/moved.png" in asked and not [p for p in asked if "/private/" in p]
