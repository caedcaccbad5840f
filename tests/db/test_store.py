"""The store API against a real SQLite file: offers, observations, pages, models."""

from __future__ import annotations

import json
import sqlite3

import pytest

from db.records import PhotoSource, Prediction
from db.store import Store, offer_key
from tests.db.conftest import T0, later, make_image, make_offer, rows


def count(store: Store, table: str) -> int:
    return rows(store, f"SELECT COUNT(*) FROM {table}")[0][0]


def offer_row(store: Store, offer_id: int) -> dict:
    cursor = store.db.conn.execute("SELECT * FROM offers WHERE id = ?", (offer_id,))
    names = [d[0] for d in cursor.description]
    return dict(zip(names, cursor.fetchone(), strict=True))


def observations(store: Store, offer_id: int) -> list[tuple]:
    return rows(
        store,
        "SELECT crawl_run_id, price, currency, price_raw, price_error FROM price_observations "
        "WHERE offer_id = ? ORDER BY id",
        (offer_id,),
    )


def crawl_counts(store: Store, run_id: int) -> tuple[int, int]:
    return tuple(rows(store, "SELECT pages, offers FROM crawl_runs WHERE id = ?", (run_id,))[0])


# -- offers -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "offer",
    [
        make_offer(),
        make_offer(sku="TS-001"),
        make_offer(price=None, price_error="no number in price text", price_raw="call us"),
        make_offer(in_stock=False, list_price=15900, category_raw="의류 > 상의 > 티셔츠"),
    ],
    ids=["url-only", "with-sku", "no-price", "all-fields"],
)
def test_upsert_offer_twice_gives_the_same_id_and_one_row(store, offer):
    first = store.upsert_offer(offer)
    second = store.upsert_offer(offer)
    assert first == second
    assert count(store, "offers") == 1
    assert count(store, "shops") == 1


def test_upsert_offer_stores_the_fields(store):
    offer = make_offer(
        sku="TS-1",
        list_price=15900,
        in_stock=True,
        category_raw="tops",
        image_url="http://shop.test/i.png",
    )
    row = offer_row(store, store.upsert_offer(offer))
    assert row["offer_key"] == "sku:TS-1"
    assert (row["url"], row["title"], row["price"], row["currency"]) == (
        offer.url,
        offer.title,
        12900,
        "KRW",
    )
    assert (row["list_price"], row["in_stock"], row["category_raw"], row["image_url"]) == (
        15900,
        1,
        "tops",
        "http://shop.test/i.png",
    )
    assert row["first_seen_at"] == row["last_seen_at"] == "2024-05-01T09:00:00.000000Z"


@pytest.mark.parametrize(
    ("offer", "key"),
    [
        (make_offer(sku="A-1"), "sku:A-1"),
        (make_offer(sku=None, url="http://shop.test/p/9"), "url:http://shop.test/p/9"),
        (make_offer(sku="", url="http://shop.test/p/9"), "url:http://shop.test/p/9"),
    ],
)
def test_offer_key_prefers_the_sku_over_the_url(offer, key):
    assert offer_key(offer) == key


def test_same_sku_with_a_new_url_updates_the_same_row(store):
    first = store.upsert_offer(make_offer(sku="TS-1", url="http://shop.test/old"))
    second = store.upsert_offer(
        make_offer(sku="TS-1", url="http://shop.test/new", scraped_at=later(5))
    )
    assert first == second
    assert count(store, "offers") == 1
    assert offer_row(store, first)["url"] == "http://shop.test/new"


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        (make_offer(url="http://s/1"), make_offer(url="http://s/1", title="Renamed"), True),
        (make_offer(url="http://s/1"), make_offer(url="http://s/2"), False),
        (make_offer(sku="X", url="http://s/1"), make_offer(sku="Y", url="http://s/1"), False),
        (make_offer(shop="classic", sku="X"), make_offer(shop="spa", sku="X"), False),
        (
            make_offer(shop="classic", url="http://s/1"),
            make_offer(shop="spa", url="http://s/1"),
            False,
        ),
    ],
    ids=[
        "same-url",
        "other-url",
        "other-sku-same-url",
        "same-sku-other-shop",
        "same-url-other-shop",
    ],
)
def test_offer_identity(store, a, b, same):
    ids = {store.upsert_offer(a), store.upsert_offer(b)}
    assert (len(ids) == 1) is same
    assert count(store, "offers") == len(ids)


