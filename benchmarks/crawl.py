"""Crawl throughput on the demo mall: offers/s, pages/s and peak memory (crawler + browsers) of
`pipeline.crawling.crawl_shops` for --sessions 1, 2, 4, against two references over the same
pages, measured in the same run:

- navigation only, the browser's floor: one browser per shop, in turn, from the same
  launcher as sessions=1 (the next browser starts while a shop is walked, the last one quits
  in the background), that opens the same listing pages and requests the scroll shop's
  detail pages the way the crawl does (fetched from the listing, not rendered:
  `[detail] render = false`), with no extraction, no storage and no image downloads;
- naive per-element extraction: one WebDriver call per item and field, timed per page on a
  sample (classic's first 3 pages, spa's first page) against our one page_source parse.

Targets (issue, 2-core machine): crawl time (sessions=1) <= 1.5x navigation only; per-element
extraction >= 10x slower per page than ours; sessions=2 >= 1.6x faster than sessions=1.

The mall runs in a child process (photos pre-rendered) so that it shares neither the GIL nor
the memory figure. Memory: the peak sums of VmRSS (shared pages, such as Chromium's code, count
once per process, so this overstates) and of RssAnon (private memory) over this process and its
descendants (chromedriver, Chromium and its helpers), sampled every 0.2 s, as is their CPU time:
CPU seconds per wall second show how much of the machine a run uses, and crawl/nav in CPU time
is less disturbed by other load than in wall time. load_avg_1m above the CPU count at the end of
a measurement means something else ran too: rerun that size. The mall's own CPU time is
reported apart (mall_cpu_s); sessions=1's CPU time, the mall's included, divided by the number
of cores bounds what any number of sessions can reach (cpu_bound_speedup_max).

    .venv/bin/python benchmarks/crawl.py [--sizes default,large] [--sessions 1,2,4]
                                         [--repeats N] [--workdir DIR] [--quick]

Sizes: default (300 products, about 210 offers per shop; every run 3 times, interleaved, the
median kept) and large (2,860 products, about 2,000 per shop; once unless --repeats says).
crawl_vs_nav_pairs divides each crawl by the reference run beside it. --quick is a smoke run on
tiny malls that writes nothing. --workdir puts the crawls' homes elsewhere than the system
temp folder; the cost of creating a file there is measured before and after each size (storage).
Writes benchmarks/results/crawl.json; sizes not run this time keep their figures there.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path

from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from crawler.browser import BrowserConfig, BrowserSession
from crawler.extract import extract_items
from crawler.launcher import BrowserLauncher
from crawler.spec import FieldRule, ShopSpec, load_builtin_spec
from crawler.steps import POLL_S
from crawler.unrendered import FETCH_SCRIPT
from demo.mall import MallSettings, build_shops, run_mall
from demo.menu import CATEGORIES, PAGE, MenuShop
from demo.shop import DemoShop
from pipeline.crawling import CrawlOptions, crawl_shops
from pipeline.settings import Home

RESULTS = Path(__file__).resolve().parent / "results" / "crawl.json"
SIZES = {"default": 300, "large": 2860}
QUICK_SIZES = {"default": 80, "large": 160}
REPEATS = {"default": 3, "large": 1}  # each figure is the run with the median wall time
TARGETS = {"crawl_vs_nav_max": 1.5, "per_element_ratio_min": 10.0, "speedup_2_min": 1.6}
WAIT_S = 15.0  # every browser wait in the references
OURS_REPEATS = 5
SCROLL_SPEC = load_builtin_spec("scroll")
SCROLL = "window.scrollBy(0, -Math.min(200, window.scrollY)); window.scrollTo(0, 1e9)"


def _serve_mall(products: int) -> None:
    """Child process: serve the mall, print its base URLs, stop when stdin closes."""
    with run_mall(MallSettings(products=products)) as mall:
        for server in mall.servers.values():  # render every photo now, not while timed
            for offer in server.shop.offers:
                server.shop.handle(server.shop.photo_path(offer.sku), {})
        print(json.dumps(mall.base_urls), flush=True)
        sys.stdin.read()


@contextmanager
def mall_process(products: int) -> Iterator[tuple[dict[str, str], int]]:
    child = subprocess.Popen(
        [sys.executable, __file__, "--serve-mall", str(products)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        yield json.loads(child.stdout.readline()), child.pid
    finally:
        child.stdin.close()
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


TICK_S = 1 / os.sysconf("SC_CLK_TCK")
MEMORY_KEYS = ("VmRSS:", "RssAnon:")
# where the measured crawls keep their homes (database, photos); None: the system temp folder
WORKDIR: str | None = None


def new_file_ms(folder: str, files: int = 500) -> float:
    """Milliseconds to create one empty file in a fresh folder under *folder*. Each photo is a
    new file, and on this machine's disk that cost varies with the folder and the hour
    (0.02 to 1.5 ms a file), enough to move a large crawl by seconds."""
    with tempfile.TemporaryDirectory(dir=folder) as probe:
        started = time.perf_counter()
        for n in range(files):
            os.close(os.open(os.path.join(probe, str(n)), os.O_WRONLY | os.O_CREAT, 0o644))
        return round((time.perf_counter() - started) * 1e3 / files, 3)


def sample_tree(exclude: int, cpu: dict[int, float]) -> dict[str, int]:
    """VmRSS and RssAnon sums (kB) over this process and its descendants except *exclude*'s
    subtree; stores each descendant's own CPU seconds so far in *cpu*, by pid."""
    children: dict[int, list[int]] = {}
    times: dict[int, float] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:  # "pid (comm) state ppid ... utime stime": comm may hold spaces and ")"
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # the process ended while we looked
        pid = int(stat.parent.name)
        children.setdefault(int(fields[1]), []).append(pid)
        times[pid] = (int(fields[11]) + int(fields[12])) * TICK_S
    totals, todo = dict.fromkeys(MEMORY_KEYS, 0), [os.getpid()]
    while todo:
        pid = todo.pop()
        if pid == exclude:
            continue
        todo.extend(children.get(pid, []))
        if pid != os.getpid():
            cpu[pid] = times[pid]
        try:
            lines = Path(f"/proc/{pid}/status").read_text().splitlines()
        except OSError:
            continue
        for key, _, value in (line.partition("\t") for line in lines):
            if key in totals:
                totals[key] += int(value.split()[0])
    return totals


