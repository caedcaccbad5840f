"""Where pricelens may connect on a shop's behalf, outside the browser (photos, robots.txt).

A shop page or a redirect must not make the crawling machine fetch from its own network (a
cloud metadata service, a router, an admin page). The shop's own host may be private (the
demo mall runs on loopback, users run shops on their LAN); any other host must resolve to
public addresses only. The check happens before connecting, at every redirect hop.
"""

from __future__ import annotations

import ipaddress
import socket
import urllib.error
import urllib.request
from urllib.parse import urljoin, urlsplit

# most specific first: 127.0.0.1 and 169.254.169.254 are is_private too, which says less
NON_PUBLIC = ("unspecified", "loopback", "link_local", "multicast", "reserved", "private")
SCHEMES = ("http", "https")
REDIRECT_STATUS = frozenset({301, 302, 303, 307, 308})


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
    if host == own_host:
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
