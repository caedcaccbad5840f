"""Product photos: downloaded concurrently with the browser's cookies and user agent,
size-capped and time-limited, verified with Pillow and stored once under their sha256 (never
the URL's name).
A photo URL that gave an image before is asked for again with its ETag / Last-Modified: a
304 keeps the stored copy, without a download, a check or a file write."""

from __future__ import annotations

import hashlib
import io
import logging
import os
import threading
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http import client as http_client
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import urllib3
from PIL import Image as PILImage

from crawler.addresses import REDIRECT_STATUS, destination_problem, normal_hostname, read_capped
from crawler.answer_deadline import answer_by, watched
from crawler.browser import CookieHeader
from crawler.errors import ImageRejected
from crawler.identity import FETCH_USER_AGENT
from db.records import Image, PhotoSource

log = logging.getLogger(__name__)

MAX_BYTES = 5 * 1024 * 1024
RETRYABLE_STATUS = {429, 500, 502, 503, 504}
MAX_PIXELS = 25_000_000  # more is a decompression bomb, not a product photo
FORMATS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp", "GIF": "gif"}
MAX_REDIRECTS = 5
PHOTO_WORKERS = 8  # downloads at once per shop crawl
Gate = Callable[[str], str | None]  # why a URL must not be fetched (robots.txt), or None


@dataclass(frozen=True)
class HttpContext:
    """What the browser session sends, so image requests look like its own."""

    user_agent: str = FETCH_USER_AGENT  # the crawl gives the browser's own
    # sent per request as the browser would: Secure ones over https only, each under its path
    cookies: CookieHeader = field(default_factory=CookieHeader)
    # the shop's host name: the only one that gets its cookies, and the only one fetched from
    # a private address (the demo mall runs on loopback, users run shops on their LAN);
    # compared as crawler.addresses.normal_hostname writes it
    shop_host: str | None = None
    timeout: float = 20.0  # to connect, and for each read
    # for each response, from the request to the body's last byte: the socket timeout bounds
    # each read only, and a server that drips a byte now and then would otherwise hold the
    # page, and the shop's crawl, for as long as it likes
    body_timeout: float = 60.0
    retries: int = 3
    backoff_seconds: float = 0.5
    # the environment's proxies (http_proxy, ...), read once per context (a page): reading
    # them scans os.environ, which cost 0.40 -> 0.31 ms of CPU a photo fetch, done per photo
    proxies: dict[str, str] = field(default_factory=urllib.request.getproxies, compare=False)


# Keep-alive connections shared by every photo thread: a new TCP connection per photo cost
# about 0.6 ms of CPU more per photo (client and demo mall together; benchmarks: crawl.json).
# No retries or redirects inside urllib3: fetch_bytes retries and checks every hop itself.
# Their answers' headers must come by the body's deadline (crawler.answer_deadline). Helpers
# walking a shop's listings fetch its photos too: a pool keeps the connections of four
# sessions' workers; one beyond that is closed after its request.
_POOLS = watched(
    urllib3.PoolManager(num_pools=32, maxsize=4 * PHOTO_WORKERS, block=False, retries=False)
)
_PROXIES: dict[str, urllib3.ProxyManager] = {}
_PROXIES_LOCK = threading.Lock()


@dataclass(frozen=True)
class Fetched:
    """A photo URL's answer: its bytes, or None when the server said the copy asked about
    is unchanged (304), and the validators it sent for next time."""

    data: bytes | None
    etag: str | None = None
    last_modified: str | None = None


def fetch_bytes(
    url: str, http: HttpContext, max_bytes: int = MAX_BYTES, gate: Gate | None = None
) -> bytes:
    """GET *url* with the browser's identity (see `fetch`)."""
    data = fetch(url, http, max_bytes, gate=gate).data
    assert data is not None  # only a conditional request is answered without a body
    return data


