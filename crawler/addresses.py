"""Where pricelens may connect on a shop's behalf, outside the browser (photos, robots.txt).

A shop page or a redirect must not make the crawling machine fetch from its own network (a
cloud metadata service, a router, an admin page). The shop's own host may be private (the
demo mall runs on loopback, users run shops on their LAN); any other host must resolve to
public addresses only. The check happens before connecting, at every redirect hop.

Hosts compare as browsers report them (`normal_hostname`, `normal_host`): "the shop's host"
is one value for pages, redirects, detail fetches and photos, however a URL spells it.
"""

from __future__ import annotations

import ipaddress
import socket
import time
import urllib.error
import urllib.request
from urllib.parse import urljoin, urlsplit

import idna

# most specific first: 127.0.0.1 and 169.254.169.254 are is_private too, which says less
NON_PUBLIC = ("unspecified", "loopback", "link_local", "multicast", "reserved", "private")
SCHEMES = ("http", "https")
REDIRECT_STATUS = frozenset({301, 302, 303, 307, 308})
DEFAULT_PORTS = {"http": 80, "https": 443}


def normal_hostname(name: str | None) -> str | None:
    """*name* (a URL's hostname) as Chrome reports it, for comparing: an internationalised
    name in IDNA (punycode: 쇼핑.한국 is xn--hp4bo76a.xn--3e0b707e), lower case, without the
    trailing dot of a fully qualified name. None for no name or one IDNA cannot encode."""
    if not name:
        return None
    name = name.rstrip(".").lower()
    if not name.isascii():
        try:  # UTS 46 without transitional mapping, as browsers do (straße stays ß)
            name = idna.encode(name, uts46=True, transitional=False).decode("ascii")
        except idna.IDNAError:
            return None
    return name or None


def normal_host(url: str) -> str | None:
    """*url*'s host and port as a browser writes them, for comparing: `normal_hostname`, and
    ":port" unless it is the scheme's default (http://Shop.Example:80 and https://shop.example.
    are both "shop.example"). None without a host, or with a port that is not a number."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        return None
    host = normal_hostname(parts.hostname)
    if host is None:
        return None
    if ":" in host:
        host = f"[{host}]"  # an IPv6 address
    default = DEFAULT_PORTS.get(parts.scheme.lower())
    return host if port in (None, default) else f"{host}:{port}"


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """urllib would follow a redirect anywhere; callers check each hop, then follow it."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None  # urllib then raises HTTPError with the 3xx status and its Location


# an opener that follows no redirect: a 3xx comes back as HTTPError, its Location unfollowed
NO_REDIRECTS = urllib.request.build_opener(_NoRedirects)


def non_public_kind(text: str) -> str | None:
    """Why *text* (an IP address) is not a public address, or None when it is."""
    address = ipaddress.ip_address(text.split("%", 1)[0])  # without an IPv6 scope (%eth0)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped  # ::ffff:10.0.0.5 is 10.0.0.5
    for kind in NON_PUBLIC:
        if getattr(address, f"is_{kind}"):
            return kind.replace("_", "-")
    # e.g. 100.64.0.0/10, shared address space, where some clouds put their metadata service
    return None if address.is_global else "not globally routable"


def destination_problem(target: str, own_host: str | None) -> str | None:
    """Why *target* must not be fetched, or None when it may: not http(s), no host, or a host
    other than *own_host* with a non-public address. Every address of the name counts, since
    the connection may use any of them. Raises OSError or UnicodeError when the name does not
    resolve (a network failure, not a refusal). urllib resolves the name again to connect: a
    name whose answer changes in between is not caught."""
    parts = urlsplit(target)
    if parts.scheme not in SCHEMES:
        return "only http(s) URLs are fetched"
    host = parts.hostname
    if not host:
        return "the URL has no host"
    name = normal_hostname(host)
    if name is not None and name == normal_hostname(own_host):
        return None
    for *_, sockaddr in socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP):
        address = sockaddr[0]
        kind = non_public_kind(address)
        if kind:
            named = "" if address == host else f" for {host}"
            return (
                f"private address {address} ({kind}){named}, not the shop's own host: not fetched"
            )
    return None


def redirect_target(exc: urllib.error.HTTPError, current: str) -> str | None:
    """Where a 3xx answer from NO_REDIRECTS points (absolute), or None for any other error.
    The answer is closed either way; the caller checks the target before following it."""
    location = exc.headers.get("Location") if exc.code in REDIRECT_STATUS else None
    exc.close()
    return urljoin(current, location) if location else None


def read_capped(response, max_bytes: int, deadline: float) -> bytes:
    """*response*'s body, or its first *max_bytes* + 1 bytes when it is longer (so the caller
    sees it is over), read in chunks by *deadline* (`time.monotonic`): TimeoutError after
    it. The socket timeout alone bounds only each read, so a server trickling a byte now
    and then could otherwise hold a fetch for as long as it likes."""
    data = bytearray()
    while len(data) <= max_bytes and (chunk := response.read1(max_bytes + 1 - len(data))):
        data += chunk
        if time.monotonic() > deadline:
            raise TimeoutError("the body did not come in whole within the time allowed")
    return bytes(data)
