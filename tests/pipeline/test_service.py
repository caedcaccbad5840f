"""The real `pricelens serve` in a subprocess against the demo mall, on a schedule of seconds:
repeated runs, kill -9 and restart, a refused second service, and SIGTERM."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from demo.mall import MallSettings, run_mall
from tests.pipeline.quiet_hours import quiet_daily

pytestmark = [pytest.mark.browser, pytest.mark.slow]
PRICELENS = str(Path(sys.executable).parent / "pricelens")


def write_config(home: Path, base_url: str, steps=("crawl", "match", "report")) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "pricelens.toml").write_text(
        f"""
[pipeline]
cron = "*/3 * * * * *"
shops = ["classic"]
steps = {list(steps)!r}

[shops.classic]
base_url = "{base_url}"

[report]
keep = 2
csv = true

[train]
epochs = 1
train_limit = 1000
""".replace("'", '"')
    )


def start_service(home: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [PRICELENS, "--home", str(home), "serve"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def query(home: Path, sql: str, *args):
    with sqlite3.connect(f"file:{home / 'pricelens.db'}?mode=ro", uri=True, timeout=30) as db:
        return db.execute(sql, args).fetchall()


def wait_until(condition, seconds: float = 120):
    """Poll *condition* (an explicit wait on observable state, not a fixed sleep)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except sqlite3.OperationalError:
            pass  # the service has not created the database yet
        time.sleep(0.2)
    raise AssertionError("condition not met in time")


def finished_runs(home: Path) -> list[tuple]:
    return query(home, "SELECT id, status FROM pipeline_runs WHERE finished_at IS NOT NULL")