def fetch(
    url: str,
    http: HttpContext,
    max_bytes: int = MAX_BYTES,
    known: PhotoSource | None = None,
    gate: Gate | None = None,
) -> Fetched:
    """GET *url* with the browser's identity, conditional on *known*'s validators when it
    has any; retried with backoff on 5xx/429, time-outs (a body not in whole within
    `HttpContext.body_timeout` too), dropped connections and bodies cut short. *gate* is
    asked before every request, each redirect hop included: it may wait (the shop's delay),
    and a reason it gives refuses the URL (`ImageRejected`)."""
    for attempt in range(http.retries + 1):
        try:
            return _fetch_once(url, http, max_bytes, known, gate)
        except urllib.error.HTTPError as exc:
            if exc.code not in RETRYABLE_STATUS or attempt == http.retries:
                raise
        except (urllib3.exceptions.HTTPError, http_client.HTTPException, OSError):
            if attempt == http.retries:
                raise
        time.sleep(http.backoff_seconds * 2**attempt)  # backing off for the shop's sake
    raise AssertionError("unreachable")


def _pool_for(target: str, http: HttpContext) -> urllib3.PoolManager:
    """The proxy from the environment (http_proxy, no_proxy...) as urllib would use it."""
    parts = urlsplit(target)
    proxy = http.proxies.get(parts.scheme)
    if not proxy or urllib.request.proxy_bypass(parts.hostname or ""):
        return _POOLS
    with _PROXIES_LOCK:
        if proxy not in _PROXIES:
            _PROXIES[proxy] = watched(
                urllib3.ProxyManager(proxy, maxsize=PHOTO_WORKERS, retries=False)
            )
        return _PROXIES[proxy]


def _fetch_once(
    url: str, http: HttpContext, max_bytes: int, known: PhotoSource | None, gate: Gate | None
) -> Fetched:
    target, validators = url, {}
    if known and known.etag:
        validators["If-None-Match"] = known.etag
    if known and known.last_modified:
        validators["If-Modified-Since"] = known.last_modified
    shop_host = normal_hostname(http.shop_host)
    for _ in range(MAX_REDIRECTS + 1):
        check_destination(target, http, url)
        refusal = gate(target) if gate else None
        if refusal:
            raise ImageRejected(refusal if target == url else f"{url}: redirected to {refusal}")
        headers = {"User-Agent": http.user_agent, "Accept": "image/*", **validators}
        # per hop: a redirect elsewhere gets none, one to plain http no Secure ones
        on_shop = shop_host is not None and normal_hostname(urlsplit(target).hostname) == shop_host
        cookie = http.cookies.for_url(target) if on_shop else ""
        if cookie:
            headers["Cookie"] = cookie
        deadline = time.monotonic() + http.body_timeout
        response = _request(target, headers, http, deadline, url)
        reusable = False
        try:
            location = response.headers.get("Location")
            if response.status in REDIRECT_STATUS and location:
                target = urljoin(target, location)
                continue
            if response.status >= 400:
                raise urllib.error.HTTPError(
                    target, response.status, response.reason or "", response.headers, None
                )
            try:
                data = _read_capped(response, url, max_bytes, deadline)
            except TimeoutError:  # an OSError: retried like a read that timed out
                late = f"{url}: not in whole within {http.body_timeout:g} s"
                raise TimeoutError(late) from None
            reusable = True  # read to its end: the connection can take the next photo
            if response.status == 304 and not validators:
                raise ImageRejected(f"{target}: 304 Not Modified to a request that asked nothing")
            return Fetched(
                None if response.status == 304 else data,
                response.headers.get("ETag"),
                response.headers.get("Last-Modified"),
            )
        finally:
            if not reusable:
                response.close()  # an unread body must not reach the next request
            response.release_conn()
    raise ImageRejected(f"{url}: more than {MAX_REDIRECTS} redirects: not followed")


