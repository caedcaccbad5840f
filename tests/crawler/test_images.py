"""Product photos: verified with Pillow, capped in size, stored once under their sha256."""

from __future__ import annotations

import contextlib
import hashlib
import io
import re
import socket
import struct
import threading
import urllib.error
import zlib
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
import urllib3
from PIL import Image as PILImage

from crawler import addresses
from crawler.addresses import non_public_kind
from crawler.browser import Cookie, CookieHeader
from crawler.errors import ImageRejected
from crawler.images import (
    MAX_BYTES,
    MAX_PIXELS,
    MAX_REDIRECTS,
    HttpContext,
    PhotoFetcher,
    download_images,
    fetch_bytes,
    store_image_bytes,
    verify_image,
)


def picture(
    fmt: str = "PNG", size: tuple[int, int] = (28, 28), mode: str = "RGB", color=(200, 30, 60)
) -> bytes:
    buffer = io.BytesIO()
    image = PILImage.new(mode, size, color if mode == "RGB" else 0)
    for x in range(min(size)):  # a diagonal, so the image is not a single colour
        image.putpixel((x, x), (0, 0, 0) if mode == "RGB" else 1)
    image.save(buffer, fmt, **({"optimize": True} if fmt == "PNG" else {}))
    return buffer.getvalue()


def big_bitmap(width: int, height: int) -> bytes:
    """A real, complete 1-bit PNG of the given size: tiny on disk, huge decoded."""
    buffer = io.BytesIO()
    PILImage.new("1", (width, height)).save(buffer, "PNG", optimize=True)
    return buffer.getvalue()


def with_ihdr_size(png: bytes, width: int, height: int) -> bytes:
    """*png* whose header claims another size, with the header's CRC fixed up."""
    assert png[12:16] == b"IHDR"
    fields = struct.pack(">II", width, height) + png[24:29]
    chunk = b"IHDR" + fields
    return png[:16] + fields + struct.pack(">I", zlib.crc32(chunk)) + png[33:]


def stored_files(images_dir: Path) -> list[Path]:
    return sorted(p for p in images_dir.rglob("*") if p.is_file()) if images_dir.exists() else []


PNG = picture()


def shop(**fields) -> HttpContext:
    """The context of a crawl whose shop is the local test server (a private host)."""
    return HttpContext(shop_host="127.0.0.1", **fields)


def jar(*cookies: str | Cookie) -> CookieHeader:
    """The browser's cookies: "name=value" for a plain one (any scheme, any path)."""
    return CookieHeader(
        tuple(c if isinstance(c, Cookie) else Cookie(*c.split("=", 1)) for c in cookies)
    )


# -- storing -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "extension"), [("PNG", "png"), ("JPEG", "jpg"), ("GIF", "gif"), ("WEBP", "webp")]
)
def test_store_image_bytes_stores_under_the_hash(tmp_path, fmt, extension):
    data = picture(fmt, (40, 30))
    digest = hashlib.sha256(data).hexdigest()
    image = store_image_bytes(data, "http://shop.test/a.img", tmp_path / "images")
    expected = tmp_path / "images" / digest[:2] / f"{digest}.{extension}"
    assert image.sha256 == digest
    assert Path(image.path) == expected
    assert expected.read_bytes() == data
    assert (image.width, image.height, image.format) == (40, 30, fmt)
    assert image.bytes == len(data)
    assert image.source_url == "http://shop.test/a.img"
    assert stored_files(tmp_path / "images") == [expected]


@pytest.mark.parametrize("times", [2, 3])
def test_storing_the_same_bytes_again_keeps_one_file(tmp_path, times):
    images_dir = tmp_path / "images"
    results = [
        store_image_bytes(PNG, f"http://shop.test/{n}.png", images_dir) for n in range(times)
    ]
    assert len({r.path for r in results}) == 1
    assert len({r.sha256 for r in results}) == 1
    assert stored_files(images_dir) == [Path(results[0].path)]
    # each call still reports the URL it was given
    assert [r.source_url for r in results] == [f"http://shop.test/{n}.png" for n in range(times)]


def test_different_images_get_different_files(tmp_path):
    a = store_image_bytes(picture(color=(1, 2, 3)), "u1", tmp_path)
    b = store_image_bytes(picture(color=(4, 5, 6)), "u2", tmp_path)
    assert a.sha256 != b.sha256
    assert len(stored_files(tmp_path)) == 2