def test_the_service_runs_the_pipeline_repeatedly_and_refuses_a_second_one(tmp_path):
    home = tmp_path / "home"
    with run_mall(MallSettings(seed=2, products=30, shops=("classic",))) as mall:
        write_config(home, mall.base_urls["classic"], ("crawl", "classify", "match", "report"))
        service = start_service(home)
        try:
            wait_until(lambda: query(home, "SELECT 1 FROM pipeline_runs"))
            second = subprocess.run(
                [PRICELENS, "--home", str(home), "serve"],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert second.returncode == 1
            assert "another pricelens serve" in second.stderr and str(home) in second.stderr
            # three runs, the first training a model: room for a loaded 2-core machine
            wait_until(lambda: len([r for r in finished_runs(home) if r[1] == "ok"]) >= 3, 300)
        finally:
            service.send_signal(signal.SIGTERM)
            service.wait(timeout=120)
    runs = query(home, "SELECT id FROM crawl_runs WHERE status = 'ok'")
    offers = query(home, "SELECT COUNT(*) FROM offers")[0][0]
    per_run = query(
        home, "SELECT crawl_run_id, COUNT(*) FROM price_observations GROUP BY crawl_run_id"
    )
    assert offers > 0 and len(runs) >= 3
    assert {count for run, count in per_run if (run,) in runs} == {offers}
    pages = sorted((home / "reports").glob("report-*.html"))
    assert len(pages) == 2 and len(list((home / "reports").glob("report-*.csv"))) == 2  # keep 2
    page = pages[-1].read_text()  # one shop: no product to compare, but a whole page
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert query(home, "SELECT COUNT(*) FROM predictions")[0][0] == offers


def test_kill_9_mid_crawl_then_restart_recovers(tmp_path):
    home = tmp_path / "home"
    slow = MallSettings(seed=2, products=60, shops=("classic",), faults="slow=0.5")
    with run_mall(slow) as mall:
        write_config(home, mall.base_urls["classic"], ("crawl",))
        service = start_service(home)
        wait_until(
            lambda: query(home, "SELECT 1 FROM crawl_runs WHERE status = 'running' AND pages >= 1")
        )
        service.kill()  # SIGKILL: no cleanup at all
        service.wait(timeout=30)
        killed = query(home, "SELECT id FROM pipeline_runs WHERE status = 'running'")
        assert len(killed) == 1
        service = start_service(home)
        try:
            wait_until(
                lambda: query(home, "SELECT 1 FROM pipeline_runs WHERE status = 'ok'"), seconds=240
            )
        finally:
            service.send_signal(signal.SIGTERM)
            service.wait(timeout=120)
    assert query(home, "SELECT status FROM pipeline_runs WHERE id = ?", killed[0][0]) == [
        ("interrupted",)
    ]
    assert query(home, "PRAGMA integrity_check") == [("ok",)]
    duplicates = query(
        home,
        "SELECT offer_id, crawl_run_id, COUNT(*) FROM price_observations "
        "GROUP BY 1, 2 HAVING COUNT(*) > 1",
    )
    assert duplicates == []
    ok_run = query(home, "SELECT id FROM crawl_runs WHERE status = 'ok' ORDER BY id LIMIT 1")
    offers = query(home, "SELECT COUNT(*) FROM offers")[0][0]
    assert query(
        home, "SELECT COUNT(*) FROM price_observations WHERE crawl_run_id = ?", ok_run[0][0]
    ) == [(offers,)]


def test_sigterm_stops_after_the_current_page_and_records_the_run_as_stopped(tmp_path):
    home = tmp_path / "home"
    slow = MallSettings(seed=2, products=60, shops=("classic",), faults="slow=1")
    with run_mall(slow) as mall:
        write_config(home, mall.base_urls["classic"], ("crawl",))
        service = start_service(home)
        wait_until(lambda: query(home, "SELECT 1 FROM crawl_runs WHERE status = 'running'"))
        service.send_signal(signal.SIGTERM)
        assert service.wait(timeout=60) == 0
    assert "pricelens serve stopped" in service.stderr.read()
    assert query(home, "SELECT status FROM pipeline_runs") == [("stopped",)]
    assert query(home, "SELECT status FROM crawl_runs") == [("stopped",)]
    pages = query(home, "SELECT pages, offers FROM crawl_runs")[0]
    stored = query(home, "SELECT COUNT(*) FROM price_observations")[0][0]
    assert pages[1] == stored  # every page counted is stored whole


def test_serve_started_during_a_manual_run_leaves_that_run_alone(tmp_path):
    home = tmp_path / "home"
    slow = MallSettings(seed=2, products=200, shops=("classic",), faults="slow=1")  # minutes
    with run_mall(slow) as mall:
        home.mkdir()
        (home / "pricelens.toml").write_text(
            f'[pipeline]\ncron = "{quiet_daily()}"\nsteps = ["crawl"]\nshops = ["classic"]\n\n'
            f'[shops.classic]\nbase_url = "{mall.base_urls["classic"]}"\n'
        )
        manual = subprocess.Popen(
            [PRICELENS, "--home", str(home), "--no-progress", "run", "--steps", "crawl"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            wait_until(lambda: query(home, "SELECT 1 FROM crawl_runs WHERE pages >= 1"))
            service = start_service(home)
            try:
                ready = ""
                while "pricelens serve on" not in ready:
                    line = service.stderr.readline()
                    assert line, "serve ended before it was ready"
                    ready += line
                assert "interrupted" not in ready and "1 job(s)" in ready
                runs = query(home, "SELECT kind, status FROM pipeline_runs")
                assert runs == [("manual", "running")]  # and no catch-up run beside it
                assert query(home, "SELECT status FROM crawl_runs") == [("running",)]
            finally:
                service.send_signal(signal.SIGTERM)
                assert service.wait(timeout=60) == 0
        finally:
            manual.send_signal(signal.SIGTERM)  # the manual run ends it, recorded by itself
            _, err = manual.communicate(timeout=120)
    assert manual.returncode == 130, err
    assert query(home, "SELECT kind, status FROM pipeline_runs") == [("manual", "stopped")]
    assert query(home, "SELECT status FROM crawl_runs") == [("interrupted",)]