def test_title_change_is_applied_to_the_same_offer(store):
    offer_id = store.upsert_offer(make_offer())
    store.upsert_offer(make_offer(title="Striped tee (navy)", scraped_at=later(1)))
    assert offer_row(store, offer_id)["title"] == "Striped tee (navy)"


def test_offer_seen_without_a_price_keeps_its_last_good_price(store):
    run1 = store.start_crawl_run("classic")
    run2 = store.start_crawl_run("classic")
    good = make_offer(price=12900, list_price=15900, currency="KRW")
    bad = make_offer(
        price=None,
        list_price=None,
        currency="KRW",
        price_raw="품절 문의",
        price_error="no number in price text",
        scraped_at=later(60),
    )
    store.save_page(run1, [good])
    (offer_id,) = store.save_page(run2, [bad])
    row = offer_row(store, offer_id)
    assert (row["price"], row["currency"], row["list_price"]) == (12900, "KRW", 15900)
    assert row["last_seen_at"] == "2024-05-01T10:00:00.000000Z"
    assert observations(store, offer_id) == [
        (run1, 12900, "KRW", "12,900원", None),
        (run2, None, "KRW", "품절 문의", "no number in price text"),
    ]


def test_a_new_good_price_replaces_the_old_one(store):
    offer_id = store.upsert_offer(make_offer(price=12900))
    store.upsert_offer(make_offer(price=9900, scraped_at=later(1)))
    assert offer_row(store, offer_id)["price"] == 9900


def test_last_seen_never_moves_back_and_first_seen_stays(store):
    offer_id = store.upsert_offer(make_offer(scraped_at=later(10)))
    store.upsert_offer(make_offer(scraped_at=later(30)))
    store.upsert_offer(make_offer(scraped_at=T0))
    row = offer_row(store, offer_id)
    assert row["first_seen_at"] == "2024-05-01T09:10:00.000000Z"
    assert row["last_seen_at"] == "2024-05-01T09:30:00.000000Z"


@pytest.mark.parametrize(
    ("first", "second", "stored"),
    [(True, None, 1), (False, None, 0), (True, False, 0), (None, True, 1), (None, None, None)],
)
def test_in_stock_unknown_keeps_the_known_state(store, first, second, stored):
    offer_id = store.upsert_offer(make_offer(in_stock=first))
    store.upsert_offer(make_offer(in_stock=second, scraped_at=later(1)))
    assert offer_row(store, offer_id)["in_stock"] == stored


def test_upsert_shop_keeps_its_base_url_when_none_is_given(store):
    shop_id = store.upsert_shop("classic", "http://127.0.0.1:8101")
    assert store.upsert_shop("classic") == shop_id
    assert rows(store, "SELECT base_url FROM shops WHERE id = ?", (shop_id,)) == [
        ("http://127.0.0.1:8101",)
    ]


# -- observations ------------------------------------------------------------------------


@pytest.fixture
def observed(store):
    run_id = store.start_crawl_run("classic")
    offer_id = store.upsert_offer(make_offer())
    store.record_observation(offer_id, run_id, make_offer())
    return offer_id, run_id


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE price_observations SET price = 1",
        "UPDATE price_observations SET price_error = 'edited', price = NULL",
        "UPDATE price_observations SET observed_at = '2000-01-01T00:00:00Z'",
        "DELETE FROM price_observations",
        "DELETE FROM price_observations WHERE offer_id = 1",
    ],
)
def test_price_observations_are_append_only(store, observed, statement):
    offer_id, run_id = observed
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        store.db.conn.execute(statement)
    store.db.conn.rollback()
    assert observations(store, offer_id) == [(run_id, 12900, "KRW", "12,900원", None)]


@pytest.mark.parametrize("second_price", [12900, 9900, None])
def test_recording_the_same_offer_twice_in_one_run_keeps_one_row(store, observed, second_price):
    offer_id, run_id = observed
    store.record_observation(offer_id, run_id, make_offer(price=second_price))
    assert observations(store, offer_id) == [(run_id, 12900, "KRW", "12,900원", None)]