def test_a_half_written_file_under_the_name_is_replaced(tmp_path):
    """A copy shorter than the photo (left by a crash of an older version) is not kept."""
    digest = hashlib.sha256(PNG).hexdigest()
    path = tmp_path / digest[:2] / f"{digest}.png"
    path.parent.mkdir(parents=True)
    path.write_bytes(PNG[:10])
    image = store_image_bytes(PNG, "u", tmp_path)
    assert Path(image.path) == path
    assert path.read_bytes() == PNG
    assert stored_files(tmp_path) == [path]  # no part file left beside it


def test_storing_goes_on_after_the_images_folder_is_removed(tmp_path):
    images_dir = tmp_path / "images"
    store_image_bytes(picture(color=(1, 2, 3)), "u1", images_dir)
    for path in stored_files(images_dir):
        path.unlink()
    for folder in images_dir.iterdir():
        folder.rmdir()
    images_dir.rmdir()
    again = store_image_bytes(picture(color=(1, 2, 3)), "u1", images_dir)
    assert Path(again.path).read_bytes() == picture(color=(1, 2, 3))


def test_a_failed_write_leaves_no_file(tmp_path, monkeypatch):
    def full_disk(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("crawler.images.os.replace", full_disk)
    with pytest.raises(OSError, match="No space left"):
        store_image_bytes(PNG, "u", tmp_path)
    assert stored_files(tmp_path) == []


def test_threads_storing_the_same_photo_keep_one_file(tmp_path):
    barrier = threading.Barrier(8)

    def store() -> str:
        barrier.wait()
        return store_image_bytes(PNG, "u", tmp_path).path

    results: list[str] = []
    threads = [threading.Thread(target=lambda: results.append(store())) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(results)) == 1
    assert stored_files(tmp_path) == [Path(results[0])]
    assert Path(results[0]).read_bytes() == PNG


@pytest.mark.parametrize(
    "url",
    [
        "../../etc/passwd",
        "http://shop.test/../../etc/passwd",
        "http://shop.test/img/..%2F..%2Fetc%2Fpasswd",
        "/etc/passwd",
        "http://shop.test/a/b/c/evil.php?x=../../y",
    ],
)
def test_url_never_influences_the_stored_name(tmp_path, url):
    images_dir = tmp_path / "images"
    image = store_image_bytes(PNG, url, images_dir)
    digest = hashlib.sha256(PNG).hexdigest()
    assert Path(image.path) == images_dir / digest[:2] / f"{digest}.png"
    assert Path(image.path).resolve().is_relative_to(images_dir.resolve())
    assert [p.relative_to(tmp_path) for p in stored_files(tmp_path)] == [
        Path("images") / digest[:2] / f"{digest}.png"
    ]


# -- refusing ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not an image at all",
        b"<html><body>404</body></html>",
        bytes(range(256)) * 8,
        PNG[:8],
        PNG[: len(PNG) // 2],
        PNG[:-20],
        PNG[:40] + bytes(b ^ 0xFF for b in PNG[40:60]) + PNG[60:],
        picture("JPEG", (64, 64))[:300],
    ],
    ids=[
        "empty",
        "text",
        "html",
        "noise",
        "png-signature-only",
        "png-half",
        "png-no-end",
        "png-flipped-bytes",
        "jpeg-truncated",
    ],
)
def test_corrupt_or_truncated_bytes_are_rejected(tmp_path, data):
    with pytest.raises(ImageRejected, match=re.escape("http://shop.test/x.png")):
        store_image_bytes(data, "http://shop.test/x.png", tmp_path / "images")
    assert stored_files(tmp_path / "images") == []


@pytest.mark.parametrize("fmt", ["BMP", "TIFF", "ICO"])
def test_readable_but_unaccepted_format_is_rejected(tmp_path, fmt):
    with pytest.raises(ImageRejected, match=f"format {fmt} is not accepted"):
        store_image_bytes(picture(fmt, (16, 16)), "u", tmp_path)
    assert stored_files(tmp_path) == []


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda: big_bitmap(5000, 5001), id="real-just-over-the-cap"),
        pytest.param(lambda: big_bitmap(6000, 6000), id="real-over-the-cap"),
        pytest.param(lambda: big_bitmap(10000, 10000), id="real-over-pillow-warning"),
        pytest.param(lambda: with_ihdr_size(PNG, 20000, 20000), id="header-20000x20000"),
        pytest.param(lambda: with_ihdr_size(PNG, 6000, 6000), id="header-6000x6000"),
        pytest.param(lambda: with_ihdr_size(PNG, 1, 2**31 - 1), id="header-1-by-huge"),
    ],
)
def test_decompression_bomb_is_rejected(tmp_path, make):
    with pytest.raises(ImageRejected, match="decompression bomb"):
        store_image_bytes(make(), "http://shop.test/bomb.png", tmp_path / "images")
    assert stored_files(tmp_path / "images") == []


