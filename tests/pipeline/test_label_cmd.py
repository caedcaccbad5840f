"""`pricelens label`: a photo named by offer id (o34 or 34) or by sha256 prefix, and a distinct
error for each way a reference can fail to name exactly one photo."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from db.records import Image, Offer
from db.store import Store
from pipeline.cli import cli
from tests.pipeline.scraped import add_scraped_photos

TWINS = ["abcdef01" + "0" * 56, "abcdef01" + "1" * 56]  # one 8-character prefix, two photos
DIGITS = "12345678" + "9" * 56  # a sha256 whose prefix reads as a number


@pytest.fixture
def home(tmp_path):
    (photo,) = add_scraped_photos(tmp_path, 1)
    with Store(tmp_path / "pricelens.db") as store:
        for sha in (*TWINS, DIGITS):
            store.store_image(Image(sha, str(tmp_path / "images" / sha), 28, 28, "png", 100))
        with_photo = store.upsert_offer(
            Offer("classic", "http://127.0.0.1:1/p/1", "Tee", 12900, "KRW", image_sha256=photo)
        )
        without = store.upsert_offer(Offer("classic", "http://127.0.0.1:1/p/2", "Cap", 900, "KRW"))
    return tmp_path, photo, with_photo, without


def label(home, reference: str, category: str = "bag"):
    return CliRunner().invoke(cli, ["--home", str(home), "label", reference, category])


def user_label(home, sha: str) -> str | None:
    with Store(home / "pricelens.db") as store:
        rows = store.db.query(
            "SELECT label FROM labels WHERE image_sha256 = ? AND source = 'user'", [sha]
        )
        return next((row["label"] for row in rows), None)


@pytest.mark.parametrize("form", ["o{}", "O{}", "{}", " o{} "])
def test_an_offer_id_names_its_photo_in_every_form_the_cli_prints(home, form):
    path, photo, offer, _ = home
    result = label(path, form.format(offer), "dress")
    assert result.exit_code == 0, result.output
    assert result.output == f"{photo[:12]}: dress\n" and user_label(path, photo) == "dress"


def test_a_prefix_or_a_whole_sha256_names_a_photo(home):
    path, photo, _, _ = home
    assert label(path, photo[:8].upper()).exit_code == 0 and user_label(path, photo) == "bag"
    assert label(path, TWINS[1], "coat").exit_code == 0 and user_label(path, TWINS[1]) == "coat"
    # a number of 8+ digits that is no offer id is a prefix
    assert label(path, DIGITS[:8]).exit_code == 0 and user_label(path, DIGITS) == "bag"


@pytest.mark.parametrize(
    ("reference", "message"),
    [
        ("o{without}", "o{without}: offer o{without} has no photo"),
        ("o999", "o999: no offer o999"),
        ("999", "999: no offer o999"),
        ("abcdef0", "abcdef0: a sha256 prefix needs at least 8 hex characters"),
        ("abcdef01", "abcdef01: matches several photos (abcdef010000, abcdef011111, ...)"),
        ("deadbeefdeadbeef", "deadbeefdeadbeef: no stored photo whose sha256 starts with it"),
        ("87654321", "87654321: no offer with this id and no stored photo whose sha256"),
        ("abcdef0_", "'abcdef0_': neither an offer id (o34) nor a photo's sha256"),
        ("g12", "'g12': neither an offer id (o34) nor a photo's sha256"),
    ],
)
def test_each_way_a_reference_fails_has_its_own_message(home, reference, message):
    path, _, _, without = home
    result = label(path, reference.format(without=without))
    assert result.exit_code == 1
    assert f"Error: {message.format(without=without)}" in result.output


def test_like_wildcards_in_a_prefix_match_only_themselves(home):
    path, *_ = home
    with Store(path / "pricelens.db") as store:
        assert store.photos_with_prefix("abcdef01") == TWINS
        assert store.photos_with_prefix("abcdef0_") == []
        assert store.photos_with_prefix("abcdef%") == []
        assert store.photos_with_prefix("ABCDEF01", limit=1) == TWINS[:1]
