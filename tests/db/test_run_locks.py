"""Run locks: a 'running' row is marked interrupted only when the process doing it is gone,
whether that process is another `Store` here or another process killed with SIGKILL."""

from __future__ import annotations

from db.store import Store
from tests.db.conftest import rows
from tests.db.run_holder import start_run_elsewhere


def statuses(store: Store) -> list[tuple]:
    return rows(
        store,
        "SELECT 'pipeline', id, status FROM pipeline_runs UNION ALL "
        "SELECT 'crawl', id, status FROM crawl_runs ORDER BY 1, 2",
    )


def lock_files(db_path) -> list[str]:
    folder = db_path.with_name(db_path.name + "-runs")
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_a_run_another_store_is_doing_stays_running_until_that_store_closes(db_path):
    doing = Store(db_path)
    run = doing.start_pipeline_run("manual")
    crawl = doing.start_crawl_run("classic", None, run)
    with Store(db_path) as serve:
        assert serve.mark_interrupted() == []
        assert doing.mark_interrupted() == []  # nor by the store doing them
        assert statuses(serve) == [("crawl", crawl, "running"), ("pipeline", run, "running")]
    doing.close()  # never finished: it can no longer be
    with Store(db_path) as serve:
        assert serve.mark_interrupted() == ["manual"]
        assert statuses(serve) == [
            ("crawl", crawl, "interrupted"),
            ("pipeline", run, "interrupted"),
        ]
    assert lock_files(db_path) == []


def test_a_finished_run_leaves_no_lock_and_is_never_marked(db_path):
    with Store(db_path) as store:
        run = store.start_pipeline_run("manual")
        assert lock_files(db_path) == [f"pipeline_runs-{run}.lock"]
        crawl = store.start_crawl_run("classic", None, run)
        store.finish_crawl_run(crawl, "ok")
        store.finish_pipeline_run(run, "ok")
        assert lock_files(db_path) == []
    with Store(db_path) as serve:
        assert serve.mark_interrupted() == []
        assert statuses(serve) == [("crawl", crawl, "ok"), ("pipeline", run, "ok")]


def test_a_run_of_a_live_process_is_left_alone_and_marked_once_it_is_killed(db_path):
    other = start_run_elsewhere(db_path)
    run, crawl = other.pipeline_run, other.crawl_run
    try:
        with Store(db_path) as serve:
            assert serve.mark_interrupted() == []
            assert statuses(serve) == [("crawl", crawl, "running"), ("pipeline", run, "running")]
    finally:
        other.kill()  # the OS drops its locks
    with Store(db_path) as serve:
        assert serve.mark_interrupted() == ["manual"]
        assert statuses(serve) == [
            ("crawl", crawl, "interrupted"),
            ("pipeline", run, "interrupted"),
        ]
        (error,) = rows(serve, "SELECT error FROM pipeline_runs")[0]
        assert error == "the process ended during the run"
    assert lock_files(db_path) == []


def test_a_running_row_from_before_run_locks_is_marked(store):
    store.db.conn.execute(
        "INSERT INTO pipeline_runs (kind, started_at, status) VALUES ('manual', 'x', 'running')"
    )
    store.db.conn.commit()
    assert store.mark_interrupted() == ["manual"]
    assert statuses(store) == [("pipeline", 1, "interrupted")]