def test_image_of_exactly_the_pixel_cap_is_accepted(tmp_path):
    assert MAX_PIXELS == 5000 * 5000
    image = store_image_bytes(big_bitmap(5000, 5000), "u", tmp_path)
    assert (image.width, image.height, image.format) == (5000, 5000, "PNG")


def test_header_patch_changes_only_the_size():
    patched = with_ihdr_size(PNG, 40, 50)
    with PILImage.open(io.BytesIO(patched)) as probe:
        assert probe.size == (40, 50)
    assert verify_image(PNG, "u") == (28, 28, "PNG")


# -- downloading -------------------------------------------------------------------------

GOOD_JPEG = picture("JPEG", (32, 24))
OVERSIZED = MAX_BYTES + 1


class Handler(BaseHTTPRequestHandler):
    routes: ClassVar[dict[str, bytes]] = {}
    redirects: ClassVar[dict[str, str]] = {}  # path -> Location of a 302
    seen: ClassVar[list[tuple[str, dict]]] = []
    gate: ClassVar[threading.Event] = threading.Event()  # /gate/... answers once it is set
    dripping: ClassVar[threading.Event] = threading.Event()  # /drip/... stops once it is set

    def log_message(self, *args):  # keep test output clean
        pass

    def do_GET(self):
        self.seen.append((self.path, dict(self.headers)))
        try:
            if self.path.startswith("/stream/"):
                # no Content-Length: the body ends when the connection closes
                body = b"x" * int(self.path.rsplit("/", 1)[1])
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(body)
                self.close_connection = True
                return
            if self.path.startswith(("/etag/", "/dated/", "/liar/")):
                self._validated()
                return
            if self.path.startswith("/drip/"):
                self._drip()
                return
            if self.path.startswith("/header-drip/"):
                self._drip_headers()
                return
            if self.path.startswith("/gate/"):
                self.gate.wait(30)
                self.path = "/img/" + self.path.removeprefix("/gate/")
            if self.path in self.redirects:
                self.send_response(302)
                self.send_header("Location", self.redirects[self.path])
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if self.path.startswith("/blob/"):
                body = b"x" * int(self.path.rsplit("/", 1)[1])
            elif self.path.endswith("passwd"):
                body = PNG  # whatever the path says, the bytes decide the name
            elif self.path in self.routes:
                body = self.routes[self.path]
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client stopped reading an over-cap body, as it should

    def _drip(self):
        """A photo whose bytes come one every 50 ms: every read gets an answer in time, so
        only a deadline for the whole body ends the download."""
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(PNG)))
        self.end_headers()
        for index in range(len(PNG)):
            if self.dripping.wait(0.05):  # the server's pace, not a wait in the test
                return
            self.wfile.write(PNG[index : index + 1])
            self.wfile.flush()

    def _drip_headers(self):
        """An answer whose header lines never end: a byte every 50 ms, each read answered in
        time, so only a deadline for the whole answer ends the request."""
        self.wfile.write(b"HTTP/1.1 200 OK\r\nX-Padding: ")
        while not self.dripping.wait(0.05):  # the server's pace, not a wait in the test
            self.wfile.write(b"x")
            self.wfile.flush()

    def _validated(self):
        """/etag/NAME and /dated/NAME: /img/NAME with an ETag or a Last-Modified, answered
        304 when the request holds it; /liar/NAME answers 304 to anything."""
        kind, _, name = self.path[1:].partition("/")
        body = self.routes["/img/" + name]
        header, value, asked = {
            "etag": ("ETag", f'"{hashlib.sha256(body).hexdigest()[:12]}"', "If-None-Match"),
            "dated": ("Last-Modified", "Mon, 02 Nov 2026 10:00:00 GMT", "If-Modified-Since"),
            "liar": ("ETag", '"x"', "If-None-Match"),
        }[kind]
        unchanged = kind == "liar" or self.headers.get(asked) == value
        self.send_response(304 if unchanged else 200)
        self.send_header(header, value)
        if not unchanged:
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not unchanged:
            self.wfile.write(body)


@contextlib.contextmanager
def serving(handler, host: str = "127.0.0.1"):
    """*handler* served on *host* at a free port; yields the base URL."""
    httpd = ThreadingHTTPServer((host, 0), handler)
    httpd.daemon_threads = True
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield f"http://{host}:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


@pytest.fixture(scope="module")
def base_url():
    with serving(Handler) as url:
        yield url


@pytest.fixture
def server(base_url):
    """The local image server with its routes reset and its request log emptied."""
    Handler.routes = {
        "/img/good.png": PNG,
        "/img/good.jpg": GOOD_JPEG,
        "/img/corrupt.png": b"\x89PNG\r\n\x1a\n" + b"garbage" * 20,
        "/img/huge.png": b"\x00" * OVERSIZED,
        "/img/bomb.png": with_ihdr_size(PNG, 20000, 20000),
    }
    Handler.redirects = {}
    Handler.seen = []
    return base_url


