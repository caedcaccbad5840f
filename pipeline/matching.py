"""The match stage: group the same product sold by different shops.

Candidates are blocked by category (a user's label, else the shop's mapped category, else the
CNN's prediction); a pair's score blends the cosine similarity of
the CNN embeddings with title similarity, and implausible price ratios are ruled out. Pairs are
merged best-first, and a group never takes two offers from one shop. Group ids are kept
across runs: a group inherits the id most of its members already had.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass

import numpy as np
from rapidfuzz import fuzz, process

from db.records import GroupMember, ProductGroup
from db.store import OfferForMatching, Store
from pipeline.glossary import NOISE, SYNONYMS


@dataclass(frozen=True)
class MatchSettings:
    # tuned on the default demo mall (4 shops, 300 products): see benchmarks/results
    image_weight: float = 0.4
    title_weight: float = 0.6
    threshold: float = 0.85
    max_price_ratio: float = 1.6  # the same item is rarely 60% dearer elsewhere


def normalise_title(title: str) -> str:
    """Lower-case words in one vocabulary, without promo tags or punctuation."""
    words = re.findall(r"\w+", title.lower().replace("t-shirt", "tshirt"))
    return " ".join(SYNONYMS.get(w, w) for w in words if w not in NOISE)


class _Groups:
    """Union-find whose sets remember which shops they contain."""

    def __init__(self, shops: list[str]):
        self.parent = list(range(len(shops)))
        self.shops = [{s} for s in shops]
        self.score: list[float | None] = [None] * len(shops)  # best merge each offer took part in

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def merge(self, i: int, j: int, score: float) -> bool:
        a, b = self.find(i), self.find(j)
        if a == b or self.shops[a] & self.shops[b]:
            return False
        self.parent[b] = a
        self.shops[a] |= self.shops[b]
        for k in (i, j):
            self.score[k] = max(self.score[k] or 0.0, score)
        return True


def _pair_scores(block: list[OfferForMatching], settings: MatchSettings) -> list[tuple]:
    embeddings = np.stack([np.frombuffer(o.embedding, dtype=np.float32) for o in block])
    image_sim = embeddings @ embeddings.T
    titles = [normalise_title(o.title) for o in block]
    title_sim = process.cdist(titles, titles, scorer=fuzz.token_set_ratio, dtype=np.float32) / 100.0
    score = settings.image_weight * image_sim + settings.title_weight * title_sim
    pairs = []
    rows, cols = np.nonzero(np.triu(score >= settings.threshold, k=1))
    for i, j in zip(rows.tolist(), cols.tolist(), strict=True):
        a, b = block[i], block[j]
        if a.shop == b.shop:
            continue
        if (
            a.price
            and b.price
            and max(a.price, b.price) > settings.max_price_ratio * min(a.price, b.price)
        ):
            continue
        pairs.append((float(score[i, j]), i, j))
    return pairs


def group_offers(
    offers: list[OfferForMatching], settings: MatchSettings = MatchSettings()
) -> list[ProductGroup]:
    """Group offers into products; every offer ends up in exactly one group."""
    blocks: dict[str | None, list[OfferForMatching]] = defaultdict(list)
    for offer in offers:
        blocks[offer.label if offer.embedding is not None else None].append(offer)
    groups: list[ProductGroup] = []
    for label, block in blocks.items():
        if label is None:  # no prediction yet: each offer stands alone
            clusters = [[(o, 1.0)] for o in block]
        else:
            uf = _Groups([o.shop for o in block])
            for score, i, j in sorted(_pair_scores(block, settings), reverse=True):
                uf.merge(i, j, score)
            members = defaultdict(list)
            for i, offer in enumerate(block):
                score = uf.score[i]
                members[uf.find(i)].append((offer, 1.0 if score is None else score))
            clusters = list(members.values())
        for cluster in clusters:
            cluster.sort(key=lambda pair: pair[0].shop)
            groups.append(
                ProductGroup(
                    id=None,
                    label=label,
                    canonical_title=cluster[0][0].title,
                    members=tuple(GroupMember(o.offer_id, s) for o, s in cluster),
                )
            )
    return _keep_ids(groups, {o.offer_id: o.group_id for o in offers})


def _keep_ids(groups: list[ProductGroup], previous: dict[int, int | None]) -> list[ProductGroup]:
    """A group takes the id most of its members had; the bigger group wins a contested id."""
    taken: set[int] = set()
    result = []
    for group in sorted(groups, key=lambda g: -len(g.members)):
        votes = Counter(previous.get(m.offer_id) for m in group.members)
        votes.pop(None, None)
        kept = next((gid for gid, _ in votes.most_common() if gid not in taken), None)
        if kept is not None:
            taken.add(kept)
        result.append(ProductGroup(kept, group.label, group.canonical_title, group.members))
    return result


def match_offers(
    store: Store, model_id: int | None, settings: MatchSettings = MatchSettings()
) -> list[ProductGroup]:
    """Regroup every offer with the current model's predictions and store the groups."""
    groups = group_offers(store.offers_for_matching(model_id), settings)
    ids = store.replace_groups(groups)
    return [
        ProductGroup(gid, g.label, g.canonical_title, g.members)
        for gid, g in zip(ids, groups, strict=True)
    ]