@pytest.mark.parametrize("runs", [2, 3])
def test_each_crawl_run_adds_one_observation(store, runs):
    offer_id = store.upsert_offer(make_offer())
    run_ids = [store.start_crawl_run("classic") for _ in range(runs)]
    for n, run_id in enumerate(run_ids):
        store.record_observation(offer_id, run_id, make_offer(price=10000 + n))
    assert [(r[0], r[1]) for r in observations(store, offer_id)] == [
        (run_id, 10000 + n) for n, run_id in enumerate(run_ids)
    ]


@pytest.mark.parametrize(
    ("price", "error", "stored"),
    [
        (None, None, (None, "no price found")),
        (None, "", (None, "no price found")),
        (None, "zero price", (None, "zero price")),
        (12900, None, (12900, None)),
        # a price that was read is the evidence; a stray error text is not kept beside it
        (12900, "ignored", (12900, None)),
    ],
)
def test_observation_price_and_reason(store, price, error, stored):
    run_id = store.start_crawl_run("classic")
    offer = make_offer(price=price, price_error=error)
    store.record_observation(store.upsert_offer(offer), run_id, offer)
    assert rows(store, "SELECT price, price_error FROM price_observations") == [stored]


def test_observation_for_a_missing_crawl_run_is_refused(store):
    offer_id = store.upsert_offer(make_offer())
    with pytest.raises(sqlite3.IntegrityError):
        store.record_observation(offer_id, 999, make_offer())
    assert count(store, "price_observations") == 0


# -- pages -------------------------------------------------------------------------------


def test_save_page_writes_everything_and_bumps_the_run(store):
    run_id = store.start_crawl_run("classic", "http://127.0.0.1:8101")
    img_a, img_b = make_image("a"), make_image("b")
    offers = [
        make_offer(url="http://s/1", sku="A", image_sha256=img_a.sha256),
        make_offer(
            url="http://s/2",
            sku="B",
            image_sha256=img_b.sha256,
            price=None,
            price_error="no number in price text",
        ),
        make_offer(url="http://s/3"),
    ]
    ids = store.save_page(
        run_id, offers, [img_a, img_b], {img_a.sha256: "tshirt", img_b.sha256: "bag"}
    )
    assert len(set(ids)) == 3
    assert [offer_row(store, i)["url"] for i in ids] == ["http://s/1", "http://s/2", "http://s/3"]
    assert rows(
        store,
        "SELECT sha256, path, width, height, format, bytes, source_url FROM images ORDER BY sha256",
    ) == sorted(
        [
            (i.sha256, i.path, i.width, i.height, i.format, i.bytes, i.source_url)
            for i in (img_a, img_b)
        ]
    )
    assert rows(store, "SELECT offer_id, crawl_run_id FROM price_observations ORDER BY id") == [
        (i, run_id) for i in ids
    ]
    assert set(rows(store, "SELECT image_sha256, label, source FROM labels")) == {
        (img_a.sha256, "tshirt", "shop"),
        (img_b.sha256, "bag", "shop"),
    }
    assert crawl_counts(store, run_id) == (1, 3)


def test_photo_sources_are_kept_by_url_and_found_for_their_shop_only(store):
    run_id = store.start_crawl_run("classic")
    img_a, img_b = make_image("a"), make_image("b")
    url_a, url_b = "http://s/img/a.png", "http://s/img/b.png"
    store.save_page(
        run_id,
        [make_offer(url="http://s/1", image_url=url_a, image_sha256=img_a.sha256)],
        [img_a],
        photo_sources=[PhotoSource(url_a, img_a.sha256, '"v1"', None)],
    )
    other = store.start_crawl_run("spa")
    store.save_page(
        other,
        [make_offer(shop="spa", url="http://t/1", image_url=url_b, image_sha256=img_b.sha256)],
        [img_b],
        photo_sources=[PhotoSource(url_b, img_b.sha256, None, "Mon, 02 Nov 2026 10:00:00 GMT")],
    )
    assert store.known_photos("classic") == {
        url_a: (PhotoSource(url_a, img_a.sha256, '"v1"', None), img_a)
    }
    # the shop put a new photo under the same URL: the row follows it
    store.save_page(
        run_id, [], [img_b], photo_sources=[PhotoSource(url_a, img_b.sha256, '"v2"', None)]
    )
    assert store.known_photos("classic")[url_a] == (
        PhotoSource(url_a, img_b.sha256, '"v2"', None),
        img_b,
    )
    assert store.known_photos("nowhere") == {}