def test_a_pages_photos_come_in_while_the_crawl_moves_on(server, tmp_path):
    """start() hands back at once: the photos download on the fetcher's threads (here one is
    held by the server until after start returned) and the result waits for them all."""
    Handler.gate = threading.Event()
    urls = [f"{server}/gate/good.png", f"{server}/img/good.jpg", f"{server}/img/missing.png"]
    with PhotoFetcher(tmp_path / "images") as fetcher:
        result = fetcher.start(urls + urls[:1], shop(timeout=5, retries=0))
        Handler.gate.set()  # a start() that waited would have timed out on this photo
        results = result()
    images, errors = results.images, results.errors
    assert set(images) == set(urls[:2]) and set(errors) == {urls[2]}
    assert images[urls[0]].sha256 == hashlib.sha256(PNG).hexdigest()
    assert [path for path, _ in Handler.seen].count("/gate/good.png") == 1  # each URL once


def fetch_page(images_dir: Path, urls: list[str], known=None):
    with PhotoFetcher(images_dir, known=known) as fetcher:
        return fetcher.start(urls, shop(timeout=5, retries=0))()


def as_known(results) -> dict:
    return {url: (results.sources[url], results.images[url]) for url in results.images}


def headers_of(path: str) -> list[dict]:
    return [headers for seen, headers in Handler.seen if seen == path]


@pytest.mark.parametrize(
    ("kind", "asked"), [("etag", "If-None-Match"), ("dated", "If-Modified-Since")]
)
def test_a_photo_unchanged_since_the_last_crawl_is_not_downloaded_again(
    server, tmp_path, kind, asked
):
    url = f"{server}/{kind}/good.png"
    first = fetch_page(tmp_path / "images", [url])
    assert first.unchanged == 0 and first.sources[url].image_sha256 == first.images[url].sha256
    second = fetch_page(tmp_path / "images", [url], as_known(first))
    assert second.unchanged == 1 and second.images[url] == first.images[url]
    assert second.sources[url] == first.sources[url] and not second.errors
    sent = headers_of(f"/{kind}/good.png")
    assert asked not in sent[0] and asked in sent[1]  # the first crawl had nothing to ask with


def test_a_changed_photo_is_downloaded_with_its_new_validator(server, tmp_path):
    url = f"{server}/etag/good.png"
    first = fetch_page(tmp_path / "images", [url])
    Handler.routes["/img/good.png"] = GOOD_JPEG  # the shop put up a new photo
    second = fetch_page(tmp_path / "images", [url], as_known(first))
    assert second.unchanged == 0
    assert second.images[url].sha256 == hashlib.sha256(GOOD_JPEG).hexdigest()
    assert second.sources[url].etag != first.sources[url].etag
    assert Path(second.images[url].path).read_bytes() == GOOD_JPEG


def test_a_known_photo_whose_file_is_gone_is_fetched_whole_again(server, tmp_path):
    url = f"{server}/etag/good.png"
    first = fetch_page(tmp_path / "images", [url])
    Path(first.images[url].path).unlink()  # a user cleaned the folder up
    second = fetch_page(tmp_path / "images", [url], as_known(first))
    assert second.unchanged == 0 and Path(second.images[url].path).read_bytes() == PNG
    assert "If-None-Match" not in headers_of("/etag/good.png")[1]


def test_a_304_to_a_request_that_asked_nothing_is_refused_by_url(server, tmp_path):
    url = f"{server}/liar/good.png"
    results = fetch_page(tmp_path / "images", [url, f"{server}/img/good.jpg"])
    assert "304 Not Modified to a request that asked nothing" in results.errors[url]
    assert url in results.errors[url] and len(results.images) == 1  # the page's others come


def test_download_images_keeps_good_ones_and_reports_bad_ones(server, tmp_path):
    urls = {
        name: f"{server}/img/{name}"
        for name in ("good.png", "good.jpg", "corrupt.png", "missing.png", "huge.png", "bomb.png")
    }
    images_dir = tmp_path / "images"
    images, errors = download_images(urls.values(), images_dir, shop(timeout=10))
    assert set(images) == {urls["good.png"], urls["good.jpg"]}
    assert set(errors) == {
        urls["corrupt.png"],
        urls["missing.png"],
        urls["huge.png"],
        urls["bomb.png"],
    }
    for url, message in errors.items():
        assert url in message
    assert "404" in errors[urls["missing.png"]]
    assert "cap" in errors[urls["huge.png"]]
    assert "decompression bomb" in errors[urls["bomb.png"]]
    assert "not a readable image" in errors[urls["corrupt.png"]]
    png, jpg = images[urls["good.png"]], images[urls["good.jpg"]]
    assert (png.format, png.width, png.height, png.source_url) == ("PNG", 28, 28, urls["good.png"])
    assert (jpg.format, jpg.width, jpg.height) == ("JPEG", 32, 24)
    assert Path(png.path).read_bytes() == PNG
    assert Path(jpg.path).read_bytes() == GOOD_JPEG
    assert stored_files(images_dir) == sorted([Path(png.path), Path(jpg.path)])


