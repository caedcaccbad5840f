"""`pricelens mall serve` as a user runs it: a real process, real ports, stopped by SIGTERM."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

PRICELENS = str(Path(sys.executable).parent / "pricelens")


def test_mall_serve_prints_urls_serves_shops_and_writes_the_answer_key(tmp_path):
    key = tmp_path / "key.json"
    process = subprocess.Popen(
        [
            PRICELENS,
            "--home",
            str(tmp_path),
            "mall",
            "serve",
            "--products",
            "30",
            "--answer-key",
            str(key),
            "--hard",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        urls = dict(process.stdout.readline().strip().split("\t") for _ in range(4))
        assert set(urls) == {"classic", "spa", "scroll", "menu"}
        with urllib.request.urlopen(urls["classic"] + "/products?page=1", timeout=10) as page:
            assert b"Hanbit Classic" in page.read()
        written = json.loads(key.read_text())
        assert written["hard"] is True
        assert {name: data["base_url"] for name, data in written["shops"].items()} == urls
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    assert process.returncode == 0  # SIGTERM is an ordinary stop
    assert "mall stopped" in process.stderr.read()


def test_mall_serve_refuses_an_unknown_fault(tmp_path):
    done = subprocess.run(
        [PRICELENS, "mall", "serve", "--faults", "meteor=1"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2 and "unknown fault 'meteor'" in done.stderr
