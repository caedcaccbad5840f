"""How many listing pages per second the demo mall serves on this machine, against a reference.

Issue target: the mall answers at least 500 listing pages per second, so serving is not what a
crawl benchmark measures. The machine is small and noisy, so next to the absolute figure we
report a ratio against a reference taken in the same run: a trivial handler on the same stdlib
ThreadingHTTPServer stack (HTTP/1.1 keep-alive) that answers a fixed small body. The ratio shows
how much of the raw server capacity the mall's page rendering costs.

Load: one separate process (so that clients do not share the servers' GIL) with --clients
threads, each holding one keep-alive http.client connection per shop on 127.0.0.1 and cycling
through listing pages, --requests requests per measurement, at most 20 s each. Every response
must be 200 with a non-empty body; anything else counts as an error. Each measurement runs 3
times (interleaved); min/median/max pages/s are reported.

    .venv/bin/python benchmarks/mall_throughput.py [--requests N] [--clients N] [--products N]

Defaults: 3000 requests, 4 clients, 10000 products in the big catalog.

Writes benchmarks/results/mall_throughput.json.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import platform
import statistics
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

from demo.mall import Mall, MallSettings, run_mall
from demo.menu import CATEGORIES, PAGE, MenuShop

RESULTS = Path(__file__).resolve().parent / "results" / "mall_throughput.json"
TARGET = 500
REPEATS = 3
TIME_LIMIT_S = 20.0
REFERENCE_BODY = b"<!doctype html><html><body><p>reference page</p></body></html>\n"


class _ReferenceHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(REFERENCE_BODY)))
        self.end_headers()
        self.wfile.write(REFERENCE_BODY)

    def log_message(self, format: str, *args: object) -> None:
        pass


class _ReferenceServer(ThreadingHTTPServer):  # same settings as demo.server._QuietServer
    daemon_threads = True
    request_queue_size = 128


def start_reference(mall: Mall) -> ThreadingHTTPServer:
    """The reference server, its handler tuned like the shops' (keep-alive, Nagle, buffering)."""
    shop_handler = next(iter(mall.servers.values())).httpd.RequestHandlerClass
    tuning = ("protocol_version", "disable_nagle_algorithm", "wbufsize")
    handler = type(
        "ReferenceHandler",
        (_ReferenceHandler,),
        {name: getattr(shop_handler, name) for name in tuning if hasattr(shop_handler, name)},
    )
    server = _ReferenceServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _client(urls: list[str], start: int, count: int, deadline: float, out: list[int]) -> None:
    connections: dict[str, http.client.HTTPConnection] = {}
    ok = errors = size = 0
    for i in range(count):
        if time.perf_counter() > deadline:
            break
        parts = urlsplit(urls[(start + i) % len(urls)])
        conn = connections.get(parts.netloc)
        if conn is None:
            conn = connections[parts.netloc] = http.client.HTTPConnection(parts.netloc, timeout=10)
        try:
            conn.request("GET", f"{parts.path}?{parts.query}" if parts.query else parts.path)
            response = conn.getresponse()
            body = response.read()
            good = response.status == 200 and len(body) > 0
        except (OSError, http.client.HTTPException):
            conn.close()
            del connections[parts.netloc]
            good, body = False, b""
        ok, errors, size = ok + good, errors + (not good), size + len(body)
    for conn in connections.values():
        conn.close()
    out.extend((ok, errors, size))