def test_download_images_fetches_each_url_once_and_skips_empty(server, tmp_path):
    url = f"{server}/img/good.png"
    images, errors = download_images([url, "", url, None, url], tmp_path, shop())
    assert list(images) == [url]
    assert errors == {}
    assert [path for path, _ in Handler.seen] == ["/img/good.png"]


def test_download_images_with_nothing_to_do(tmp_path):
    assert download_images([], tmp_path, HttpContext()) == ({}, {})
    assert download_images(["", None], tmp_path, HttpContext()) == ({}, {})


def test_same_bytes_at_two_urls_are_one_file(server, tmp_path):
    Handler.routes["/img/copy.png"] = PNG
    urls = [f"{server}/img/good.png", f"{server}/img/copy.png"]
    images, errors = download_images(urls, tmp_path, shop())
    assert errors == {}
    assert images[urls[0]].path == images[urls[1]].path
    assert len(stored_files(tmp_path)) == 1


def test_unreachable_host_is_an_error_not_an_exception(tmp_path):
    # a port nobody listens on: bind one, note it, close it
    probe = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port = probe.server_address[1]
    probe.server_close()
    url = f"http://127.0.0.1:{port}/x.png"
    images, errors = download_images([url], tmp_path, shop(timeout=5))
    assert images == {}
    assert url in errors[url]
    assert "download failed" in errors[url]


@pytest.mark.parametrize(
    "path", ["/../../etc/passwd", "/img/../../../etc/passwd", "/img/..%2F..%2Fetc%2Fpasswd"]
)
def test_traversal_url_is_stored_under_the_hash(server, tmp_path, path):
    images_dir = tmp_path / "images"
    url = server + path
    images, errors = download_images([url], images_dir, shop())
    assert errors == {}
    digest = hashlib.sha256(PNG).hexdigest()
    assert Path(images[url].path) == images_dir / digest[:2] / f"{digest}.png"
    assert [p.relative_to(tmp_path) for p in stored_files(tmp_path)] == [
        Path("images") / digest[:2] / f"{digest}.png"
    ]


def test_fetch_bytes_sends_the_browser_identity(server):
    http = shop(user_agent="Mozilla/5.0 test", cookies=jar("session=abc", "cart=1"))
    assert fetch_bytes(f"{server}/img/good.png", http) == PNG
    ((_, headers),) = Handler.seen
    assert headers["User-Agent"] == "Mozilla/5.0 test"
    assert headers["Cookie"] == "session=abc; cart=1"
    assert headers["Accept"] == "image/*"


def test_cookies_never_go_to_another_host(server, loopback_is_public):
    http = HttpContext(cookies=jar("session=abc"), shop_host="shop.example")
    assert fetch_bytes(f"{server}/img/good.png", http) == PNG
    ((_, headers),) = Handler.seen
    assert "Cookie" not in headers


def test_cookies_stay_behind_when_a_redirect_leaves_the_shop(server, loopback_is_public):
    other = server.replace("127.0.0.1", "localhost")  # another host name, the same server
    Handler.redirects["/img/moved.png"] = f"{other}/img/good.png"
    assert fetch_bytes(f"{server}/img/moved.png", shop(cookies=jar("session=abc"))) == PNG
    (first, first_headers), (second, second_headers) = Handler.seen
    assert (first, second) == ("/img/moved.png", "/img/good.png")
    assert first_headers["Cookie"] == "session=abc"
    assert "Cookie" not in second_headers


def test_a_secure_cookie_never_goes_over_plain_http_and_each_stays_under_its_path(server):
    """As a browser sends them, hop by hop: the Secure session cookie of an https shop is
    not sent to a photo (or a redirect hop) on plain http, nor a cookie outside its path."""
    Handler.redirects["/img/moved.png"] = "/elsewhere/passwd"  # passwd: served as PNG
    cookies = jar(
        "lang=ko",
        Cookie("sid", "SECRET", secure=True),
        Cookie("cart", "7", path="/img"),
        Cookie("account", "1", path="/account"),
    )
    assert fetch_bytes(f"{server}/img/moved.png", shop(cookies=cookies)) == PNG
    (first, first_headers), (second, second_headers) = Handler.seen
    assert (first, second) == ("/img/moved.png", "/elsewhere/passwd")
    assert first_headers["Cookie"] == "lang=ko; cart=7"
    assert second_headers["Cookie"] == "lang=ko"