def own_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@contextmanager
def watch(exclude: int) -> Iterator[dict[str, float]]:
    """Samples every 0.2 s; on exit the yielded dict gets peak memory (MB) and the CPU seconds
    of this process and its descendants. Chromium's processes are not our children, so
    rusage cannot count them: their CPU time is sampled (the last 0.2 s before exit is lost)."""
    peak, cpu, figures, stop = dict.fromkeys(MEMORY_KEYS, 0), {}, {}, threading.Event()

    def sample() -> None:
        while True:
            for key, kb in sample_tree(exclude, cpu).items():
                peak[key] = max(peak[key], kb)
            if stop.wait(0.2):
                return

    thread, own = threading.Thread(target=sample, daemon=True), own_cpu_s()
    thread.start()
    try:
        yield figures
    finally:
        stop.set()
        thread.join()
        figures["cpu_s"] = round(own_cpu_s() - own + sum(cpu.values()), 1)
        figures["peak_rss_mb"] = round(peak["VmRSS:"] / 1024, 1)
        figures["peak_anon_mb"] = round(peak["RssAnon:"] / 1024, 1)


def process_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * TICK_S


def full_crawl(specs: list[ShopSpec], sessions: int, mall_pid: int) -> dict:
    with (
        tempfile.TemporaryDirectory(prefix="pricelens-bench-", dir=WORKDIR) as tmp,
        watch(mall_pid) as measured,
    ):
        home = Home(Path(tmp)).create()
        mall_cpu, started = process_cpu_s(mall_pid), time.perf_counter()
        results = crawl_shops(home, specs, CrawlOptions(sessions=sessions))
        wall = time.perf_counter() - started
        mall_cpu = process_cpu_s(mall_pid) - mall_cpu
        with closing(sqlite3.connect(home.database)) as db:  # per shop, browser start included
            spans = dict(
                db.execute(
                    "SELECT name, julianday(finished_at) - julianday(started_at) FROM crawl_runs "
                    "JOIN shops ON shops.id = crawl_runs.shop_id"
                )
            )
    offers, pages = sum(r.offers for r in results), sum(r.pages for r in results)
    return {
        "wall_s": round(wall, 2),
        "offers": offers,
        "pages": pages,
        "offers_per_s": round(offers / wall, 1),
        "pages_per_s": round(pages / wall, 2),
        **measured,
        "mall_cpu_s": round(mall_cpu, 1),  # the shops' side, on the same cores
        "load_avg_1m": round(os.getloadavg()[0], 2),  # > cpus: something else ran too
        "failures": sum(r.failures for r in results),
        "per_shop": {
            r.shop: {"status": r.status, "pages": r.pages, "offers": r.offers}
            | {"wall_s": round(spans[r.shop] * 86400, 2)}
            for r in results
        },
    }


