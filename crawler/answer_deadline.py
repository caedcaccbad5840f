"""A deadline for an HTTP answer's status line and headers (and a new connection's TLS
handshake).

urllib3's read timeout bounds each read from the socket, not the answer: a server sending a
header byte now and then holds a request for as long as it likes. Requests made inside
`answer_by` register their socket from the moment it connects until the headers are in (a
handshake can drip too), and one watchdog thread shuts the socket of any still waiting at
its deadline, which ends the blocked read.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import TypeVar

import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection

_WAKE_S = 0.25  # how late past its deadline a socket may be shut, at most


class AnswerWatch:
    """One request's deadline, the socket waiting for headers (if any), and whether the
    watchdog shut it."""

    def __init__(self, deadline: float):
        self.deadline = deadline
        self.cut = False
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()

    def waiting(self, sock: socket.socket | None) -> None:
        with self._lock:
            self._sock = None if self.cut else sock

    def cut_if_late(self, now: float) -> None:
        with self._lock:
            if self._sock is None or now < self.deadline:
                return
            self.cut = True
            with contextlib.suppress(OSError):  # closed meanwhile: nothing left to end
                self._sock.shutdown(socket.SHUT_RDWR)
            self._sock = None


class _Watchdog:
    def __init__(self):
        self._watches: set[AnswerWatch] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def add(self, watch: AnswerWatch) -> None:
        with self._lock:
            self._watches.add(watch)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="pricelens-answer-deadline", daemon=True
                )
                self._thread.start()

    def discard(self, watch: AnswerWatch) -> None:
        with self._lock:
            self._watches.discard(watch)

    def _run(self) -> None:
        while True:
            with self._lock:
                watches = list(self._watches)
            now = time.monotonic()
            for watch in watches:
                watch.cut_if_late(now)
            earliest = min((w.deadline for w in watches), default=now + _WAKE_S)
            time.sleep(min(max(earliest - now, 0.01), _WAKE_S))


_WATCHDOG = _Watchdog()
_CURRENT = threading.local()


@contextlib.contextmanager
def answer_by(deadline: float) -> Iterator[AnswerWatch]:
    """Requests made in this block by this thread (through a `watched` pool manager) get
    their status line and headers by *deadline* (`time.monotonic`), or their socket is shut:
    `AnswerWatch.cut` then says why the request failed."""
    watch = AnswerWatch(deadline)
    _CURRENT.watch = watch
    _WATCHDOG.add(watch)
    try:
        yield watch
    finally:
        _WATCHDOG.discard(watch)
        _CURRENT.watch = None


class _WatchedAnswer:
    def _new_conn(self):
        sock = super()._new_conn()
        watch = getattr(_CURRENT, "watch", None)
        if watch is not None:  # a TLS handshake can drip as well as headers can
            watch.waiting(sock)
        return sock

    def getresponse(self):
        watch = getattr(_CURRENT, "watch", None)
        if watch is None:
            return super().getresponse()
        watch.waiting(self.sock)
        try:
            return super().getresponse()
        finally:
            watch.waiting(None)


class _HTTPConnection(_WatchedAnswer, HTTPConnection):
    pass


class _HTTPSConnection(_WatchedAnswer, HTTPSConnection):
    pass


class _HTTPPool(urllib3.HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


Manager = TypeVar("Manager", bound=urllib3.PoolManager)


def watched(manager: Manager) -> Manager:
    """*manager* (a PoolManager or ProxyManager) with connections that `answer_by` watches."""
    manager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}
    return manager
