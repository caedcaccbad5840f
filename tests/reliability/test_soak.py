"""The soak benchmark in its short form: consecutive faulty crawls, nothing left behind."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from tests.reliability.conftest import NOTHING_LOST

pytestmark = [pytest.mark.browser, pytest.mark.slow]
SOAK = Path(__file__).resolve().parents[2] / "benchmarks" / "soak.py"


def load_soak():
    spec = importlib.util.spec_from_file_location("soak", SOAK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_consecutive_faulty_crawls_leave_no_browser_and_lose_no_row():
    result = load_soak().soak(crawls=3, products=30)
    assert result["orphan_browser_processes"] == [0, 0, 0]
    assert result["crawls_completed"] == 3
    assert result["faults_injected_total"] > 0
    assert result["rows_lost_or_doubled"] == NOTHING_LOST
    # exact counts: every observation the runs counted is stored, once
    assert result["observations_stored"] == result["observations_counted"]
    for run in result["runs"]:
        for shop, figures in run["shops"].items():
            assert figures["status"] in ("ok", "partial"), (run["crawl"], shop, figures)
            if figures["failures_recorded"] == 0:
                assert figures["observations_stored"] == figures["offers_shown"], (shop, run)
