"""File paths in the database are relative to the home (the database file's folder): a home
moved elsewhere still finds its photos, models and crawl-error snapshots."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from db.paths import cut_at_home_folder, resolved_path, stored_path
from db.records import GroupMember, PhotoSource, ProductGroup
from db.store import Store
from tests.db.conftest import make_image, make_offer, rows


@pytest.mark.parametrize(
    ("path", "stored"),
    [
        ("/home/u/pl/images/ab/x.png", "images/ab/x.png"),
        ("/home/u/pl/models/m-1/best.pt", "models/m-1/best.pt"),
        ("/home/u/pl/sub/../images/x.png", "images/x.png"),
        ("/home/u/other/images/x.png", "/home/u/other/images/x.png"),  # outside: kept
        ("/home/u/pl-2/x.png", "/home/u/pl-2/x.png"),  # a sibling sharing the prefix
        (None, None),
    ],
)
def test_stored_path_is_relative_inside_the_home_only(path, stored):
    assert stored_path(Path("/home/u/pl"), path) == stored


def test_stored_path_sees_the_home_through_a_symlink(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    file = tmp_path / "link" / "images" / "x.png"
    assert stored_path(tmp_path / "real", file) == "images/x.png"


@pytest.mark.parametrize(
    ("stored", "resolved"),
    [
        ("images/ab/x.png", "/new/home/images/ab/x.png"),
        ("/elsewhere/m.pt", "/elsewhere/m.pt"),  # absolute: as it is
        (None, None),
    ],
)
def test_resolved_path_joins_relative_paths_to_the_home(stored, resolved):
    assert resolved_path(Path("/new/home"), stored) == resolved


@pytest.mark.parametrize(
    ("path", "folder", "cut"),
    [
        ("/old/home/images/ab/x.png", "images", "images/ab/x.png"),
        ("/srv/images/pricelens/images/ab/x.png", "images", "images/ab/x.png"),  # the last
        ("/old/home/models/m-1/best.pt", "models", "models/m-1/best.pt"),
        (
            "/old/home/crawl-errors/run-3/0001-goto.png",
            "crawl-errors",
            "crawl-errors/run-3/0001-goto.png",
        ),
        ("/opt/weights/best.pt", "models", "/opt/weights/best.pt"),  # no such folder: kept
        ("images/ab/x.png", "images", "images/ab/x.png"),  # relative already
        (None, "images", None),
    ],
)
def test_cut_at_home_folder(path, folder, cut):
    assert cut_at_home_folder(path, folder) == cut


def test_a_moved_home_finds_its_photos_models_and_snapshots(tmp_path):
    old, new = tmp_path / "old" / "home", tmp_path / "new" / "place"
    image = make_image("a")
    image = replace(image, path=str(old / "images" / image.sha256[:2] / f"{image.sha256}.png"))
    url = "http://shop.test/img/a.png"
    with Store(old / "pricelens.db") as store:
        run = store.start_crawl_run("classic")
        (offer_id,) = store.save_page(
            run,
            [make_offer(image_url=url, image_sha256=image.sha256)],
            [image],
            {image.sha256: "tshirt"},
            [PhotoSource(url, image.sha256)],
        )
        store.record_crawl_error(
            run, "boom", screenshot_path=str(old / "crawl-errors" / "run-1" / "0001-goto.png")
        )
        store.register_model("m-1", "shopnet", str(old / "models" / "m-1" / "best.pt"), {}, {})
        store.replace_groups([ProductGroup(None, "tshirt", "tee", (GroupMember(offer_id, 1.0),))])
        assert rows(store, "SELECT path FROM images") == [
            (f"images/{image.sha256[:2]}/{image.sha256}.png",)
        ]
        assert rows(store, "SELECT path FROM models") == [("models/m-1/best.pt",)]
        assert rows(store, "SELECT screenshot_path FROM crawl_errors") == [
            ("crawl-errors/run-1/0001-goto.png",)
        ]
    new.parent.mkdir()
    shutil.move(old, new)
    moved = str(new / "images" / image.sha256[:2] / f"{image.sha256}.png")
    with Store(new / "pricelens.db") as store:
        assert store.current_model().path == str(new / "models" / "m-1" / "best.pt")
        assert [r["path"] for r in store.labelled_images()] == [moved]
        assert [r["path"] for r in store.images_without_prediction(1)] == [moved]
        assert store.known_photos("classic")[url][1].path == moved
        assert [r["image_path"] for r in store.comparison_rows()] == [moved]


def test_paths_outside_the_home_are_kept_absolute(store):
    store.register_model("v1", "shopnet", "/opt/weights/best.pt", {}, {})
    assert rows(store, "SELECT path FROM models") == [("/opt/weights/best.pt",)]
    assert store.current_model().path == "/opt/weights/best.pt"
