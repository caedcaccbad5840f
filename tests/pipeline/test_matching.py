"""`pricelens match`: incremental, stable group ids, users' corrections, the evaluation, and
the grouping rules, on fixture databases built through the Store API."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from db.records import Offer, Prediction
from db.store import OfferForMatching, Store
from pipeline.cli import cli
from pipeline.matching import (
    Correction,
    MatchSettings,
    _Titles,
    group_offers,
    image_trust,
    offer_fingerprint,
)
from tests.pipeline.report_fixture import DAY2, build_store, embedding, photo


def invoke(home: Path, *args: str):
    return CliRunner().invoke(cli, ["--home", str(home), *args])


def groups_by_sku(home: Path) -> dict[str, int]:
    with Store(home / "pricelens.db") as store:
        return {
            r["sku"]: r["group_id"]
            for r in store.db.query(
                "SELECT o.sku, gm.group_id FROM offers o "
                "JOIN group_members gm ON gm.offer_id = o.id"
            )
        }


@pytest.fixture
def home(tmp_path):
    ids = build_store(tmp_path / "pricelens.db")
    result = invoke(tmp_path, "match")
    assert result.exit_code == 0, result.output
    assert "rematched_offers 6" in result.output
    return tmp_path, ids


def add_offer(home: Path, shop: str, sku: str, title: str, price: int, product: int, label: str):
    with Store(home / "pricelens.db") as store:
        model = store.current_model()
        image = photo(home / "images", product, shop)
        run = store.start_crawl_run(shop)
        offer = Offer(
            shop,
            f"http://{shop}.test/p/{sku}",
            title,
            price,
            "KRW",
            sku=sku,
            image_sha256=image.sha256,
            scraped_at=DAY2 + timedelta(days=1),
        )
        (offer_id,) = store.save_page(run, [offer], [image])
        store.finish_crawl_run(run, "ok")
        store.save_predictions(
            [Prediction(image.sha256, model.id, label, 0.9, embedding(product).tobytes())]
        )
        return offer_id


def test_the_fixture_groups_as_expected(home):
    path, _ = home
    groups = groups_by_sku(path)
    assert groups["c-1"] == groups["s-1"] == groups["m-1"]
    assert groups["c-2"] == groups["s-2"] != groups["c-1"]
    assert groups["m-3"] not in (groups["c-1"], groups["c-2"])


def test_a_new_offer_joins_its_product_and_every_group_keeps_its_id(home):
    path, _ = home
    before = groups_by_sku(path)
    add_offer(path, "scroll", "x-1", "Black Cotton Tee (M)", 12500, 0, "tshirt")
    result = invoke(path, "match", "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["rematched_offers"] == 1  # only the new one
    after = groups_by_sku(path)
    assert after["x-1"] == before["c-1"]
    assert {sku: after[sku] for sku in before} == before


def test_a_changed_title_is_rematched_and_the_rest_stays(home):
    path, ids = home
    before = groups_by_sku(path)
    with Store(path / "pricelens.db") as store:
        store.db.execute("UPDATE offers SET title = 'Canvas Shopper' WHERE id = ?", [ids["s-1"]])
        store.db.conn.commit()
    result = invoke(path, "match", "--format", "json")
    assert json.loads(result.output)["rematched_offers"] == 1
    after = groups_by_sku(path)
    assert after["s-1"] != before["s-1"]  # no longer looks like the tee
    assert after["c-1"] == after["m-1"] == before["c-1"]
    assert after["c-2"] == before["c-2"] and after["m-3"] == before["m-3"]


def test_full_rematch_keeps_the_group_ids(home):
    path, _ = home
    before = groups_by_sku(path)
    result = invoke(path, "match", "--full", "--format", "json")
    assert json.loads(result.output)["rematched_offers"] == 6
    assert groups_by_sku(path) == before


def test_unlink_and_link_persist_win_over_the_model_and_are_training_signal(home):
    path, ids = home
    before = groups_by_sku(path)
    result = invoke(path, "match", "unlink", f"o{ids['s-1']}")
    assert result.exit_code == 0, result.output
    alone = groups_by_sku(path)["s-1"]
    assert alone not in before.values() and f"g{alone}" in result.output
    for args in (["match"], ["match", "--full"]):
        assert invoke(path, *args).exit_code == 0
        groups = groups_by_sku(path)
        assert groups["s-1"] != groups["c-1"] == groups["m-1"] == before["c-1"]
    result = invoke(path, "match", "corrections", "--format", "json")
    feedback = json.loads(result.output)
    assert {(f["offer_id"], f["other_offer_id"], f["same"]) for f in feedback} == {
        (ids["c-1"], ids["s-1"], 0),
        (ids["m-1"], ids["s-1"], 0),
    }
    # the user changes their mind: the latest word on a pair wins
    result = invoke(path, "match", "link", str(ids["s-1"]), f"o{ids['c-1']}")
    assert result.exit_code == 0, result.output
    assert invoke(path, "match", "--full").exit_code == 0
    groups = groups_by_sku(path)
    assert groups["s-1"] == groups["c-1"] == before["c-1"]
    with Store(path / "pricelens.db") as store:
        feedback = {(f["offer_id"], f["other_offer_id"]): f["same"] for f in store.match_feedback()}
        sources = dict(store.db.execute("SELECT offer_id, source FROM group_members").fetchall())
        history = store.db.execute("SELECT COUNT(*) FROM match_corrections").fetchone()[0]
    assert feedback[(ids["c-1"], ids["s-1"])] == 1 and feedback[(ids["m-1"], ids["s-1"])] == 0
    assert history == 3  # every correction is kept, the latest per pair is in force
    assert sources[ids["s-1"]] == "user" and sources[ids["c-2"]] == "model"


def test_link_puts_unrelated_offers_together_against_the_scores(home):
    path, ids = home
    result = invoke(path, "match", "link", f"o{ids['m-3']}", f"o{ids['c-2']}")  # bag ~ boots
    assert result.exit_code == 0, result.output
    for args in (["match"], ["match", "--full"]):
        assert invoke(path, *args).exit_code == 0
        groups = groups_by_sku(path)
        assert groups["m-3"] == groups["c-2"] == groups["s-2"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["link", "o1", "o1"], "cannot link offer o1 to itself"),
        (["link", "o1", "o999"], "offer o999 does not exist"),
        (["link", "o1", "o2"], "both from shop 'classic'"),
        (["link", "g1", "o2"], "'g1' is a group id"),
        (["link", "abc", "o2"], "'abc' is not a group (g12) or offer (o34) id"),
        (["unlink", "o4"], "offer o4 is alone in group"),
    ],
)
def test_bad_corrections_are_refused_with_the_reason(home, args, message):
    result = invoke(home[0], "match", *args)
    assert result.exit_code != 0 and message in result.output, result.output


def test_link_refuses_a_second_offer_from_one_shop_in_a_group(home):
    path, ids = home
    other_tee = add_offer(path, "spa", "s-9", "Cotton Tee Black", 13000, 3, "tshirt")
    invoke(path, "match")
    result = invoke(path, "match", "link", f"o{other_tee}", f"o{ids['c-1']}")
    assert result.exit_code != 0
    assert f"already has offer o{ids['s-1']} from shop 'spa'" in result.output


def test_link_against_an_earlier_unlink_moves_the_unlinked_member_out_now(home):
    path, ids = home
    assert invoke(path, "match", "unlink", f"o{ids['s-1']}").exit_code == 0  # not c-1, not m-1
    result = invoke(path, "match", "link", f"o{ids['s-1']}", f"o{ids['c-1']}")  # but c-1 after all
    assert result.exit_code == 0, result.output
    groups = groups_by_sku(path)
    assert groups["s-1"] == groups["c-1"] != groups["m-1"]  # the report agrees at once
    assert f"o{ids['m-1']} (menu) left the group for g{groups['m-1']}" in result.output
    assert f"`pricelens match link {ids['m-1']} {ids['s-1']}`" in result.output
    assert invoke(path, "match", "--full").exit_code == 0
    after = groups_by_sku(path)
    assert after["s-1"] == after["c-1"] != after["m-1"]
    # the way out the message names: m-1 is the same product after all
    result = invoke(path, "match", "link", f"o{ids['m-1']}", f"o{ids['s-1']}")
    assert result.exit_code == 0 and "left the group" not in result.output, result.output
    assert invoke(path, "match", "--full").exit_code == 0
    after = groups_by_sku(path)
    assert after["s-1"] == after["c-1"] == after["m-1"]


def test_link_contradicting_an_earlier_link_is_refused_and_changes_nothing(home):
    path, ids = home
    scarf = add_offer(path, "scroll", "x-1", "Wool Scarf", 9000, 7, "bag")
    assert invoke(path, "match").exit_code == 0
    result = invoke(path, "match", "link", f"o{scarf}", f"o{ids['c-2']}")
    assert result.exit_code == 0, result.output
    before = groups_by_sku(path)
    with Store(path / "pricelens.db") as store:
        history = store.db.execute("SELECT COUNT(*) FROM match_corrections").fetchone()[0]
    result = invoke(path, "match", "link", f"o{scarf}", f"o{ids['m-3']}")
    assert result.exit_code != 0
    assert f"o{scarf} was linked to o{ids['c-2']} ('classic'), which is not in group" in (
        result.output
    )
    assert f"`pricelens match unlink {scarf}`" in result.output
    assert groups_by_sku(path) == before
    with Store(path / "pricelens.db") as store:
        assert store.db.execute("SELECT COUNT(*) FROM match_corrections").fetchone()[0] == history


def test_evaluate_prints_f1_and_both_baselines(home):
    path, _ = home
    key = {
        "shops": {
            shop: {
                "offers": [
                    {"url": f"http://{shop}.test/p/{sku}", "product_id": product}
                    for sku, product in offers
                ]
            }
            for shop, offers in {
                "classic": [("c-1", "tee"), ("c-2", "boots")],
                "spa": [("s-1", "tee"), ("s-2", "boots")],
                "menu": [("m-1", "tee"), ("m-3", "bag")],
            }.items()
        }
    }
    (path / "key.json").write_text(json.dumps(key))
    result = invoke(path, "match", "--evaluate", str(path / "key.json"), "--format", "json")
    assert result.exit_code == 0, result.output
    scores = json.loads(result.output)
    assert scores["f1"] == scores["precision"] == scores["recall"] == 1.0
    assert set(scores["baselines"]) == {"title_only", "image_only"}
    assert all("f1" in b for b in scores["baselines"].values())
    # three shops, too few clear title matches to doubt any photos: full trust, shown
    assert scores["image_trust"] == {"classic/menu": 1.0, "classic/spa": 1.0, "menu/spa": 1.0}
    text = invoke(path, "match", "--evaluate", str(path / "key.json"))
    assert "f1 1.0000" in text.output and "title_only: " in text.output
    assert "image trust: classic/menu 1.0000" in text.output
    bad = invoke(path, "match", "--evaluate", str(path / "missing.json"))
    assert bad.exit_code != 0 and "missing.json: cannot read answer key" in bad.output


FIXTURE_PRODUCTS = {
    "classic": [("c-1", "tee"), ("c-2", "boots")],
    "spa": [("s-1", "tee"), ("s-2", "boots")],
    "menu": [("m-1", "tee"), ("m-3", "bag")],
}
MALL_PORTS = {"classic": 8101, "spa": 8102, "menu": 8104}


def answer_key(base: str, with_sku: bool = True, extra: int = 0) -> dict:
    """The fixture's answer key as a demo mall serving each shop at *base* (formatted with
    shop and port) would write it, plus *extra* offers per shop that were never crawled."""
    shops = {}
    for shop, offers in FIXTURE_PRODUCTS.items():
        offers = offers + [(f"{shop}-new-{n}", f"new-{n}") for n in range(extra)]
        url = base.format(shop=shop, port=MALL_PORTS[shop])
        shops[shop] = {
            "offers": [
                {"url": f"{url}/p/{sku}", "product_id": product}
                | ({"sku": sku} if with_sku else {})
                for sku, product in offers
            ]
        }
    return {"shops": shops}


@pytest.mark.parametrize(
    "key",
    [
        answer_key("http://127.0.0.1:{port}"),  # the mall served on other ports than crawled
        answer_key("http://{shop}.test:{port}"),
        answer_key("http://{shop}.test:{port}", with_sku=False),  # no SKU: the URL's path
    ],
)
def test_evaluate_finds_the_offers_by_sku_or_path_wherever_the_shop_was_served(home, key):
    path, _ = home
    (path / "key.json").write_text(json.dumps(key))
    result = invoke(path, "match", "--evaluate", str(path / "key.json"), "--format", "json")
    assert result.exit_code == 0, result.output
    scores = json.loads(result.output)
    assert (scores["f1"], scores["offers"], scores["missing"]) == (1.0, 6, 0)
    assert all(b["offers"] == 6 for b in scores["baselines"].values())


def test_evaluate_warns_about_missing_offers_and_refuses_a_key_that_matches_nothing(home):
    path, _ = home
    (path / "key.json").write_text(json.dumps(answer_key("http://{shop}.test", extra=1)))
    partial = CliRunner().invoke(
        cli, ["--home", str(path), "match", "--evaluate", str(path / "key.json")]
    )
    assert partial.exit_code == 0, partial.output
    assert "f1 1.0000" in partial.stdout and "offers 6, missing 3" in partial.stdout
    assert "warning: 3 of the 9 offers in" in partial.stderr
    other = {"shops": {"classic": {"offers": [{"url": "http://x.test/p/zz", "product_id": 1}]}}}
    (path / "other.json").write_text(json.dumps(other))
    refused = invoke(path, "match", "--evaluate", str(path / "other.json"))
    assert refused.exit_code == 1
    assert "other.json: none of its 1 offers is in" in refused.output


def synthetic(n_products: int, shops: tuple[str, ...], seed: int = 0) -> list[OfferForMatching]:
    rng = np.random.default_rng(seed)
    offers = []
    for product in range(n_products):
        base = rng.normal(size=32)
        price = int(rng.integers(100, 1000)) * 100
        for shop in shops:
            vector = base + rng.normal(scale=0.15, size=32)
            vector = (vector / np.linalg.norm(vector)).astype(np.float32)
            offers.append(
                OfferForMatching(
                    len(offers) + 1,
                    shop,
                    f"item {product} model {product * 7}",
                    price,
                    "KRW",
                    "bag",
                    vector.tobytes(),
                    None,
                )
            )
    return offers


def partition(groups) -> set[frozenset[int]]:
    return {frozenset(m.offer_id for m in g.members) for g in groups}


def test_groups_take_one_offer_per_shop_and_respect_price_plausibility():
    offers = synthetic(30, ("a", "b", "c"))
    groups = group_offers(offers)
    assert partition(groups) == {frozenset({3 * p + 1, 3 * p + 2, 3 * p + 3}) for p in range(30)}
    twice = [*offers, replace(offers[0], offer_id=999)]  # a second offer from shop a
    shop_of = {o.offer_id: o.shop for o in twice}
    for group in group_offers(twice):
        shops = [shop_of[m.offer_id] for m in group.members]
        assert len(set(shops)) == len(shops)
    dear = [replace(o, price=o.price * 2) if o.shop == "c" else o for o in offers]
    assert all(len(g.members) <= 2 for g in group_offers(dear))  # 2x the price: not the same


def test_prices_in_two_currencies_neither_rule_out_nor_penalise_a_match():
    offers = synthetic(30, ("a", "b", "c"))
    together = partition(group_offers(offers))
    # shop c prices in USD: twice the won figure is no price gap; photo and title decide
    dollars = [
        replace(o, price=o.price * 2, currency="USD") if o.shop == "c" else o for o in offers
    ]
    assert partition(group_offers(dollars)) == together
    won = [replace(o, price=o.price * 2) if o.shop == "c" else o for o in offers]
    assert all(len(g.members) <= 2 for g in group_offers(won))  # in one currency it still does
    # with the soft penalty on, a pair in two currencies scores as if it had no price
    penalised = MatchSettings(price_weight=0.05, max_price_ratio=100.0)

    def scores(offers) -> dict[int, float]:
        return {m.offer_id: m.score for g in group_offers(offers, penalised) for m in g.members}

    unpriced = [replace(o, price=None) if o.shop == "c" else o for o in offers]
    assert scores(dollars) == scores(unpriced) != scores(won)


def test_title_only_dense_scoring_equals_the_prefiltered_path_when_images_decide_nothing():
    offers = synthetic(40, ("a", "b"), seed=3)
    title_only = MatchSettings(image_weight=0.0, title_weight=1.0)
    small_chunks = replace(title_only, chunk=7)
    assert partition(group_offers(offers, title_only)) == partition(
        group_offers(offers, small_chunks)
    )


def test_blocks_take_the_shops_category_and_the_models_top_two():
    offers = synthetic(20, ("a", "b"), seed=5)
    together = {frozenset({2 * p + 1, 2 * p + 2}) for p in range(20)}

    def shop_b(**fields):
        return [replace(o, **fields) if o.shop == "b" else o for o in offers]

    # shop b files everything under a wrong category, but the model sees a bag
    misfiled = shop_b(label="shirt", predicted_label="bag")
    assert partition(group_offers(misfiled)) == together
    # no category from shop b; the model's best guess is wrong, its runner-up right
    unsure = shop_b(label="shirt", predicted_label="shirt", second_label="bag")
    assert partition(group_offers(replace_all(unsure, second_confidence=0.3))) == together
    assert len(group_offers(replace_all(unsure, second_confidence=0.05))) == 40  # too unlikely
    # a user's label is the only block: no model guess joins it elsewhere
    labelled = shop_b(label="shirt", predicted_label=None, second_label=None)
    assert len(group_offers(labelled)) == 40


def test_a_shop_whose_photos_agree_with_nothing_is_matched_on_its_titles():
    rng = np.random.default_rng(7)
    words = [f"{a}{b}" for a in ("ka", "lo", "mi", "nu", "pe", "ro") for b in "stvxz"]
    titles = [" ".join(rng.choice(words, 3, replace=False)) for _ in range(30)]
    offers = [
        replace(o, title=titles[(o.offer_id - 1) // 3])
        for o in synthetic(30, ("a", "b", "c"), seed=6)
    ]
    restyled = []
    for o in offers:  # shop c's photos: unrelated to the product (a heavy restyling)
        if o.shop == "c":
            noise = rng.normal(size=32).astype(np.float32)
            o = replace(o, embedding=(noise / np.linalg.norm(noise)).tobytes())
        restyled.append(o)
    trust = image_trust(restyled, _Titles(restyled), MatchSettings())
    assert trust[frozenset("ab")] == 1.0  # photos agree with every clear title match
    assert trust[frozenset("ac")] < 0.2 and trust[frozenset("bc")] < 0.2
    together = {frozenset({3 * p + 1, 3 * p + 2, 3 * p + 3}) for p in range(30)}
    assert partition(group_offers(restyled)) == together
    untrusting = partition(group_offers(restyled, MatchSettings(image_trust=False)))
    assert untrusting != together  # the raw blend lets c's photos veto its offers
    assert partition(group_offers(offers)) == together  # photos that agree keep their weight


def replace_all(offers, **fields):
    return [replace(o, **fields) for o in offers]


def test_stored_predictions_give_matching_the_top_two_unless_a_user_labelled(home):
    path, ids = home
    with Store(path / "pricelens.db") as store:
        model = store.current_model()
        sha = store.db.execute("SELECT image_sha256 FROM offers WHERE id = ?", [ids["s-1"]])
        (sha,) = sha.fetchone()
        vector = embedding(0).tobytes()
        store.save_predictions([Prediction(sha, model.id, "shirt", 0.6, vector, "tshirt", 0.35)])
        offer = next(o for o in store.offers_for_matching(model.id) if o.offer_id == ids["s-1"])
        assert (offer.predicted_label, offer.second_label) == ("shirt", "tshirt")
        assert offer.second_confidence == pytest.approx(0.35)
        store.set_label(sha, "bag", "user")
        offer = next(o for o in store.offers_for_matching(model.id) if o.offer_id == ids["s-1"])
        assert offer.label == "bag" and offer.predicted_label is offer.second_label is None


def test_incremental_grouping_never_merges_two_existing_groups():
    offers = synthetic(5, ("a", "b"))
    split = [
        replace(o, group_id=o.offer_id, fingerprint=offer_fingerprint(o), score=1.0) for o in offers
    ]
    assert len(group_offers(split, incremental=True)) == 10  # all kept as they were
    assert len(group_offers(split, incremental=False)) == 5  # a full run regroups
    corrections = [Correction(1, 2, False)]
    assert len(group_offers(offers, corrections=corrections)) == 6