def load(urls: list[str], clients: int, requests: int) -> dict[str, float]:
    """Runs in the load process: `requests` GETs over `clients` keep-alive threads."""
    results: list[list[int]] = [[] for _ in range(clients)]
    started = time.perf_counter()
    deadline = started + TIME_LIMIT_S
    share = [requests // clients + (c < requests % clients) for c in range(clients)]
    threads = [
        threading.Thread(target=_client, args=(urls, c * 7, share[c], deadline, results[c]))
        for c in range(clients)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    ok, errors, size = (sum(r[i] for r in results) for i in range(3))
    return {
        "ok": ok,
        "errors": errors,
        "bytes": size,
        "seconds": elapsed,
        "pages_per_s": ok / elapsed,
    }


def listing_urls(mall: Mall) -> dict[str, list[str]]:
    """Every listing page of every shop, by shop."""
    urls: dict[str, list[str]] = {}
    for name, server in mall.servers.items():
        shop, base = server.shop, server.base_url
        pages = range(1, shop.page_count + 1)
        if name == "classic":
            urls[name] = [f"{base}/products?page={n}" for n in pages]
        elif name == "spa":
            urls[name] = [f"{base}/api/products?page={n}" for n in pages]
        elif name == "scroll":
            urls[name] = [f"{base}/api/feed?offset={(n - 1) * shop.page_size}" for n in pages]
        elif isinstance(shop, MenuShop):
            urls[name] = [
                f"{base}/c/{slug}?page={n}"
                for label, (slug, _) in CATEGORIES.items()
                for n in range(1, -(-len(shop.in_category(label)) // PAGE) + 1)
            ]
    return urls


def mixed(by_shop: dict[str, list[str]], tail: int | None = None) -> list[str]:
    """Shops take turns, so each gets an equal share; `tail` keeps each shop's last pages."""
    lists = [urls[-tail:] if tail else urls for urls in by_shop.values()]
    longest = max(map(len, lists))
    return [urls[i % len(urls)] for i in range(longest) for urls in lists]


def summary(runs: list[dict[str, float]]) -> dict[str, float]:
    rates = sorted(r["pages_per_s"] for r in runs)
    pages = max(1.0, sum(r["ok"] for r in runs))
    return {
        "min": round(rates[0], 1),
        "median": round(statistics.median(rates), 1),
        "max": round(rates[-1], 1),
        "errors": sum(r["errors"] for r in runs),
        "mean_body_bytes": round(sum(r["bytes"] for r in runs) / pages),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=3000, help="requests per measurement")
    parser.add_argument("--clients", type=int, default=4, help="client threads (keep-alive)")
    parser.add_argument("--products", type=int, default=10_000, help="big catalog size")
    args = parser.parse_args()

    small, big = MallSettings(products=300), MallSettings(products=args.products)
    spawn = multiprocessing.get_context("spawn")
    with (
        run_mall(small) as mall,
        run_mall(big) as big_mall,
        ProcessPoolExecutor(max_workers=1, mp_context=spawn) as loader,
    ):
        reference = start_reference(mall)
        ref_url = f"http://127.0.0.1:{reference.server_address[1]}/"
        for server in (*mall.servers.values(), *big_mall.servers.values()):
            _ = server.shop.offers  # build each assortment before timing (cached)
        by_shop, big_by_shop = listing_urls(mall), listing_urls(big_mall)
        plan: dict[str, list[str]] = {"reference": [ref_url]}
        plan |= {f"mall/{name}": urls for name, urls in by_shop.items()}
        plan["mall/all"] = mixed(by_shop)
        plan["big/all"] = mixed(big_by_shop)
        plan["big/last_pages"] = mixed(big_by_shop, tail=3)
        loader.submit(load, plan["mall/all"], args.clients, 200).result()  # warm up
        runs: dict[str, list[dict[str, float]]] = {name: [] for name in plan}
        for _ in range(REPEATS):  # interleaved, so noise spreads over every measurement
            for name, urls in plan.items():
                runs[name].append(loader.submit(load, urls, args.clients, args.requests).result())
        reference.shutdown()
        reference.server_close()

    figures = {name: summary(r) for name, r in runs.items()}
    ref_median = figures["reference"]["median"]
    for figure in figures.values():
        figure["ratio_to_reference"] = round(figure["median"] / ref_median, 3)
    mall_median = figures["mall/all"]["median"]
    big_medians = [figures[k]["median"] for k in ("big/all", "big/last_pages")]
    errors = sum(f["errors"] for f in figures.values())
    result = {
        "benchmark": "mall_throughput",
        "machine": {
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "settings": {
            "requests_per_measurement": args.requests,
            "clients": args.clients,
            "repeats": REPEATS,
            "time_limit_s": TIME_LIMIT_S,
            "products": small.products,
            "big_products": big.products,
            "pages": {name: len(urls) for name, urls in plan.items()},
        },
        "figures": figures,
        "runs": {
            name: [{k: round(v, 3) for k, v in r.items()} for r in rs] for name, rs in runs.items()
        },
        "ratio_mall_to_reference": round(mall_median / ref_median, 3),
        "target_pages_per_s": TARGET,
        "meets_target": errors == 0 and min(mall_median, *big_medians) >= TARGET,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=1) + "\n")

    print(f"{'measurement':<16}{'min':>9}{'median':>9}{'max':>9}{'ratio':>8}{'errors':>8}  pages/s")
    for name, f in figures.items():
        print(
            f"{name:<16}{f['min']:>9}{f['median']:>9}{f['max']:>9}"
            f"{f['ratio_to_reference']:>8}{f['errors']:>8}"
        )
    print(
        f"mall/all median / reference median = {result['ratio_mall_to_reference']}; "
        f"target {TARGET} pages/s met: {result['meets_target']}  -> {RESULTS}"
    )


if __name__ == "__main__":
    main()
