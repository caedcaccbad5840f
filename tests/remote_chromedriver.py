"""A chromedriver started on a free loopback port: the W3C remote WebDriver `--remote` is
tested against (a Selenium Grid speaks the same protocol)."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import threading
from collections.abc import Iterator

import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def chromedriver_on_loopback() -> Iterator[str]:
    """Yields the driver's URL once it listens; it is stopped afterwards."""
    port = free_port()
    driver = subprocess.Popen(
        ["chromedriver", f"--port={port}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        # it says so once it listens; connecting before that is refused (a flaky run did)
        for line in driver.stdout:
            if "started successfully" in line:
                break
        else:
            pytest.fail("chromedriver ended without starting")
        drain = threading.Thread(target=driver.stdout.read, daemon=True)  # never a full pipe
        drain.start()
        yield f"http://127.0.0.1:{port}"
    finally:
        driver.terminate()
        driver.wait(timeout=10)
