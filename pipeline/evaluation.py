"""Scoring groups against the demo mall's answer key with the per-offer F1 (the Shopee
"Price Match Guarantee" metric): each offer's predicted group against its true group."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from urllib.parse import urlsplit

from db.records import ProductGroup
from db.store import Store
from pipeline.errors import PipelineError


def load_answer_key(path: Path) -> dict:
    """The answer key at *path*, checked whole before anything is matched or stored."""
    try:
        key = json.loads(Path(path).read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise PipelineError(f"{path}: answer key is not UTF-8 text: {exc}") from exc
    except (OSError, json.JSONDecodeError) as exc:
        raise PipelineError(f"{path}: cannot read answer key: {exc}") from exc
    try:
        _AnswerKey(key)
    except PipelineError as exc:
        raise PipelineError(f"{path}: {exc}") from exc
    return key


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


class _AnswerKey:
    """The answer key's offers, found by (shop, SKU) or else by (shop, URL path): an offer is
    the same whatever host and port the shop was served on when it was crawled."""

    def __init__(self, answer_key: dict):
        self.truth: dict[tuple, str] = {}  # (shop, "sku:…" or "path:…") -> product id
        self.by_sku: dict[tuple[str, str], tuple] = {}
        self.by_path: dict[tuple[str, str], tuple] = {}
        try:
            for shop, data in answer_key["shops"].items():
                for offer in data["offers"]:
                    path = _path(offer["url"])
                    sku = offer.get("sku")
                    key = (shop, f"sku:{sku}") if sku else (shop, f"path:{path}")
                    self.truth[key] = offer["product_id"]
                    self.by_path[(shop, path)] = key
                    if sku:
                        self.by_sku[(shop, str(sku))] = key
        except (KeyError, TypeError, AttributeError) as exc:
            raise PipelineError(f"answer key lacks shops/offers/url/product_id: {exc!r}") from exc

    def key(self, shop: str, sku: str | None, url: str) -> tuple | None:
        """The answer key's offer that a stored offer is: by SKU, else by URL path."""
        if sku and (shop, sku) in self.by_sku:
            return self.by_sku[(shop, sku)]
        return self.by_path.get((shop, _path(url)))


def _path(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def evaluate_groups(store: Store, answer_key: dict) -> dict:
    """Score the groups stored in the database."""
    key = _AnswerKey(answer_key)
    predicted = {}
    for row in store.group_assignments():  # oldest offer first: a newer one of the same key wins
        if (found := key.key(row["shop"], row["sku"], row["url"])) is not None:
            predicted[found] = row["group_id"]
    return per_offer_scores(predicted, key.truth)


def evaluate_grouping(store: Store, groups: list[ProductGroup], answer_key: dict) -> dict:
    """Score a grouping that was computed but not stored (a baseline)."""
    key = _AnswerKey(answer_key)
    where = {r["offer_id"]: key.key(r["shop"], r["sku"], r["url"]) for r in store.offer_keys()}
    # oldest offer first, as above
    members = sorted((m.offer_id, n) for n, g in enumerate(groups) for m in g.members)
    predicted = {where[offer_id]: n for offer_id, n in members if where.get(offer_id)}
    return per_offer_scores(predicted, key.truth)
