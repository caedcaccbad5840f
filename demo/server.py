"""Serving a demo shop over HTTP on loopback, one port per shop."""

from __future__ import annotations

import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

from demo.shop import DemoShop

log = logging.getLogger(__name__)


def _handler_for(shop: DemoShop) -> type[BaseHTTPRequestHandler]:
    class ShopHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = f"pricelens-demo-{shop.name}"

        def do_GET(self):
            parts = urlsplit(self.path)
            response = shop.handle(parts.path, dict(parse_qsl(parts.query)))
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(response.body)))
            for name, value in response.headers:
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(response.body)

        def log_message(self, fmt, *args):
            log.debug("%s %s", shop.name, fmt % args)

    return ShopHandler


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # browsers drop connections they no longer need (lazy images, navigation)
        log.debug("connection from %s ended early", client_address, exc_info=True)


class ShopServer:
    """A shop on ``127.0.0.1:port`` (port 0 picks a free one) in a background thread."""

    def __init__(self, shop: DemoShop, port: int = 0, host: str = "127.0.0.1"):
        self.shop = shop
        self.httpd = _QuietServer((host, port), _handler_for(shop))
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
