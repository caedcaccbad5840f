"""The scheduled report's folder: only the reports pricelens wrote are pruned."""

from __future__ import annotations

from db.store import Store
from pipeline.config import ServiceConfig
from pipeline.runner import write_report
from pipeline.settings import Home


def test_pruning_keeps_the_users_own_files_and_the_newest_reports(tmp_path):
    home = Home(tmp_path / "home").create()
    folder = home.root / "reports"
    folder.mkdir()
    # a user's files whose names look like ours; "budget" sorts after every time stamp
    mine = [folder / "report-2019-q3.html", folder / "report-budget.csv"]
    for path in mine:
        path.write_text("mine")
    config = ServiceConfig(path=home.root / "pricelens.toml", report_keep=1, report_csv=True)
    with Store(home.database) as store:
        write_report(home, store, config)
        newest = write_report(home, store, config)
    assert all(path.read_text() == "mine" for path in mine)
    assert sorted(folder.glob("report-2*.html")) == [mine[0], newest]
    assert sorted(folder.glob("report-2*.csv")) == [newest.with_suffix(".csv")]