def _request(target: str, headers: dict, http: HttpContext, deadline: float, url: str):
    """GET *target*; its status line and headers must come by *deadline* (TimeoutError,
    retried like any time-out), the body is read by the caller."""
    with answer_by(deadline) as watch:
        try:
            response = _pool_for(target, http).request(
                "GET",
                target,
                headers=headers,
                redirect=False,
                preload_content=False,
                decode_content=False,  # the bytes as sent: the size cap counts what came
                timeout=urllib3.Timeout(connect=http.timeout, read=http.timeout),
            )
        except (urllib3.exceptions.HTTPError, OSError):
            if not watch.cut:
                raise
            response = None
    if watch.cut:  # headers cut off may read as complete ones: never use them
        if response is not None:
            response.close()
            response.release_conn()
        raise TimeoutError(f"{url}: no answer within {http.body_timeout:g} s")
    return response


def _read_capped(response, url: str, max_bytes: int, deadline: float) -> bytes:
    """The body, at most *max_bytes* (ImageRejected), by *deadline* (TimeoutError)."""
    length = response.headers.get("Content-Length")
    if length and int(length) > max_bytes:
        raise ImageRejected(f"{url}: {length} bytes is over the {max_bytes}-byte cap")
    data = read_capped(response, max_bytes, deadline)
    if len(data) > max_bytes:
        raise ImageRejected(f"{url}: over the {max_bytes}-byte cap")
    return data


def check_destination(target: str, http: HttpContext, url: str | None = None) -> None:
    """Refuse, before connecting, a *target* that is not http(s), or whose host is not the
    shop's and resolves to a non-public address (crawler.addresses). *url* is the image URL
    when *target* is a hop of its redirects."""
    where = target if url in (None, target) else f"{url}: redirected to {target}"
    try:
        problem = destination_problem(target, http.shop_host)
    except (OSError, UnicodeError) as exc:  # DNS trouble: retried like any network failure
        raise urllib.error.URLError(exc) from exc
    if problem:
        raise ImageRejected(f"{where}: {problem}")