def test_the_shops_host_is_its_host_however_a_photo_spells_it(server):
    """The shop's host name is compared as the browser reports it: a photo on it gets its
    cookies and may be on its private address, whatever the letters' case or a final dot."""
    http = HttpContext(cookies=jar("session=abc"), shop_host="LocalHost.")
    url = server.replace("127.0.0.1", "LOCALHOST") + "/img/good.png"
    assert fetch_bytes(url, http) == PNG
    ((_, headers),) = Handler.seen
    assert headers["Cookie"] == "session=abc"


@pytest.mark.parametrize(
    ("path", "late"),
    [
        ("/drip/good.png", "not in whole within 1 s"),  # the body, a byte every 50 ms
        ("/header-drip/good.png", "no answer within 1 s"),  # headers that never end
    ],
)
def test_a_photo_that_drips_in_times_out_and_is_retried(server, tmp_path, path, late):
    """The socket timeout bounds each read only; the headers and the whole body must come
    within body_timeout, else TimeoutError, retried (here once) and then recorded like any
    time-out. The fetch never hangs, and the pool still serves the next photo."""
    Handler.dripping = threading.Event()
    url = f"{server}{path}"
    try:
        slow = shop(timeout=5, body_timeout=1, retries=1, backoff_seconds=0)
        with pytest.raises(TimeoutError, match=re.escape(late)) as caught:
            fetch_bytes(url, slow)
        assert str(caught.value).startswith(url)
        assert [seen for seen, _ in Handler.seen] == [path] * 2
        images, errors = download_images([url], tmp_path, replace(slow, retries=0))
        assert images == {} and "download failed" in errors[url] and late in errors[url]
        assert fetch_bytes(f"{server}/img/good.png", replace(slow, body_timeout=30)) == PNG
    finally:
        Handler.dripping.set()


@pytest.fixture
def handshake_drip():
    """An https:// address whose server answers a TLS hello with a record header and then
    a byte every 50 ms: each read is answered in time, the handshake never ends."""
    stop = threading.Event()
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []

    def serve():
        with contextlib.suppress(OSError):
            conn, _ = listener.accept()
            accepted.append(conn)
            conn.recv(4096)  # the client hello
            conn.sendall(b"\x16\x03\x03\x40\x00")  # a 16 KiB handshake record follows...
            while not stop.wait(0.05):  # the server's pace, not a wait in the test
                conn.sendall(b"\x00")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        listener.close()
        for conn in accepted:
            conn.close()
        thread.join(5)


def test_a_photo_server_dripping_its_tls_handshake_times_out(handshake_drip):
    """The answer's deadline runs from the connection: a handshake that drips ends with the
    same time-out as headers that drip (Python alone bounds a handshake only by the socket
    timeout, here 5 s: a ReadTimeoutError after 5 s)."""
    url = f"{handshake_drip}/img/good.png"
    slow = shop(timeout=5, body_timeout=0.3, retries=0)
    with pytest.raises(TimeoutError, match=re.escape("no answer within 0.3 s")):
        fetch_bytes(url, slow)


def refusing(prefix: str, asked: list[str]):
    """A photo gate that refuses URLs under *prefix* and logs what it was asked."""

    def gate(url: str) -> str | None:
        asked.append(url)
        return f"{url}: disallowed" if prefix in url else None

    return gate


def test_the_gate_is_asked_at_every_redirect_hop(server, tmp_path):
    """A photo that redirects into a path robots.txt disallows is refused at that hop,
    before it is requested; the refusal names the photo and where it led."""
    Handler.redirects["/img/moved.png"] = "/private/good.png"
    url, asked = f"{server}/img/moved.png", []
    with PhotoFetcher(tmp_path / "images", gate=refusing("/private/", asked)) as fetcher:
        results = fetcher.start([url], shop(retries=0))()
    assert results.images == {}
    assert results.errors[url] == f"{url}: redirected to {server}/private/good.png: disallowed"
    assert asked == [url, f"{server}/private/good.png"]
    assert [path for path, _ in Handler.seen] == ["/img/moved.png"]


def test_a_photo_the_gate_refuses_is_never_requested(server):
    url, asked = f"{server}/private/good.png", []
    with pytest.raises(ImageRejected, match="disallowed"):
        fetch_bytes(url, shop(), gate=refusing("/private/", asked))
    assert asked == [url] and Handler.seen == []


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://127.0.0.1/x.png"])
def test_only_http_images_are_fetched(url):
    with pytest.raises(ImageRejected, match="only http"):
        fetch_bytes(url, HttpContext())


