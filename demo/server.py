"""Serving a demo shop over HTTP on loopback, one port per shop, with HTTP-level faults."""

from __future__ import annotations

import hashlib
import logging
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

from demo.faults import AttemptCounter
from demo.shop import DemoShop, Response

log = logging.getLogger(__name__)

_JS_ERROR = b"<script>throw new Error('demo mall fault: js_error');</script>"
# a script that never ends holds the page's renderer: the page never finishes loading, and
# the browser answers nothing more about it
_HANG = b"<script>addEventListener('DOMContentLoaded', () => { for (;;) {} });</script>"
_ERROR_BODIES = {
    500: b"internal server error",
    503: b"service unavailable",
    429: b"too many requests",
}


def _with_script(response: Response, script: bytes) -> Response:
    body = response.body.replace(b"<body>", b"<body>" + script, 1)
    return Response(response.status, response.content_type, body, response.headers)


def _handler_for(
    shop: DemoShop, attempts: AttemptCounter, agents: dict[str, str | None]
) -> type[BaseHTTPRequestHandler]:
    faults = shop.faults

    class ShopHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = f"pricelens-demo-{shop.name}"
        # headers and body go out as two writes; with Nagle on, the body waits ~40 ms for the
        # client's delayed ACK of the headers (90 instead of thousands of pages/s)
        disable_nagle_algorithm = True

        def do_GET(self):
            parts = urlsplit(self.path)
            agents[parts.path] = self.headers.get("User-Agent")
            attempt = attempts.next(parts.path)
            fault = faults.http_fault(shop.name, parts.path, attempt)
            if fault == "drop":
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            extra = (("X-Demo-Fault", fault),) if fault else ()
            if fault == "slow":
                time.sleep(faults.slow_seconds)  # the fault itself: a slow shop
            if fault in ("http500", "http503", "http429"):
                status = int(fault[4:])
                headers = extra + ((("Retry-After", "1"),) if status in (429, 503) else ())
                self._send(Response(status, "text/plain", _ERROR_BODIES[status], headers))
                return
            cookies = dict(
                pair.strip().split("=", 1)
                for pair in (self.headers.get("Cookie") or "").split(";")
                if "=" in pair
            )
            response = shop.handle(parts.path, dict(parse_qsl(parts.query)), cookies)
            if response.content_type.startswith("text/html"):
                for page_fault, script in (("js_error", _JS_ERROR), ("hang", _HANG)):
                    if faults.hits(page_fault, shop.name, parts.path, attempt):
                        response = _with_script(response, script)
            if response.status == 200 and response.content_type.startswith("image/"):
                # like a CDN: a validator for each photo, and 304 to a client that has it
                etag = f'"{hashlib.sha256(response.body).hexdigest()[:20]}"'
                if etag in (self.headers.get("If-None-Match") or ""):
                    response = Response(304, response.content_type, b"", ())
                response = Response(
                    response.status,
                    response.content_type,
                    response.body,
                    (*response.headers, ("ETag", etag)),
                )
            if extra:
                response = Response(
                    response.status, response.content_type, response.body, response.headers + extra
                )
            self._send(response, truncate=fault == "truncate")

        def _send(self, response: Response, truncate: bool = False) -> None:
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            if response.status != 304:  # a 304 has no body, and its length is the photo's
                self.send_header("Content-Length", str(len(response.body)))
            for name, value in response.headers:
                self.send_header(name, value)
            if truncate:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            self.wfile.write(
                response.body[: len(response.body) // 2] if truncate else response.body
            )

        def log_message(self, fmt, *args):
            log.debug("%s %s", shop.name, fmt % args)

    return ShopHandler


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def handle_error(self, request, client_address):
        # browsers drop connections they no longer need (lazy images, navigation)
        log.debug("connection from %s ended early", client_address, exc_info=True)


class ShopServer:
    """A shop on ``127.0.0.1:port`` (port 0 picks a free one) in a background thread."""

    def __init__(self, shop: DemoShop, port: int = 0, host: str = "127.0.0.1"):
        self.shop = shop
        self.attempts = AttemptCounter()
        self.agents: dict[str, str | None] = {}  # path -> User-Agent of its last request
        self.httpd = _QuietServer((host, port), _handler_for(shop, self.attempts, self.agents))
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, name=f"demo-{shop.name}", daemon=True
        )

    @property
    def base_url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> ShopServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(timeout=5)
