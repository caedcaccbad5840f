"""Matching waits for `classify`: a model made current after the last classify has no
embedding for any photo, and matching with it would break up every group."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from click.testing import CliRunner

from db.records import Image, Offer, Prediction
from db.store import Store
from pipeline.cli import cli
from pipeline.config import ServiceConfig
from pipeline.runner import run_pipeline
from pipeline.settings import Home

TITLES = ("Arcadia Suede Sneakers", "Borealis Wool Coat", "Cobalt Denim Shirt")


def embedding(product: int) -> bytes:
    vector = np.random.default_rng(product).normal(size=16).astype(np.float32)
    return (vector / np.linalg.norm(vector)).tobytes()


@pytest.fixture
def home(tmp_path):
    """Three shops selling the same three products, matched with model m1."""
    home = Home(tmp_path).create()
    with Store(home.database) as store:
        photos = {}
        for shop in ("a", "b", "c"):
            offers = []
            for product, title in enumerate(TITLES):
                sha = hashlib.sha256(f"{shop}{product}".encode()).hexdigest()
                path = home.images / f"{sha}.png"
                path.write_bytes(b"x")
                store.store_image(Image(sha, str(path), 10, 10, "PNG", 1))
                photos[sha] = product
                url = f"http://{shop}.test/p/{product}"
                offers.append(
                    Offer(
                        shop,
                        url,
                        title,
                        1000 * (product + 1),
                        "KRW",
                        sku=str(product),
                        image_sha256=sha,
                    )
                )
            run = store.start_crawl_run(shop)
            store.save_page(run, offers)
            store.finish_crawl_run(run, "ok")
        m1 = store.register_model("m1", "shopnet", str(home.models / "m1.pt"), {}, {})
        store.save_predictions(
            Prediction(sha, m1, "sneaker", 0.99, embedding(product))
            for sha, product in photos.items()
        )
    assert invoke(home, "match").exit_code == 0
    assert groups(home) == [3, 3, 3]
    return home


def invoke(home: Home, *args):
    return CliRunner().invoke(cli, ["--home", str(home.root), *args])


def groups(home: Home) -> list[int]:
    """The sizes of the product groups, largest first."""
    with Store(home.database) as store:
        rows = store.db.query("SELECT COUNT(*) AS n FROM group_members GROUP BY group_id")
        return sorted((row["n"] for row in rows), reverse=True)


def promote_new_model(home: Home) -> None:
    with Store(home.database) as store:
        store.register_model("m2", "shopnet", str(home.models / "m2.pt"), {}, {})


def test_match_refuses_a_model_that_has_classified_no_photo(home):
    promote_new_model(home)
    result = invoke(home, "match")
    assert result.exit_code == 1
    assert "model m2 has classified none of the 9 photos" in result.output
    assert "run `pricelens classify` first" in result.output
    assert groups(home) == [3, 3, 3]  # the groups are kept


def test_match_warns_about_photos_not_classified_yet(home):
    with Store(home.database) as store:
        sha = hashlib.sha256(b"new").hexdigest()
        (home.images / f"{sha}.png").write_bytes(b"x")
        store.store_image(Image(sha, str(home.images / f"{sha}.png"), 10, 10, "PNG", 1))
        run = store.start_crawl_run("a")
        store.save_page(
            run,
            [Offer("a", "http://a.test/p/9", "Dune Scarf", 5000, "KRW", sku="9", image_sha256=sha)],
        )
        store.finish_crawl_run(run, "ok")
    result = invoke(home, "match")
    assert result.exit_code == 0
    assert "1 photos have no prediction from model m1 yet" in result.output
    assert groups(home) == [3, 3, 3, 1]


def test_missing_or_unreadable_photos_are_not_waited_for(home):
    with Store(home.database) as store:
        for name, unreadable in (("gone", False), ("broken", True)):
            sha = hashlib.sha256(name.encode()).hexdigest()
            path = home.images / f"{sha}.png"
            path.write_bytes(b"x")
            store.store_image(Image(sha, str(path), 10, 10, "PNG", 1))
            if unreadable:
                stat = path.stat()
                store.mark_unreadable([(sha, "not an image", f"{stat.st_size}:{stat.st_mtime_ns}")])
            else:
                path.unlink()
    result = invoke(home, "match")
    assert result.exit_code == 0
    assert "no prediction" not in result.output


def test_a_scheduled_match_is_skipped_and_the_report_still_written(home):
    promote_new_model(home)
    outcome = run_pipeline(home, ServiceConfig(home.root / "pricelens.toml"), ("match", "report"))
    assert outcome.status == "partial"
    assert "match skipped: model m2 has classified none of the 9 photos" in outcome.error
    assert "groups" not in outcome.counts and outcome.counts["report"]
    assert groups(home) == [3, 3, 3]


def test_a_malformed_answer_key_is_refused_before_matching(home, tmp_path):
    key = tmp_path / "key.json"
    key.write_text(json.dumps({"offers": []}))
    promote_new_model(home)  # matching would be refused too: the key is checked first
    result = invoke(home, "match", "--evaluate", str(key))
    assert result.exit_code == 1
    assert f"{key}: answer key lacks shops/offers/url/product_id" in result.output
