"""Matching speed at scale: 100,000 synthetic offers (5 shops, 64-d embeddings, titles in
several house styles and two languages, look-alike distractors, some mislabelled photos).

    .venv/bin/python benchmarks/match.py [--offers 100000] [--reference-offers 10000]

Figures: seconds for a full `group_offers` run, for an incremental run after 1% new offers, for
writing the groups to SQLite, peak RSS of the process, and per-offer F1 against the synthetic
truth. The reference is the previous matcher (dense title matrix per category block) run on a
subset in the same invocation, beside the current one on the same subset.
Writes benchmarks/results/match.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import tempfile
import time
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import numpy as np
from rapidfuzz import fuzz, process

from db.records import GroupMember, ProductGroup
from db.store import OfferForMatching, Store
from pipeline.evaluation import per_offer_scores
from pipeline.matching import (
    MatchSettings,
    _Groups,
    group_offers,
    normalise_title,
    offer_fingerprint,
)

RESULTS = Path(__file__).resolve().parent / "results" / "match.json"
SHOPS = ("classic", "spa", "scroll", "menu", "outlet")
LABELS = [f"cat{n}" for n in range(10)]
COLOURS = [("black", "블랙"), ("white", "화이트"), ("navy", "네이비"), ("grey", "그레이"),
           ("beige", "베이지"), ("red", "레드"), ("green", "그린"), ("khaki", "카키")]  # fmt: skip
MATERIALS = [("cotton", "코튼"), ("linen", "린넨"), ("wool", "울"), ("denim", "데님"),
             ("leather", "레더"), ("nylon", "나일론"), ("fleece", "플리스")]  # fmt: skip
NOUNS = [("tshirt", "티셔츠"), ("trousers", "팬츠"), ("pullover", "스웨터"), ("dress", "원피스"),
         ("coat", "코트"), ("sandals", "샌들"), ("shirt", "셔츠"), ("sneakers", "스니커즈"),
         ("bag", "가방"), ("boots", "부츠")]  # fmt: skip
STYLES = ["Slim", "Relaxed", "Classic", "Oversized", "Cropped", "Wide", "Everyday", "Studio"]


def synthetic_offers(n_offers: int, seed: int = 0) -> tuple[list[OfferForMatching], dict]:
    """Offers and the truth (offer id -> product). Each product is sold by 3-5 shops."""
    rng = np.random.default_rng(seed)
    offers: list[OfferForMatching] = []
    truth: dict[int, int] = {}
    bases: list[np.ndarray] = []
    product = 0
    while len(offers) < n_offers:
        if bases and rng.random() < 0.1:  # a look-alike of an earlier product
            base = bases[int(rng.integers(len(bases)))] + rng.normal(scale=0.06, size=64)
        else:
            base = rng.normal(size=64)
        base /= np.linalg.norm(base)
        bases.append(base)
        colour, material, noun = (
            COLOURS[rng.integers(len(COLOURS))],
            MATERIALS[rng.integers(len(MATERIALS))],
            NOUNS[rng.integers(len(NOUNS))],
        )
        style, code = STYLES[rng.integers(len(STYLES))], f"{rng.integers(100, 999)}"
        label = LABELS[rng.integers(len(LABELS))]
        price = int(rng.integers(50, 2000)) * 100
        shops = rng.choice(SHOPS, size=int(rng.integers(3, 6)), replace=False)
        for shop in shops:
            if len(offers) >= n_offers:
                break
            korean = shop == "menu"
            words = [style, colour[korean], material[korean], noun[korean], code]
            if shop == "spa":
                words = ["[SALE]", *words[1:4], words[0], code]
            elif shop == "outlet":
                words = [*words, rng.choice(["S", "M", "L", "XL"])]
            vector = base + rng.normal(scale=0.04, size=64)
            vector = (vector / np.linalg.norm(vector)).astype(np.float32)
            wrong_label = rng.random() < 0.02
            offer_id = len(offers) + 1
            offers.append(
                OfferForMatching(
                    offer_id,
                    str(shop),
                    " ".join(words),
                    int(round(price * rng.uniform(0.88, 1.12), -2)),
                    "KRW",
                    LABELS[rng.integers(len(LABELS))] if wrong_label else label,
                    vector.tobytes(),
                    None,
                )
            )
            truth[offer_id] = product
        product += 1
    return offers, truth


def reference_group_offers(offers, settings: MatchSettings) -> list[ProductGroup]:
    """The previous matcher: a dense image and title matrix for each category block."""
    blocks = defaultdict(list)
    for offer in offers:
        blocks[offer.label].append(offer)
    groups = []
    for label, block in blocks.items():
        embeddings = np.stack([np.frombuffer(o.embedding, dtype=np.float32) for o in block])
        titles = [normalise_title(o.title) for o in block]
        score = settings.image_weight * (embeddings @ embeddings.T) + settings.title_weight * (
            process.cdist(titles, titles, scorer=fuzz.token_set_ratio, dtype=np.float32) / 100
        )
        pairs = []
        rows, cols = np.nonzero(np.triu(score >= settings.threshold, k=1))
        for i, j in zip(rows.tolist(), cols.tolist(), strict=True):
            a, b = block[i], block[j]
            if a.shop == b.shop:
                continue
            if max(a.price, b.price) > settings.max_price_ratio * min(a.price, b.price):
                continue
            pairs.append((float(score[i, j]), i, j))
        uf = _Groups([o.shop for o in block], [False] * len(block), {})
        for s, i, j in sorted(pairs, reverse=True):
            uf.merge(i, j, s)
        members = defaultdict(list)
        for i, offer in enumerate(block):
            members[uf.find(i)].append(GroupMember(offer.offer_id, 1.0))
        groups.extend(ProductGroup(None, label, "", tuple(m)) for m in members.values())
    return groups


def f1(groups: list[ProductGroup], truth: dict[int, int]) -> float:
    predicted = {m.offer_id: n for n, g in enumerate(groups) for m in g.members}
    return round(per_offer_scores(predicted, truth)["f1"], 4)


def partition(groups) -> set[frozenset]:
    return {frozenset(m.offer_id for m in g.members) for g in groups}


def peak_rss_mib() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def timed(fn, *args, **kwargs):
    started = time.perf_counter()
    value = fn(*args, **kwargs)
    return value, round(time.perf_counter() - started, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--offers", type=int, default=100_000)
    parser.add_argument("--reference-offers", type=int, default=10_000)
    args = parser.parse_args()
    settings = MatchSettings()

    subset, subset_truth = synthetic_offers(args.reference_offers, seed=1)
    no_price_penalty = replace(settings, price_weight=0.0)  # the reference had none
    reference, reference_s = timed(reference_group_offers, subset, no_price_penalty)
    current, current_s = timed(group_offers, subset, no_price_penalty)
    rss_after_reference = peak_rss_mib()

    offers, truth = synthetic_offers(args.offers, seed=0)
    rss_after_data = peak_rss_mib()
    groups, full_s = timed(group_offers, offers, settings)
    rss_after_full = peak_rss_mib()

    # the next crawl: 1% new offers arrive; the rest keep their groups
    keep = len(offers) - len(offers) // 100
    first, _ = timed(group_offers, offers[:keep], settings)
    group_of = {m.offer_id: n + 1 for n, g in enumerate(first) for m in g.members}
    score_of = {m.offer_id: m.score for g in first for m in g.members}
    settled = [
        replace(
            o,
            group_id=group_of[o.offer_id],
            fingerprint=offer_fingerprint(o),
            score=score_of[o.offer_id],
        )
        for o in offers[:keep]
    ]
    _, incremental_s = timed(group_offers, settled + offers[keep:], settings, incremental=True)

    with (
        tempfile.TemporaryDirectory(prefix="pricelens-match-") as tmp,
        Store(Path(tmp) / "match.db") as store,
    ):
        store.db.conn.execute("PRAGMA foreign_keys = OFF")  # groups only, no offer rows
        _, save_s = timed(store.save_groups, groups)

    result = {
        "offers": len(offers),
        "shops": len(SHOPS),
        "products": len(set(truth.values())),
        "embedding_dim": 64,
        "full_match_s": full_s,
        "incremental_match_s": incremental_s,
        "incremental_new_offers": len(offers) - keep,
        "save_groups_s": save_s,
        "limit_s": 60,
        "within_limit": full_s <= 60,
        "peak_rss_mib": rss_after_full,
        "rss_before_matching_mib": rss_after_data,
        "groups": len(groups),
        "f1_vs_synthetic_truth": f1(groups, truth),
        "reference": {
            "offers": len(subset),
            "previous_matcher_s": reference_s,
            "current_matcher_s": current_s,
            "speedup": round(reference_s / max(current_s, 1e-9), 1),
            "same_groups": partition(reference) == partition(current),
            "f1_previous": f1(reference, subset_truth),
            "f1_current": f1(current, subset_truth),
            "peak_rss_mib_after": rss_after_reference,
        },
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "load_average_1m_at_end": round(os.getloadavg()[0], 2),  # the CPU is shared
        },
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
