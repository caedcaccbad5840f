"""Which 'running' rows are really running: each is backed by a lock its process holds.

A run's process holds `<database>-runs/<table>-<id>.lock` (an OS file lock) from the moment
its row is written until the row is finished or its `Store` is closed. The operating system
drops the lock when the process dies, however it dies (SIGKILL, power loss), so `pricelens
serve` can tell a run left behind by a dead process (lock free) from one that another live
process is still doing (`pricelens run`, `crawl`, `demo`: lock held). Unlike a pid in the row,
this cannot be fooled by a reused pid, another host or another pid namespace.

No race with a starting run: the lock is taken inside the transaction that inserts the row, and
the check runs inside a write transaction, so a row is never seen 'running' without its lock.
"""

from __future__ import annotations

from pathlib import Path

from filelock import FileLock, Timeout

from db.errors import StoreError


class RunLocks:
    """The run locks of one `Store`: those it holds, and checks on other processes' runs."""

    def __init__(self, database: Path):
        self.folder = database.with_name(database.name + "-runs")
        self._held: dict[tuple[str, int], FileLock] = {}

    def _path(self, table: str, run_id: int) -> Path:
        return self.folder / f"{table}-{run_id}.lock"

    def hold(self, table: str, run_id: int) -> None:
        """Take the lock of a run this store has just inserted; it is kept until `release`."""
        self.folder.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(self._path(table, run_id)), thread_local=False)
        try:
            lock.acquire(timeout=0)
        except Timeout:  # only a run row with this id in another, live process holds it
            raise StoreError(f"{lock.lock_file}: the lock of a new run is held elsewhere") from None
        self._held[(table, run_id)] = lock

    def release(self, table: str, run_id: int) -> None:
        """The run is finished (or can no longer be): drop its lock and its file."""
        lock = self._held.pop((table, run_id), None)
        if lock is not None:
            lock.release()
            Path(lock.lock_file).unlink(missing_ok=True)

    def release_all(self) -> None:
        for table, run_id in list(self._held):
            self.release(table, run_id)

    def is_alive(self, table: str, run_id: int) -> bool:
        """Whether a process (this one included) still holds the run's lock. A run whose
        lock is free, or that never had one (rows from before run locks), is dead; its
        lock file is removed. Call inside a write transaction (see the module's note)."""
        if (table, run_id) in self._held:
            return True
        path = self._path(table, run_id)
        if not path.exists():
            return False
        probe = FileLock(str(path), thread_local=False)
        try:
            probe.acquire(timeout=0)
        except Timeout:
            return True
        probe.release()
        path.unlink(missing_ok=True)
        return False