# -- reference 1: navigation only --------------------------------------------------------------


def waiter(driver) -> WebDriverWait:
    return WebDriverWait(driver, WAIT_S, poll_frequency=POLL_S)  # as the crawler's waits


def _count(driver, selector: str) -> int:
    return driver.execute_script("return document.querySelectorAll(arguments[0]).length", selector)


def _grow(driver, item: str, end: str | None, action: Callable[[], None]) -> None:
    before = _count(driver, item)
    action()
    waiter(driver).until(
        lambda d: _count(d, item) > before or bool(end and d.find_elements(By.CSS_SELECTOR, end))
    )


def nav_classic(driver, base: str, shop: DemoShop) -> int:
    for n in range(1, shop.page_count + 1):
        driver.get(f"{base}/products?page={n}")
    return shop.page_count


def nav_spa(driver, base: str, shop: DemoShop) -> int:
    driver.get(base + "/")
    waiter(driver).until(lambda d: _count(d, "article.card") > 0)
    views = 1
    for _ in range(shop.page_count):
        buttons = [b for b in driver.find_elements(By.ID, "load-more") if b.is_displayed()]
        if not buttons:
            break
        _grow(driver, "article.card", None, buttons[0].click)
        views += 1
    return views


def nav_scroll(driver, base: str, shop: DemoShop) -> int:
    driver.get(base + "/")
    driver.find_element(By.CSS_SELECTOR, "#consent-overlay .accept").click()
    waiter(driver).until(ec.invisibility_of_element_located((By.ID, "consent-overlay")))
    views = 1
    for _ in range(shop.page_count + 2):
        if driver.find_elements(By.CSS_SELECTOR, ".feed-end"):
            break
        _grow(driver, "a.tile", ".feed-end", lambda: driver.execute_script(SCROLL))
        views += 1
    # the detail pages as the crawl requests them: rendered, or fetched from the listing as
    # many at once as the shop's concurrency allows, bodies read and dropped
    urls = [offer["url"] for offer in shop.answer_key(base)]
    if SCROLL_SPEC.detail.render:
        for url in urls:
            driver.get(url)
    else:
        driver.set_script_timeout(60 + len(urls))
        concurrency = SCROLL_SPEC.politeness.concurrency
        driver.execute_async_script(FETCH_SCRIPT, urls, concurrency, 30_000, 10**9)
    return views + len(urls)


