"""Scoring groups against the demo mall's answer key with the per-offer F1 (the Shopee
"Price Match Guarantee" metric): each offer's predicted group against its true group."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

from db.records import ProductGroup
from db.store import Store
from pipeline.errors import PipelineError


def load_answer_key(path: Path) -> dict:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise PipelineError(f"{path}: cannot read answer key: {exc}") from exc


def per_offer_scores(predicted: dict[str, str], truth: dict[str, str]) -> dict:
    """*predicted* and *truth* map offer keys to group keys; only offers in both count."""
    keys = [k for k in truth if k in predicted]
    by_pred, by_true = defaultdict(set), defaultdict(set)
    for k in keys:
        by_pred[predicted[k]].add(k)
        by_true[truth[k]].add(k)
    precision = recall = f1 = 0.0
    for k in keys:
        p, t = by_pred[predicted[k]], by_true[truth[k]]
        hit = len(p & t)
        precision += hit / len(p)
        recall += hit / len(t)
        f1 += 2 * hit / (len(p) + len(t))
    n = max(len(keys), 1)
    return {
        "precision": precision / n,
        "recall": recall / n,
        "f1": f1 / n,
        "offers": len(keys),
        "missing": len(truth) - len(keys),
    }


def _truth(answer_key: dict) -> dict:
    try:
        return {
            (shop, offer["url"]): offer["product_id"]
            for shop, data in answer_key["shops"].items()
            for offer in data["offers"]
        }
    except (KeyError, TypeError, AttributeError) as exc:
        raise PipelineError(f"answer key lacks shops/offers/url/product_id: {exc!r}") from exc


def evaluate_groups(store: Store, answer_key: dict) -> dict:
    """Score the groups stored in the database."""
    predicted = {(row["shop"], row["url"]): row["group_id"] for row in store.group_assignments()}
    return per_offer_scores(predicted, _truth(answer_key))


def evaluate_grouping(store: Store, groups: list[ProductGroup], answer_key: dict) -> dict:
    """Score a grouping that was computed but not stored (a baseline)."""
    where = {r["offer_id"]: (r["shop"], r["url"]) for r in store.offer_keys()}
    predicted = {where[m.offer_id]: n for n, g in enumerate(groups) for m in g.members}
    return per_offer_scores(predicted, _truth(answer_key))