@pytest.mark.parametrize("pages", [1, 2, 4])
def test_save_page_counts_pages_and_offers(store, pages):
    run_id = store.start_crawl_run("classic")
    for page in range(pages):
        store.save_page(run_id, [make_offer(url=f"http://s/{page}/{n}") for n in range(3)])
    assert crawl_counts(store, run_id) == (pages, 3 * pages)
    assert count(store, "offers") == 3 * pages


def test_save_page_with_no_offers_still_counts_the_page(store):
    run_id = store.start_crawl_run("classic")
    assert store.save_page(run_id, []) == []
    assert crawl_counts(store, run_id) == (1, 0)


def test_shop_label_is_updated_not_duplicated(store):
    run_id = store.start_crawl_run("classic")
    image = make_image()
    store.save_page(run_id, [], [image], {image.sha256: "shirt"})
    store.save_page(run_id, [], [image], {image.sha256: "tshirt"})
    assert rows(store, "SELECT label, source FROM labels") == [("tshirt", "shop")]
    assert count(store, "images") == 1


MISSING = "f" * 64


@pytest.mark.parametrize(
    "failure",
    ["offer-image-not-stored", "label-for-unknown-image", "unknown-crawl-run"],
)
def test_save_page_is_all_or_nothing(store, failure):
    run_id = store.start_crawl_run("classic")
    kept = store.save_page(run_id, [make_offer(url="http://s/kept", price=5000)])
    image = make_image("page")
    offers = [
        make_offer(url="http://s/1", image_sha256=image.sha256),
        make_offer(url="http://s/kept", price=7000, title="changed"),
        make_offer(url="http://s/2"),
    ]
    labels = {image.sha256: "dress"}
    target = run_id
    if failure == "offer-image-not-stored":
        offers.append(make_offer(url="http://s/3", image_sha256=MISSING))
    elif failure == "label-for-unknown-image":
        labels[MISSING] = "coat"
    else:
        target = 999
    with pytest.raises(sqlite3.IntegrityError):
        store.save_page(target, offers, [image], labels)
    # only the earlier page is in the file, untouched
    assert rows(store, "SELECT id, url, title, price FROM offers") == [
        (kept[0], "http://s/kept", "Striped tee", 5000)
    ]
    assert count(store, "price_observations") == 1
    assert count(store, "images") == 0
    assert count(store, "labels") == 0
    assert crawl_counts(store, run_id) == (1, 1)


def test_store_stays_usable_after_a_failed_page(store):
    run_id = store.start_crawl_run("classic")
    with pytest.raises(sqlite3.IntegrityError):
        store.save_page(run_id, [make_offer(image_sha256=MISSING)])
    (offer_id,) = store.save_page(run_id, [make_offer()])
    assert observations(store, offer_id) == [(run_id, 12900, "KRW", "12,900원", None)]
    assert crawl_counts(store, run_id) == (1, 1)


def test_saved_page_is_visible_to_another_connection(store, db_path):
    run_id = store.start_crawl_run("classic")
    store.save_page(run_id, [make_offer()])
    other = sqlite3.connect(db_path)
    try:
        assert other.execute("SELECT COUNT(*) FROM price_observations").fetchone() == (1,)
    finally:
        other.close()


def test_finish_crawl_run_counts_its_errors(store):
    run_id = store.start_crawl_run("classic")
    other_run = store.start_crawl_run("classic")
    store.record_crawl_error(run_id, "timeout", url="http://s/1", step="goto")
    store.record_crawl_error(run_id, "no items", url="http://s/2", step="wait")
    store.record_crawl_error(other_run, "elsewhere")
    store.finish_crawl_run(run_id, "partial", error="2 pages failed")
    run = store.crawl_run(run_id)
    assert (run["status"], run["errors"], run["error"], run["shop"]) == (
        "partial",
        2,
        "2 pages failed",
        "classic",
    )
    assert run["finished_at"] is not None


def test_crawl_run_status_is_checked(store):
    run_id = store.start_crawl_run("classic")
    with pytest.raises(sqlite3.IntegrityError):
        store.finish_crawl_run(run_id, "done-ish")
    assert store.crawl_run(run_id)["status"] == "running"