def verify_image(data: bytes, url: str) -> tuple[int, int, str]:
    """(width, height, format) of a real, complete image; refuses bombs and junk."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", PILImage.DecompressionBombWarning)
        try:
            with PILImage.open(io.BytesIO(data)) as probe:
                width, height, fmt = probe.width, probe.height, probe.format
                if width * height > MAX_PIXELS:
                    raise ImageRejected(f"{url}: {width}x{height} pixels is a decompression bomb")
                probe.verify()
            with PILImage.open(io.BytesIO(data)) as full:
                full.load()  # verify() does not decode; truncated data only fails here
        except ImageRejected:
            raise
        except (PILImage.DecompressionBombError, PILImage.DecompressionBombWarning) as exc:
            raise ImageRejected(f"{url}: decompression bomb refused ({exc})") from exc
        except Exception as exc:
            raise ImageRejected(f"{url}: not a readable image ({exc})") from exc
    if fmt not in FORMATS:
        raise ImageRejected(f"{url}: image format {fmt} is not accepted")
    return width, height, fmt


def _stored_whole(path: str | Path, size: int) -> bool:
    """Whether a file of *size* bytes is at *path* (a stat: copies are named by their hash,
    so only a cut-short one differs, in size)."""
    try:
        return os.stat(path).st_size == size
    except OSError:
        return False


def store_image_bytes(data: bytes, url: str, images_dir: Path) -> Image:
    width, height, fmt = verify_image(data, url)
    digest = hashlib.sha256(data).hexdigest()
    path = images_dir / digest[:2] / f"{digest}.{FORMATS[fmt]}"
    _write_once(path, data)
    return Image(digest, str(path), width, height, fmt, len(data), url)


# Folders known to exist: one mkdir call per folder and process, not one per photo.
_MADE_FOLDERS: set[Path] = set()


def _write_once(path: Path, data: bytes) -> None:
    """*data* under *path*, unless a complete copy is there already. Written to a file of
    this thread's own and renamed: a crash never leaves a half-written file under the name,
    and one left by an older version (shorter than *data*) is replaced."""
    if _stored_whole(path, len(data)):
        return
    part = path.with_name(f".part-{path.name}-{os.getpid()}-{threading.get_ident()}")
    for attempt in range(2):
        if path.parent not in _MADE_FOLDERS:
            path.parent.mkdir(parents=True, exist_ok=True)
            _MADE_FOLDERS.add(path.parent)
        try:
            handle = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            break
        except FileNotFoundError:  # the folder was removed under a running crawl
            _MADE_FOLDERS.discard(path.parent)
            if attempt:
                raise
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(part, path)
    except BaseException:
        part.unlink(missing_ok=True)
        raise


KnownPhotos = Mapping[str, tuple[PhotoSource, Image]]  # by URL: what it gave last time


@dataclass
class PhotoResults:
    """A page's photos: images and sources (validators) by URL, errors by URL, and how many
    were unchanged since the last crawl (answered 304, not downloaded)."""

    images: dict[str, Image] = field(default_factory=dict)
    sources: dict[str, PhotoSource] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    unchanged: int = 0


class PhotoFetcher:
    """Downloads photos on threads kept for a whole crawl: a page's photos come in while the
    browser opens the next page, instead of holding it up. A URL in *known* is asked for
    only if changed. *gate* is asked before each request, redirect hops included: it may wait
    (the shop's delay) and returns why the URL must not be fetched (robots.txt), or None."""

    def __init__(
        self,
        images_dir: Path,
        workers: int = PHOTO_WORKERS,
        known: KnownPhotos | None = None,
        gate: Gate | None = None,
    ):
        self.images_dir, self.known, self.gate = images_dir, known or {}, gate
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="photos")

    def start(self, urls: Iterable[str], http: HttpContext | None) -> Callable[[], PhotoResults]:
        """Start downloading each distinct URL once; the returned call waits for them and
        gives their `PhotoResults`. *http* may be None only with no URLs."""
        unique = list(dict.fromkeys(u for u in urls if u))
        futures = [(url, self._pool.submit(self._one, url, http)) for url in unique]

        def result() -> PhotoResults:
            results = PhotoResults()
            for url, future in futures:
                image, source, error, unchanged = future.result()
                if error is None:
                    results.images[url], results.sources[url] = image, source
                    results.unchanged += unchanged
                else:
                    results.errors[url] = error
                    log.warning("image refused: %s", error)
            return results

        return result

    def _one(
        self, url: str, http: HttpContext
    ) -> tuple[Image | None, PhotoSource | None, str | None, bool]:
        """(image, source, error, whether unchanged since the last crawl)."""
        known, image = self.known.get(url, (None, None))
        if image is not None and not _stored_whole(image.path, image.bytes):
            known = image = None  # the stored copy is gone: fetched whole again
        try:
            fetched = fetch(url, http, known=known, gate=self.gate)
            if fetched.data is None and known and image:  # 304 (fetch asks only with a copy)
                etag = fetched.etag or known.etag  # a 304 may renew the validators
                modified = fetched.last_modified or known.last_modified
                return image, PhotoSource(url, image.sha256, etag, modified), None, True
            image = store_image_bytes(fetched.data or b"", url, self.images_dir)
            source = PhotoSource(url, image.sha256, fetched.etag, fetched.last_modified)
            return image, source, None, False
        except ImageRejected as exc:
            return None, None, str(exc), False
        except Exception as exc:  # network failure of one image never stops the page
            return None, None, f"{url}: download failed: {exc}", False

    def close(self, cancel: bool = False) -> None:
        """Wait for the downloads under way; with *cancel*, drop those not started yet."""
        self._pool.shutdown(wait=True, cancel_futures=cancel)

    def __enter__(self) -> PhotoFetcher:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def download_images(
    urls: Iterable[str], images_dir: Path, http: HttpContext, workers: int = PHOTO_WORKERS
) -> tuple[dict[str, Image], dict[str, str]]:
    """Download each distinct URL once. Returns (images by URL, error message by URL)."""
    with PhotoFetcher(images_dir, workers) as fetcher:
        results = fetcher.start(urls, http)()
    return results.images, results.errors