def nav_menu(driver, base: str, shop: MenuShop) -> int:
    driver.get(base + "/")
    views = 1
    for label, (slug, _) in CATEGORIES.items():
        for n in range(1, max(1, -(-len(shop.in_category(label)) // PAGE)) + 1):
            driver.get(f"{base}/c/{slug}?page={n}")
            views += 1
    return views


NAV = {"classic": nav_classic, "spa": nav_spa, "scroll": nav_scroll, "menu": nav_menu}


def nav_only(shops: dict[str, DemoShop], bases: dict[str, str], mall_pid: int) -> dict:
    loads = {}
    with watch(mall_pid) as measured:
        started = time.perf_counter()
        with BrowserLauncher(BrowserConfig(), needed=len(shops)) as launcher:
            for name, shop in shops.items():
                shop_started = time.perf_counter()
                with launcher.session() as session:
                    count = NAV[name](session.driver, bases[name], shop)
                loads[name] = {
                    "loads": count,
                    "wall_s": round(time.perf_counter() - shop_started, 2),
                }
        wall = time.perf_counter() - started
    figures = {"wall_s": round(wall, 2), "per_shop": loads}
    return figures | measured | {"load_avg_1m": round(os.getloadavg()[0], 2)}


# -- reference 2: naive per-element extraction ---------------------------------------------


def _naive_field(element, rule: FieldRule) -> str | None:
    if rule.selector:
        found = element.find_elements(By.CSS_SELECTOR, rule.selector)
        if not found:
            return None
        element = found[0]
    if not rule.attrs:
        return element.text
    for attr in rule.attrs:
        value = element.get_attribute(attr)
        if value and not value.startswith("data:"):
            return value
    return None


def naive_extract(driver, spec: ShopSpec) -> list[dict[str, object]]:
    items = []
    for element in driver.find_elements(By.CSS_SELECTOR, spec.listing.item):
        fields: dict[str, object] = {
            n: _naive_field(element, r) for n, r in spec.listing.fields.items()
        }
        if spec.listing.sold_out:
            fields["sold_out"] = bool(element.find_elements(By.CSS_SELECTOR, spec.listing.sold_out))
        items.append(fields)
    return items


def per_element(specs: dict[str, ShopSpec], bases: dict[str, str], classic_pages: int) -> dict:
    pages = range(1, min(3, classic_pages) + 1)
    sample = [("classic", f"/products?page={n}") for n in pages] + [("spa", "/")]
    naive, ours, items = [], [], 0
    with BrowserSession() as session:
        driver = session.driver
        for shop, path in sample:
            spec = specs[shop]
            driver.get(bases[shop] + path)
            waiter(driver).until(lambda d, s=spec: _count(d, s.listing.item) > 0)
            started = time.perf_counter()
            found = naive_extract(driver, spec)
            naive.append(time.perf_counter() - started)
            times = []
            for _ in range(OURS_REPEATS):
                started = time.perf_counter()
                parsed = extract_items(driver.page_source, spec)
                times.append(time.perf_counter() - started)
            ours.append(statistics.median(times))
            if len(parsed) != len(found):
                raise SystemExit(
                    f"{shop}{path}: {len(found)} items per element, {len(parsed)} ours"
                )
            items += len(found)
    naive_ms, ours_ms = 1000 * statistics.mean(naive), 1000 * statistics.mean(ours)
    return {
        "pages": [f"{shop}{path}" for shop, path in sample],
        "items": items,
        "per_page_ms": round(naive_ms, 1),
        "ours_per_page_ms": round(ours_ms, 1),
        "ratio": round(naive_ms / ours_ms, 1),
    }


def median_run(runs: list[dict]) -> dict:
    """The run with the median wall time, with every run's wall time."""
    chosen = sorted(runs, key=lambda run: run["wall_s"])[len(runs) // 2]
    return chosen | {"runs_wall_s": [run["wall_s"] for run in runs]}


def bench_size(products: int, sessions: list[int], repeats: int) -> dict:
    shops = build_shops(MallSettings(products=products))  # the served mall's twin, for URLs
    with mall_process(products) as (bases, mall_pid):
        specs = {name: load_builtin_spec(name).with_base_url(url) for name, url in bases.items()}
        runs: dict[str, list[dict]] = {str(n): [] for n in sessions} | {"nav": []}
        for _ in range(repeats):  # interleaved, so that a slow spell hits every kind of run
            for n in sessions:
                runs[str(n)].append(full_crawl(list(specs.values()), n, mall_pid))
                c = runs[str(n)][-1]
                print(f"  sessions={n}: {c['wall_s']} s (load {c['load_avg_1m']})", flush=True)
            runs["nav"].append(nav_only(shops, bases, mall_pid))
            nav = runs["nav"][-1]
            print(f"  navigation only: {nav['wall_s']} s (load {nav['load_avg_1m']})", flush=True)
        crawls = {n: median_run(found) for n, found in runs.items() if n != "nav"}
        nav = median_run(runs["nav"])
        naive = per_element(specs, bases, shops["classic"].page_count)
    one = crawls["1"]["wall_s"]
    ratios = {"crawl_vs_nav": round(one / nav["wall_s"], 2)}
    ratios["crawl_vs_nav_cpu"] = round(crawls["1"]["cpu_s"] / nav["cpu_s"], 2)
    # each crawl against the reference run next to it: a slow spell of this shared machine
    # then shows as one odd pair instead of moving a median
    ratios["crawl_vs_nav_pairs"] = [
        round(c["wall_s"] / n["wall_s"], 2) for c, n in zip(runs["1"], runs["nav"], strict=True)
    ]
    ratios["crawl_vs_nav_per_shop"] = {
        name: round(shop["wall_s"] / nav["per_shop"][name]["wall_s"], 2)
        for name, shop in crawls["1"]["per_shop"].items()
    }
    ratios |= {f"speedup_{k}": round(one / c["wall_s"], 2) for k, c in crawls.items() if k != "1"}
    # no scheduling of sessions can beat the machine's cores: sessions=1's CPU time (crawler,
    # browsers and the mall) spread over every core is the floor for any session count
    busy = crawls["1"]["cpu_s"] + crawls["1"]["mall_cpu_s"]
    ratios["cpu_bound_speedup_max"] = round(one / (busy / os.cpu_count()), 2)
    met = {
        "crawl_vs_nav": ratios["crawl_vs_nav"] <= TARGETS["crawl_vs_nav_max"],
        "per_element": naive["ratio"] >= TARGETS["per_element_ratio_min"],
        "speedup_2": ratios.get("speedup_2", 0) >= TARGETS["speedup_2_min"],
    }
    offers = {name: len(shop.offers) for name, shop in shops.items()}
    figures = {"measured": time.strftime("%Y-%m-%d %H:%M"), "products": products}
    figures |= {"offers_per_shop": offers, "sessions": crawls}
    return figures | {"nav_only": nav, "per_element": naive, "ratios": ratios, "met": met}


def report(figures: dict) -> None:
    print(
        f"\n{'size':<8}{'sessions':>9}{'wall s':>8}{'CPU s':>7}{'offers':>7}{'offers/s':>9}"
        f"{'pages/s':>8}{'RSS MB':>8}{'anon MB':>8}"
    )
    for size, f in figures.items():
        for n, c in f["sessions"].items():
            print(
                f"{size:<8}{n:>9}{c['wall_s']:>8}{c['cpu_s']:>7}{c['offers']:>7}"
                f"{c['offers_per_s']:>9}{c['pages_per_s']:>8}{c['peak_rss_mb']:>8}"
                f"{c['peak_anon_mb']:>8}"
            )
        nav, pe, r, met = f["nav_only"], f["per_element"], f["ratios"], f["met"]
        print(
            f"  navigation only {nav['wall_s']} s: crawl/nav {r['crawl_vs_nav']} "
            f"(target <= 1.5: {met['crawl_vs_nav']}); in CPU time {r['crawl_vs_nav_cpu']}; "
            f"run by run {r.get('crawl_vs_nav_pairs')}"
        )
        print(
            f"  per element {pe['per_page_ms']} ms/page, ours {pe['ours_per_page_ms']}: "
            f"{pe['ratio']}x (target >= 10: {met['per_element']})"
        )
        speedups = ", ".join(f"{k[8:]} sessions {v}x" for k, v in r.items() if k[:8] == "speedup_")
        print(f"  speedup over 1 session: {speedups} (2 >= 1.6: {met['speedup_2']})")
        print(
            f"  ceiling on {os.cpu_count()} cores (sessions=1 CPU time / cores): "
            f"{r['cpu_bound_speedup_max']}x"
        )


def cpu_capability() -> str:
    """The widest vector instructions of this CPU, per size: the machines differ between
    sessions (AVX2, AVX-512: about 1.8x), and a size not run again keeps its earlier figures."""
    try:
        flags = set(Path("/proc/cpuinfo").read_text().split())
    except OSError:
        return "unknown"
    return "AVX512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "older"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="default,large", help="comma-separated: default, large")
    parser.add_argument("--sessions", default="1,2,4", help="comma-separated session counts")
    parser.add_argument("--quick", action="store_true", help="tiny malls, nothing written")
    parser.add_argument(
        "--repeats", type=int, help=f"interleaved runs of every kind per size (default {REPEATS})"
    )
    parser.add_argument(
        "--workdir",
        help="folder for the measured crawls' homes (database, photos); default: the system "
        "temp folder",
    )
    parser.add_argument("--serve-mall", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_mall:
        return _serve_mall(args.serve_mall)
    table = QUICK_SIZES if args.quick else SIZES
    sizes = [s.strip() for s in args.sizes.split(",") if s.strip()]
    if unknown := set(sizes) - set(table):
        parser.error(f"unknown size(s) {sorted(unknown)}; known: {', '.join(table)}")
    sessions = sorted({int(n) for n in args.sessions.split(",")} | {1})
    global WORKDIR
    WORKDIR = args.workdir
    workdir = args.workdir or tempfile.gettempdir()
    started, figures = time.perf_counter(), {}
    for size in sizes:
        print(f"{size}: {table[size]} products", flush=True)
        storage = {"workdir": workdir, "new_file_ms_before": new_file_ms(workdir)}
        figures[size] = bench_size(table[size], sessions, args.repeats or REPEATS[size])
        storage["new_file_ms_after"] = new_file_ms(workdir)
        figures[size]["storage"] = storage
        figures[size]["cpu_capability"] = cpu_capability()
    machine = {"cpus": os.cpu_count(), "python": platform.python_version()}
    result = {"benchmark": "crawl", "machine": machine | {"platform": platform.platform()}}
    result |= {"quick": args.quick, "targets": TARGETS, "sizes": figures}
    result["total_s"] = round(time.perf_counter() - started, 1)
    report(figures)
    if not args.quick:  # sizes not measured this time keep their figures from the last run
        kept = json.loads(RESULTS.read_text())["sizes"] if RESULTS.exists() else {}
        result["sizes"] = {size: kept[size] for size in SIZES if size in kept} | figures
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(result, indent=1) + "\n")
        print(f"-> {RESULTS}")


if __name__ == "__main__":
    main()
