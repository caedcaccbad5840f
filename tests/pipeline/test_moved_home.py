"""A home moved to another folder keeps working (the database keeps file paths relative to
it), and `pricelens classify` decodes a photo it found unreadable only once."""

from __future__ import annotations

import io
import json
import re
import shutil
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image as PILImage

from classifier.checkpoints import save_checkpoint
from classifier.config import TrainConfig
from classifier.model import build_model, model_kwargs
from crawler.images import store_image_bytes
from db.records import LABELS
from db.store import Store
from pipeline.cli import cli
from pipeline.model_training import load_data
from pipeline.settings import Home
from tests.pipeline.report_fixture import build_store


def invoke(home: Path, *args: str) -> str:
    result = CliRunner().invoke(cli, ["--home", str(home), *args])
    assert result.exit_code == 0, result.output
    return result.output


def classify(home: Path) -> dict:
    done = json.loads(invoke(home, "classify", "--device", "cpu", "--format", "json"))
    return {key: value for key, value in done.items() if key not in ("model", "backend")}


def photo_bytes(n: int) -> bytes:
    out = io.BytesIO()
    PILImage.new("RGB", (28, 28), (n * 40 % 256, 90, 200 - n * 30)).save(out, format="PNG")
    return out.getvalue()


def add_model(store: Store, home: Path, version: str) -> None:
    """An untrained tiny model, saved as training saves one: classify runs it for real."""
    config = TrainConfig(width=8, embedding_dim=16)
    net = build_model(config.architecture, **model_kwargs(config, len(LABELS)))
    checkpoint = home / "models" / version / "best.pt"
    checkpoint.parent.mkdir(parents=True)
    state = {"model": net.state_dict(), "config": config.to_dict(), "classes": list(LABELS)}
    save_checkpoint(checkpoint, state)
    store.register_model(version, config.architecture, str(checkpoint), {}, {})


def add_photos(home: Path, count: int) -> list[str]:
    """*count* photos stored as a crawl stores them; returns their file names."""
    with Store(home / "pricelens.db") as store:
        images = [
            store_image_bytes(photo_bytes(n), f"http://shop.test/{n}.png", home / "images")
            for n in range(count)
        ]
        store.save_page(store.start_crawl_run("classic"), [], images)
    return [image.path for image in images]


def move(home: Path, to: Path) -> Path:
    to.parent.mkdir(parents=True)
    shutil.move(home, to)
    assert not home.exists()
    return to


def test_the_html_report_of_a_moved_home_shows_its_photos(tmp_path):
    old = tmp_path / "old" / "home"
    old.mkdir(parents=True)
    build_store(old / "pricelens.db")
    invoke(old, "match")
    new = move(old, tmp_path / "new" / "home")
    out = tmp_path / "report.html"
    invoke(new, "report", "--format", "html", "--min-shops", "1", "--out", str(out))
    page = out.read_text(encoding="utf-8")
    products = page.count('<td class="thumb">')
    thumbnails = re.findall(r'<img src="data:image/png;base64,', page)
    assert products == 3 and len(thumbnails) == products


def test_classify_in_a_moved_home_finds_the_model_and_the_photos(tmp_path):
    old = tmp_path / "old" / "home"
    add_photos(old, 3)
    with Store(old / "pricelens.db") as store:
        add_model(store, old, "m-1")
    new = move(old, tmp_path / "new" / "home")
    assert classify(new) == {
        "classified": 3,
        "unreadable": 0,
        "previously_unreadable": 0,
        "missing": 0,
    }


@pytest.fixture
def home(tmp_path):
    """Five photos and a model: photo 3 corrupt on disk, photo 4 deleted."""
    home = tmp_path / "home"
    files = add_photos(home, 5)
    Path(files[3]).write_bytes(b"not a photo")
    Path(files[4]).unlink()
    with Store(home / "pricelens.db") as store:
        add_model(store, home, "m-1")
    return home, Path(files[3]).relative_to(home).as_posix()


def marked_unreadable(home: Path) -> list[str]:
    with sqlite3.connect(home / "pricelens.db") as db:
        marked = db.execute("SELECT path FROM images WHERE unreadable_reason IS NOT NULL")
        return [path for (path,) in marked]


def test_an_unreadable_photo_is_decoded_once_and_reported_after(home, caplog):
    home, corrupt = home
    first = classify(home)
    assert first == {"classified": 3, "unreadable": 1, "previously_unreadable": 0, "missing": 1}
    assert caplog.text.count("cannot read image") == 1
    assert marked_unreadable(home) == [corrupt]  # not the missing file: it may come back
    caplog.clear()
    second = classify(home)
    assert second == {"classified": 0, "unreadable": 0, "previously_unreadable": 1, "missing": 1}
    assert "cannot read image" not in caplog.text  # not decoded again
    text = invoke(home, "classify", "--device", "cpu")
    assert "0 classified, 0 unreadable, 1 found unreadable before (not decoded again)" in text
    assert "1 missing (no file)" in text


def test_a_new_model_skips_the_photo_too(home, caplog):
    home, _ = home
    classify(home)
    with Store(home / "pricelens.db") as store:
        add_model(store, home, "m-2")
    caplog.clear()
    assert classify(home) == {
        "classified": 3,
        "unreadable": 0,
        "previously_unreadable": 1,
        "missing": 1,
    }
    assert "cannot read image" not in caplog.text


def test_a_recrawl_that_writes_the_photos_again_clears_the_mark(home):
    home, corrupt = home
    classify(home)
    assert marked_unreadable(home) == [corrupt]
    add_photos(home, 5)  # the crawler writes the cut-short and the missing file anew
    assert classify(home) == {
        "classified": 2,
        "unreadable": 0,
        "previously_unreadable": 0,
        "missing": 0,
    }
    assert marked_unreadable(home) == []


def test_training_leaves_out_a_photo_classify_found_unreadable(home, caplog):
    """Every photo labelled: the training data holds the readable ones without decoding
    the recorded one again (the missing file is still tried: it may be back by then)."""
    home, corrupt = home
    classify(home)
    with Store(home / "pricelens.db") as store:
        rows = store.labelled_images()
        assert rows == []
        for image in store.db.query("SELECT sha256 FROM images"):
            store.set_label(image["sha256"], "bag")
        rows = store.labelled_images()
        caplog.clear()
        train, val, held, described, _ = load_data(store, Home(home), "scraped", 0, None)
    # so few photos that none falls in the validation split: it is the training set again
    assert len(rows) == 5 and len(train) + len(held.scraped) == 3 and len(val) == len(train)
    assert described["scraped_train"] == len(train)  # the data the model saw, as recorded
    assert corrupt not in caplog.text and caplog.text.count("cannot read image") == 1