def test_fetch_bytes_sends_no_cookie_header_without_cookies(server):
    fetch_bytes(f"{server}/img/good.png", shop())
    ((_, headers),) = Handler.seen
    assert "Cookie" not in headers


@pytest.mark.parametrize(
    ("kind", "size", "max_bytes", "accepted"),
    [
        ("blob", 100, 100, True),
        ("blob", 101, 100, False),
        ("blob", 5000, 100, False),
        ("stream", 100, 100, True),
        ("stream", 101, 100, False),
        ("stream", 5000, 100, False),
        ("blob", 0, 100, True),
    ],
)
def test_fetch_bytes_caps_the_body(server, kind, size, max_bytes, accepted):
    url = f"{server}/{kind}/{size}"
    if accepted:
        assert fetch_bytes(url, shop(), max_bytes=max_bytes) == b"x" * size
    else:
        with pytest.raises(ImageRejected, match="cap") as caught:
            fetch_bytes(url, shop(), max_bytes=max_bytes)
        assert url in str(caught.value)


# -- private addresses (SSRF) ------------------------------------------------------------


class ElsewhereHandler(Handler):
    """Another private host on this machine (127.0.0.2): anything it is asked for counts."""

    routes: ClassVar[dict[str, bytes]] = {"/img/good.png": PNG}
    redirects: ClassVar[dict[str, str]] = {}
    seen: ClassVar[list[tuple[str, dict]]] = []


@pytest.fixture
def elsewhere():
    """A server on 127.0.0.2: loopback too, but not the shop's host (all of 127/8 is lo)."""
    ElsewhereHandler.seen = []
    with serving(ElsewhereHandler, "127.0.0.2") as url:
        yield url


@pytest.fixture
def loopback_is_public(monkeypatch):
    """Pretend loopback is the internet, which cannot be reached from here: the rest of the
    code path (resolving, connecting, redirects, headers) is the real one."""
    real = addresses.non_public_kind
    monkeypatch.setattr(
        addresses,
        "non_public_kind",
        lambda address: None if address == "127.0.0.1" else real(address),
    )


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.2", "loopback"),
        ("::1", "loopback"),
        ("10.0.0.5", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("fd00:ec2::254", "private"),  # AWS's IPv6 metadata service
        ("::ffff:10.0.0.5", "private"),  # IPv4-mapped
        ("169.254.169.254", "link-local"),  # the cloud metadata service
        ("fe80::1%lo", "link-local"),
        ("100.100.100.200", "not globally routable"),  # shared space; Alibaba's metadata
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("93.184.215.14", None),
        ("2606:4700::1111", None),
    ],
)
def test_non_public_addresses_are_named(address, kind):
    assert non_public_kind(address) == kind


@pytest.mark.parametrize(
    "url",
    [
        "{elsewhere}/img/good.png",
        "http://localhost:{port}/img/good.png",  # a name, resolved: loopback
        "http://[::1]:{port}/img/good.png",
        "http://0.0.0.0:{port}/img/good.png",
        "http://2130706434:{port}/img/good.png",  # 127.0.0.2 written as one number
    ],
)
def test_a_private_address_off_the_shop_is_refused_without_connecting(elsewhere, url):
    url = url.format(elsewhere=elsewhere, port=elsewhere.rsplit(":", 1)[1])
    with pytest.raises(ImageRejected, match="private address") as caught:
        fetch_bytes(url, shop(retries=0))
    assert str(caught.value).startswith(url)
    assert "not the shop's own host: not fetched" in str(caught.value)
    assert ElsewhereHandler.seen == []


def test_the_shops_own_private_host_is_fetched(server):
    assert fetch_bytes(f"{server}/img/good.png", shop()) == PNG  # the demo mall's case


def test_no_shop_host_means_no_private_address(server):
    with pytest.raises(ImageRejected, match=r"private address 127\.0\.0\.1 \(loopback\)"):
        fetch_bytes(f"{server}/img/good.png", HttpContext())
    assert Handler.seen == []


def test_a_redirect_to_a_private_address_is_refused(server, elsewhere):
    Handler.redirects["/img/moved.png"] = f"{elsewhere}/img/good.png"
    url = f"{server}/img/moved.png"
    with pytest.raises(ImageRejected) as caught:
        fetch_bytes(url, shop())
    message = str(caught.value)
    assert message.startswith(f"{url}: redirected to {elsewhere}/img/good.png: private address")
    assert [path for path, _ in Handler.seen] == ["/img/moved.png"]  # asked once, not retried
    assert ElsewhereHandler.seen == []


