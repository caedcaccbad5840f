"""One run at a time on a home, across processes: a pipeline run (scheduled by `serve` or
started with `pricelens run`), `pricelens crawl` and `pricelens demo` each hold
`<home>/work.lock` while they work, so a crawl started by hand never walks a shop while the
service's pipeline does, nor rewrites the groups under it.

A second one waits, saying for whom (`<home>/work.owner`), and goes on once the first is over;
a stop request (SIGTERM to `serve`) ends the wait. The operating system drops the lock of a
process that dies. Within one process the lock is taken once and shared (the service runs its
own jobs one at a time already; `demo` and `run` call code that takes it again).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Iterator

from filelock import FileLock, Timeout

from pipeline.errors import PipelineError
from pipeline.settings import Home

log = logging.getLogger(__name__)

POLL_SECONDS = 1.0  # how often a waiting run looks at its stop request
_LOCKS: dict[str, FileLock] = {}  # one per home in this process: re-entrant across threads
_GUARD = threading.Lock()


class StopWaiting(PipelineError):
    """A stop request arrived while waiting for another run on the home."""


def _lock_of(home: Home) -> FileLock:
    with _GUARD:
        key = str(home.root)
        if key not in _LOCKS:
            _LOCKS[key] = FileLock(str(home.root / "work.lock"), thread_local=False)
        return _LOCKS[key]


@contextlib.contextmanager
def working_on(home: Home, what: str, stop: threading.Event | None = None) -> Iterator[None]:
    """Hold the home's lock for *what* ("pipeline run", "crawl", ...) while the block runs;
    if another process holds it, log once that this waits for it, then wait. Raises
    StopWaiting if *stop* is set meanwhile."""
    home.create()
    lock, owner = _lock_of(home), home.root / "work.owner"
    try:
        lock.acquire(timeout=0)
    except Timeout:
        holder = _read(owner) or "another process"
        log.warning("%s waits for %s to finish (one run at a time on %s)", what, holder, home.root)
        while True:
            if stop is not None and stop.is_set():
                raise StopWaiting(f"{what} not started: stopped waiting for {holder}") from None
            try:
                lock.acquire(timeout=POLL_SECONDS)
                break
            except Timeout:
                continue
    try:
        if lock.lock_counter == 1:  # the outermost holder in this process says who it is
            owner.write_text(f"{what} (pid {os.getpid()})")
        yield
    finally:
        lock.release()


def _read(path) -> str | None:
    try:
        return path.read_text().strip() or None
    except OSError:
        return None
