"""A second `pricelens serve` on a home is refused and leaves the running service alone: its
lock, its serve.pid (which every later refusal quotes) and its jobs."""

from __future__ import annotations

import os

from pipeline.service import STOP, Service
from pipeline.settings import Home
from tests.pipeline.quiet_hours import quiet_daily
from tests.pipeline.test_schedule import invoke


def test_a_refused_serve_keeps_the_running_services_pid_file_and_lock(tmp_path):
    (tmp_path / "pricelens.toml").write_text(f'[report]\ncron = "{quiet_daily()}"\n')
    running = Service(Home.resolve(tmp_path))
    running.start()
    pid_file = tmp_path / "serve.pid"
    try:
        for _ in range(2):  # the second refusal still names the pid
            refused = invoke(tmp_path, "serve")
            assert refused.exit_code == 1
            assert f"another pricelens serve (pid {os.getpid()}) is running" in refused.output
            assert pid_file.read_text() == str(os.getpid())
        assert not STOP.is_set()  # the running service's jobs were not told to stop
        assert [job.id for job in running.scheduler.get_jobs()] == ["report"]
    finally:
        running.stop()
    assert not pid_file.exists()
    again = Service(Home.resolve(tmp_path))  # the lock was released with it
    again.start()
    again.stop()