def test_every_hop_is_checked(server, elsewhere):
    # shop -> shop -> 127.0.0.2: the second hop is the one refused
    Handler.redirects["/img/a.png"] = "/img/b.png"
    Handler.redirects["/img/b.png"] = f"{elsewhere}/img/good.png"
    with pytest.raises(ImageRejected, match=r"redirected to .* private address 127\.0\.0\.2"):
        fetch_bytes(f"{server}/img/a.png", shop())
    assert [path for path, _ in Handler.seen] == ["/img/a.png", "/img/b.png"]
    assert ElsewhereHandler.seen == []


def test_a_redirect_within_the_shop_is_followed(server):
    Handler.redirects["/img/moved.png"] = "/img/good.png"
    assert fetch_bytes(f"{server}/img/moved.png", shop()) == PNG


@pytest.mark.parametrize(
    "location", ["file:///etc/passwd", "data:image/png;base64,AAAA", "ftp://127.0.0.1/x.png"]
)
def test_a_redirect_to_another_scheme_is_refused(server, location):
    Handler.redirects["/img/moved.png"] = location
    with pytest.raises(ImageRejected, match=f"redirected to {re.escape(location)}: only http"):
        fetch_bytes(f"{server}/img/moved.png", shop())


def test_a_redirect_loop_ends(server):
    Handler.redirects["/img/loop.png"] = "/img/loop.png"
    with pytest.raises(ImageRejected, match=f"more than {MAX_REDIRECTS} redirects"):
        fetch_bytes(f"{server}/img/loop.png", shop(retries=0))
    assert len(Handler.seen) == MAX_REDIRECTS + 1


def test_download_images_reports_a_refused_private_address(server, elsewhere, tmp_path):
    good, private = f"{server}/img/good.png", f"{elsewhere}/img/good.png"
    images_got, errors = download_images([good, private], tmp_path, shop())
    assert list(images_got) == [good]
    assert list(errors) == [private]
    assert errors[private].startswith(f"{private}: private address 127.0.0.2 (loopback)")
    assert ElsewhereHandler.seen == []


class KeepAliveHandler(Handler):
    """Handler's routes over HTTP/1.1, counting the connections clients open."""

    protocol_version = "HTTP/1.1"
    connections: ClassVar[int] = 0

    def setup(self):
        super().setup()
        type(self).connections += 1


@pytest.fixture
def keep_alive(server):
    KeepAliveHandler.connections = 0
    with serving(KeepAliveHandler) as url:
        yield url


def test_photos_share_a_kept_alive_connection(keep_alive):
    for _ in range(5):
        assert fetch_bytes(f"{keep_alive}/img/good.png", shop()) == PNG
    assert KeepAliveHandler.connections == 1


def test_a_connection_left_mid_body_is_not_reused(keep_alive):
    once = shop(retries=0)  # a retry on a fresh connection would hide a reused dirty one
    assert fetch_bytes(f"{keep_alive}/img/good.png", once) == PNG
    with pytest.raises(ImageRejected, match="cap"):
        fetch_bytes(f"{keep_alive}/blob/5000", once, max_bytes=100)
    with pytest.raises(urllib.error.HTTPError, match="404"):
        fetch_bytes(f"{keep_alive}/img/missing.png", once)
    # the unread rest of the 5,000 bytes and the 404 page never reach the next photo
    assert fetch_bytes(f"{keep_alive}/img/good.jpg", once) == GOOD_JPEG
    assert KeepAliveHandler.connections == 3


class ProxyHandler(BaseHTTPRequestHandler):
    """A forward proxy that answers every request itself, with PNG."""

    seen: ClassVar[list[str]] = []

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.seen.append(self.path)  # a proxy is asked for the absolute URL
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(PNG)))
        self.end_headers()
        self.wfile.write(PNG)


def test_photos_go_through_the_proxy_the_environment_names(monkeypatch):
    for name in ("no_proxy", "NO_PROXY", "HTTP_PROXY", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    photo = "http://127.0.0.1:9/img/good.png"  # nothing listens on port 9: only a proxy answers
    ProxyHandler.seen = []
    with serving(ProxyHandler) as proxy:
        monkeypatch.setenv("http_proxy", proxy)
        through_proxy = shop(retries=0)  # the environment is read when the context is made
        monkeypatch.delenv("http_proxy")
        assert fetch_bytes(photo, through_proxy) == PNG
        assert ProxyHandler.seen == [photo]
        with pytest.raises(urllib3.exceptions.HTTPError):
            fetch_bytes(photo, shop(retries=0))  # made without a proxy: straight to port 9