# -- models ------------------------------------------------------------------------------


def test_register_model_round_trips_through_current_model(store):
    assert store.current_model() is None
    model_id = store.register_model(
        "v1", "smallcnn", "/models/v1.pt", {"accuracy": 0.91}, {"train": 60000}
    )
    current = store.current_model()
    assert current is not None
    assert (current.id, current.version, current.architecture, current.path) == (
        model_id,
        "v1",
        "smallcnn",
        "/models/v1.pt",
    )
    assert current.metrics == {"accuracy": 0.91}
    assert current.is_current is True
    assert json.loads(rows(store, "SELECT data_json FROM models")[0][0]) == {"train": 60000}


@pytest.mark.parametrize(("make_current", "expected"), [(True, "v2"), (False, "v1")])
def test_only_one_model_is_current(store, make_current, expected):
    store.register_model("v1", "smallcnn", "/m/v1.pt", {}, {})
    store.register_model("v2", "smallcnn", "/m/v2.pt", {}, {}, make_current=make_current)
    assert store.current_model().version == expected
    assert rows(store, "SELECT version FROM models WHERE is_current = 1") == [(expected,)]


def test_database_refuses_a_second_current_model(store):
    store.register_model("v1", "smallcnn", "/m/v1.pt", {}, {})
    store.register_model("v2", "smallcnn", "/m/v2.pt", {}, {}, make_current=False)
    with pytest.raises(sqlite3.IntegrityError):
        store.db.conn.execute("UPDATE models SET is_current = 1 WHERE version = 'v2'")
    store.db.conn.rollback()
    assert store.current_model().version == "v1"


def test_model_versions_are_unique(store):
    store.register_model("v1", "smallcnn", "/m/v1.pt", {}, {})
    with pytest.raises(sqlite3.IntegrityError):
        store.register_model("v1", "other", "/m/other.pt", {}, {})
    # the failed registration did not demote the current model
    assert store.current_model().architecture == "smallcnn"


def test_store_reopens_with_its_data(db_path):
    with Store(db_path) as first:
        run_id = first.start_crawl_run("classic")
        first.save_page(run_id, [make_offer()])
    with Store(db_path) as second:
        assert second.count("offers") == 1
        assert second.count("price_observations") == 1


def test_a_from_price_is_marked_on_the_offer_and_its_observation(store):
    run = store.start_crawl_run("classic")
    (offer_id,) = store.save_page(run, [make_offer(price=9900, price_is_from=True)])
    assert offer_row(store, offer_id)["price_is_from"] == 1
    observed = rows(store, "SELECT price, price_is_from FROM price_observations")
    assert observed == [(9900, 1)]
    later_run = store.start_crawl_run("classic")  # the shop now shows one price
    store.save_page(later_run, [make_offer(price=10900, scraped_at=later(5))])
    assert offer_row(store, offer_id)["price_is_from"] == 0
    unread = store.start_crawl_run("classic")  # an unreadable price keeps the last one's mark
    store.save_page(unread, [make_offer(price=None, price_error="x", scraped_at=later(9))])
    assert (offer_row(store, offer_id)["price"], offer_row(store, offer_id)["price_is_from"]) == (
        10900,
        0,
    )


def test_an_unreadable_mark_is_kept_for_every_model_until_a_prediction_clears_it(store):
    good, bad = make_image("good"), make_image("bad")
    store.save_page(store.start_crawl_run("classic"), [], [good, bad])
    v1 = store.register_model("v1", "smallcnn", "/m/v1.pt", {}, {})
    v2 = store.register_model("v2", "smallcnn", "/m/v2.pt", {}, {})
    store.mark_unreadable([(bad.sha256, "cannot identify image file", "11:123")])
    for model_id in (v1, v2):  # the file, not the model, is unreadable
        marks = {
            r["sha256"]: (r["unreadable_reason"], r["unreadable_file"])
            for r in store.images_without_prediction(model_id)
        }
        assert marks == {
            good.sha256: (None, None),
            bad.sha256: ("cannot identify image file", "11:123"),
        }
    store.save_predictions([Prediction(bad.sha256, v1, "bag", 0.9, b"\0" * 4)])
    assert (
        rows(store, "SELECT unreadable_reason, unreadable_file FROM images") == [(None, None)] * 2
    )
