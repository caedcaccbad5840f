"""The match stage: group the same product sold by different shops.

Candidates are blocked by category. A photo a user labelled is in that category's block only;
any other offer is in its shop's mapped category and in the CNN's top two predicted ones (the
runner-up only when the model gives it at least `second_label_min`), so an offer that a shop
filed elsewhere, or that the model is unsure about, still meets its product. A pair's score
blends the cosine similarity of the CNN embeddings with title similarity, less a penalty for
the price gap; price ratios beyond `max_price_ratio` are ruled out. Prices are compared only
between offers in one currency: without exchange rates 8900 (USD 89.00) and 9900 (KRW 9,900)
say nothing about each other, so such a pair is matched on photo and title alone. Pairs are
merged best-first, and a group never takes two offers from one shop.

Runs are incremental: an offer whose title, category and embedding are unchanged since it was
matched (its fingerprint) keeps its group, and only new or changed offers are scored, against
everything in their block. Two existing groups are never merged by the model, so a product keeps
its group id as new crawls arrive. Users' corrections (`link`: same product, `unlink`: not)
are constraints that win over the scores on every run.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from rapidfuzz import fuzz, process

from db.group_store import OfferInGroup
from db.records import GroupMember, ProductGroup
from db.store import OfferForMatching, Store
from pipeline.errors import PipelineError
from pipeline.glossary import NOISE, SYNONYMS


@dataclass(frozen=True)
class MatchSettings:
    # tuned on the default demo mall (4 shops, 300 products): see benchmarks/results
    image_weight: float = 0.4
    title_weight: float = 0.6
    threshold: float = 0.85
    max_price_ratio: float = 1.6  # the same item is rarely 60% dearer elsewhere (one currency)
    # score penalty per unit of |log(price ratio)|; off by default: 0.05 cut the hard mall's
    # recall (F1 0.872, measured together with a new classifier) - see the README
    price_weight: float = 0.0
    # scale each shop pair's image weight by how often its photos agree with clear title
    # matches (the rest goes to the title): one shop's heavy restyling then stops outvoting
    # the titles; off = the weights as given (the baselines)
    image_trust: bool = True
    trust_sample: int = 24  # offers per shop, shop and category sampled for that estimate
    # a predicted runner-up category this likely also blocks the offer (below: noise)
    second_label_min: float = 0.1
    chunk: int = 1024  # pending offers scored at once (bounds memory)


@dataclass(frozen=True)
class Correction:
    offer_id: int
    other_offer_id: int
    same: bool


@functools.lru_cache(maxsize=1 << 18)  # titles recur: trust estimate, blocks, runs
def normalise_title(title: str) -> str:
    """Lower-case words in one vocabulary, without promo tags or punctuation."""
    words = re.findall(r"\w+", title.lower().replace("t-shirt", "tshirt"))
    return " ".join(SYNONYMS.get(w, w) for w in words if w not in NOISE)


def offer_fingerprint(offer: OfferForMatching) -> str:
    """Changes when what matching looks at changes: the normalised title (so a promo tag that
    comes and goes with a sale is no change), the category and the photo embedding."""
    digest = hashlib.blake2b(digest_size=12)
    digest.update(f"{normalise_title(offer.title)}\x00{offer.label}\x00".encode())
    if offer.second_label:  # absent before top-2 blocking: old fingerprints stay valid
        digest.update(f"{offer.predicted_label}\x00{offer.second_label}\x00".encode())
    digest.update(offer.embedding or b"")
    return digest.hexdigest()


class _Groups:
    """Union-find whose sets remember their shops, their members and whether they hold an
    offer that was already grouped (two such sets are never merged by the model)."""

    def __init__(self, shops: Sequence[str], settled: Sequence[bool], cannot: dict[int, set]):
        n = len(shops)
        self.parent = list(range(n))
        self.shops = [{s} for s in shops]
        self.members = [[i] for i in range(n)]
        self.settled = list(settled)
        self.cannot = cannot  # index -> indices it must never share a group with
        self.score: list[float | None] = [None] * n  # best merge each offer took part in

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def _forbidden(self, a: int, b: int) -> bool:
        if not self.cannot:
            return False
        small, big = sorted((a, b), key=lambda r: len(self.members[r]))
        big_members = set(self.members[big])
        return any(self.cannot.get(i, set()) & big_members for i in self.members[small])

    def merge(self, i: int, j: int, score: float | None, force: bool = False) -> bool:
        a, b = self.find(i), self.find(j)
        if a == b:
            return False
        if not force and (
            self.shops[a] & self.shops[b]
            or (self.settled[a] and self.settled[b])
            or self._forbidden(a, b)
        ):
            return False
        if len(self.members[a]) < len(self.members[b]):
            a, b = b, a
        self.parent[b] = a
        self.shops[a] |= self.shops[b]
        self.members[a].extend(self.members[b])
        self.members[b] = []
        self.settled[a] = self.settled[a] or self.settled[b]
        if score is not None:
            for k in (i, j):
                self.score[k] = max(self.score[k] or 0.0, score)
        return True


class _Titles(dict):
    """Normalised titles, computed on first use: most offers are never compared by title."""

    def __init__(self, offers: Sequence[OfferForMatching]):
        super().__init__()
        self.offers = offers

    def __missing__(self, i: int) -> str:
        value = self[i] = normalise_title(self.offers[i].title)
        return value


def _embeddings(offers: Sequence[OfferForMatching], indices: Sequence[int]) -> np.ndarray:
    matrix = np.frombuffer(b"".join(offers[i].embedding for i in indices), dtype=np.float32)
    return matrix.reshape(len(indices), -1)


def image_trust(
    offers: Sequence[OfferForMatching], titles: _Titles, settings: MatchSettings
) -> dict[frozenset[str], float]:
    """For each pair of shops, the share of clear title matches (best title score >= 0.9,
    0.1 above the runner-up, same category) whose photo is also the most similar photo
    among the other shop's offers in that category. Shops that render the same product
    alike score near 1, a shop whose photos are restyled beyond recognition near 0. Pairs
    with fewer than 10 such matches are trusted fully (too little evidence to doubt)."""
    by_shop_label: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, o in enumerate(offers):
        if o.embedding is not None and o.label is not None:
            by_shop_label[o.shop, o.label].append(i)
    shops = sorted({shop for shop, _ in by_shop_label})
    trust = {}
    for a_pos, a in enumerate(shops):
        for b in shops[a_pos + 1 :]:
            anchors = agree = 0
            for (shop, label), members in by_shop_label.items():
                others = by_shop_label.get((b, label), [])
                if shop != a or len(others) < 2:
                    continue
                step = max(1, len(members) // settings.trust_sample)
                sample = members[::step][: settings.trust_sample]
                title_sim = process.cdist(
                    [titles[i] for i in sample],
                    [titles[j] for j in others],
                    scorer=fuzz.token_set_ratio,
                    dtype=np.float32,
                    workers=-1,
                )
                image_sim = _embeddings(offers, sample) @ _embeddings(offers, others).T
                top2 = np.sort(title_sim, axis=1)[:, -2:]
                clear = (top2[:, 1] >= 90) & (top2[:, 1] - top2[:, 0] >= 10)
                anchors += int(clear.sum())
                agree += int((title_sim.argmax(1) == image_sim.argmax(1))[clear].sum())
            trust[frozenset((a, b))] = agree / anchors if anchors >= 10 else 1.0
    return trust


def shop_pair_trust(
    offers: Sequence[OfferForMatching], settings: MatchSettings
) -> dict[frozenset[str], float]:
    """The image trust *settings* ask for: none when the blend has a single signal."""
    if settings.image_trust and settings.image_weight > 0 and settings.title_weight > 0:
        return image_trust(offers, _Titles(offers), settings)
    return {}


def _candidate_pairs(
    block: list[int],
    pending: list[int],
    offers: Sequence[OfferForMatching],
    titles: _Titles,
    settings: MatchSettings,
    trust: dict[frozenset[str], float],
) -> list[tuple[float, int, int]]:
    """Pairs (score, i, j) over offer indices, each with at least one pending offer, whose
    score reaches the threshold. The image similarity is one matrix product per chunk of
    pending offers; titles are compared only where the image alone leaves the threshold
    reachable (every pair when the image weight is 0)."""
    matrix = _embeddings(offers, block)
    position = {idx: c for c, idx in enumerate(block)}
    names = sorted({offers[i].shop for i in block})
    shop_codes = {shop: n for n, shop in enumerate(names)}
    shops = np.array([shop_codes[offers[i].shop] for i in block])
    prices = np.array([offers[i].price or 0 for i in block], dtype=np.float64)
    currency_codes: dict[str | None, int] = {}
    currencies = np.array(
        [currency_codes.setdefault(offers[i].currency, len(currency_codes)) for i in block]
    )
    pending_pos = np.array([position[i] for i in pending])
    is_pending = np.zeros(len(block), dtype=bool)
    is_pending[pending_pos] = True
    # the image weight of each shop pair; what trust takes from it goes to the title
    image_weight = np.full((len(names), len(names)), settings.image_weight, dtype=np.float32)
    for x, a in enumerate(names):
        for y, b in enumerate(names):
            image_weight[x, y] *= trust.get(frozenset((a, b)), 1.0)
    title_weight = settings.title_weight + settings.image_weight - image_weight
    with np.errstate(divide="ignore", invalid="ignore"):
        floors = np.where(
            image_weight > 0, (settings.threshold - title_weight) / image_weight, -np.inf
        )
    floor = floors.min()
    found = []
    for start in range(0, len(pending_pos), settings.chunk):
        rows = pending_pos[start : start + settings.chunk]
        image_sim = matrix[rows] @ matrix.T
        r, c = np.nonzero(image_sim >= floor)
        # a pending-pending pair is scored once; an offer never pairs with its own shop
        keep = ~(is_pending[c] & (c <= rows[r])) & (shops[c] != shops[rows[r]])
        r, c = r[keep], c[keep]
        if not len(r):
            continue
        if len(r) > 0.2 * image_sim.size:  # dense: let rapidfuzz fill the whole chunk
            dense = process.cdist(
                [titles[block[k]] for k in rows],
                [titles[k] for k in block],
                scorer=fuzz.token_set_ratio,
                dtype=np.float32,
                workers=-1,
            )
            title_sim = dense[r, c] / 100.0
        else:
            title_sim = np.fromiter(
                (
                    fuzz.token_set_ratio(titles[block[rows[a]]], titles[block[b]])
                    for a, b in zip(r.tolist(), c.tolist(), strict=True)
                ),
                dtype=np.float32,
                count=len(r),
            )
            title_sim /= 100.0
        pair_shops = shops[rows[r]], shops[c]
        score = image_weight[pair_shops] * image_sim[r, c] + title_weight[pair_shops] * title_sim
        pa, pb = prices[rows[r]], prices[c]
        # minor units of two currencies are no ratio: neither a veto nor a penalty
        priced = (pa > 0) & (pb > 0) & (currencies[rows[r]] == currencies[c])
        ratio = np.where(priced, np.maximum(pa, pb) / np.where(priced, np.minimum(pa, pb), 1), 1)
        score = score - settings.price_weight * np.log(ratio)
        keep = (score >= settings.threshold) & (ratio <= settings.max_price_ratio)
        kept = zip(score[keep].tolist(), rows[r[keep]].tolist(), c[keep].tolist(), strict=True)
        found.extend((s, block[a], block[b]) for s, a, b in kept)
    return found


def _blocks(offers: Sequence[OfferForMatching], settings: MatchSettings) -> dict[str, list[int]]:
    """Offer indices by category: its own (a user's or the shop's) and the model's top two."""
    blocks: dict[str, list[int]] = defaultdict(list)
    for i, o in enumerate(offers):
        if o.embedding is None or o.label is None:
            continue
        labels = {o.label, o.predicted_label}
        if (o.second_confidence or 0.0) >= settings.second_label_min:
            labels.add(o.second_label)
        for label in sorted(labels - {None}):
            blocks[label].append(i)
    return blocks


def group_offers(
    offers: Sequence[OfferForMatching],
    settings: MatchSettings = MatchSettings(),
    corrections: Iterable[Correction] = (),
    incremental: bool = False,
    trust: dict[frozenset[str], float] | None = None,
) -> list[ProductGroup]:
    """Group offers into products; every offer ends up in exactly one group.

    With *incremental*, offers whose fingerprint is unchanged stay in their group and only
    the others are scored; without it every offer is matched afresh (group ids still kept).
    """
    index = {o.offer_id: i for i, o in enumerate(offers)}
    settled = [
        incremental and o.group_id is not None and o.fingerprint == offer_fingerprint(o)
        for o in offers
    ]
    cannot: dict[int, set] = defaultdict(set)
    must = []
    for c in corrections:
        if c.offer_id in index and c.other_offer_id in index:
            a, b = index[c.offer_id], index[c.other_offer_id]
            if c.same:
                must.append((a, b))
            else:
                cannot[a].add(b)
                cannot[b].add(a)
    uf = _Groups([o.shop for o in offers], settled, dict(cannot))
    by_group: dict[int, int] = {}
    for i, o in enumerate(offers):
        if settled[i]:
            first = by_group.setdefault(o.group_id, i)
            uf.merge(first, i, None, force=True)
            uf.score[i] = o.score
    for a, b in must:  # a user's word beats the scores and the one-offer-per-shop rule
        uf.merge(a, b, 1.0, force=True)
        uf.score[a] = uf.score[b] = 1.0

    titles = _Titles(offers)
    if trust is None:
        trust = shop_pair_trust(offers, settings)
    pairs: dict[tuple[int, int], float] = {}
    for block in _blocks(offers, settings).values():
        pending = [i for i in block if not settled[i]]
        if pending and len(block) > 1:
            for score, i, j in _candidate_pairs(block, pending, offers, titles, settings, trust):
                pairs[min(i, j), max(i, j)] = score  # two shared blocks: the same pair twice
    for (i, j), score in sorted(pairs.items(), key=lambda item: (-item[1], item[0])):
        uf.merge(i, j, score)

    clusters: dict[int, list[int]] = defaultdict(list)
    for i in range(len(offers)):
        clusters[uf.find(i)].append(i)
    groups = []
    for members in clusters.values():
        members.sort(key=lambda i: (offers[i].shop, offers[i].offer_id))
        labels = Counter(offers[i].label for i in members if offers[i].label)
        groups.append(
            ProductGroup(
                id=None,
                label=labels.most_common(1)[0][0] if labels else None,
                canonical_title=offers[members[0]].title,
                members=tuple(
                    GroupMember(offers[i].offer_id, 1.0 if uf.score[i] is None else uf.score[i])
                    for i in members
                ),
            )
        )
    return _keep_ids(groups, {o.offer_id: o.group_id for o in offers})


def _keep_ids(groups: list[ProductGroup], previous: dict[int, int | None]) -> list[ProductGroup]:
    """A group takes the id most of its members had; the bigger group wins a contested id."""
    taken: set[int] = set()
    result = []
    for group in sorted(groups, key=lambda g: (-len(g.members), g.members[0].offer_id)):
        votes = Counter(previous.get(m.offer_id) for m in group.members)
        votes.pop(None, None)
        kept = next((gid for gid, _ in votes.most_common() if gid not in taken), None)
        if kept is not None:
            taken.add(kept)
        result.append(ProductGroup(kept, group.label, group.canonical_title, group.members))
    return result


@dataclass(frozen=True)
class MatchResult:
    groups: list[ProductGroup]
    rematched: int  # offers that were new or changed (all of them on a full run)
    trust: dict[frozenset[str], float]  # image trust per pair of shops


def active_corrections(store: Store) -> list[Correction]:
    return [
        Correction(r["offer_id"], r["other_offer_id"], bool(r["same"]))
        for r in store.match_feedback()
    ]


def match_offers(
    store: Store,
    model_id: int | None,
    settings: MatchSettings = MatchSettings(),
    full: bool = False,
) -> list[ProductGroup]:
    """Group the stored offers (only new or changed ones unless *full*) and store the groups."""
    return match_stored_offers(store, model_id, settings, full).groups


def match_stored_offers(
    store: Store,
    model_id: int | None,
    settings: MatchSettings = MatchSettings(),
    full: bool = False,
) -> MatchResult:
    offers = store.offers_for_matching(model_id)
    corrections = active_corrections(store)
    trust = shop_pair_trust(offers, settings)
    groups = group_offers(offers, settings, corrections, incremental=not full, trust=trust)
    fingerprints = {o.offer_id: offer_fingerprint(o) for o in offers}
    rematched = sum(
        1 for o in offers if full or o.group_id is None or o.fingerprint != fingerprints[o.offer_id]
    )
    corrected = {c.offer_id for c in corrections} | {c.other_offer_id for c in corrections}
    ids = store.save_groups(groups, fingerprints, corrected)
    stored = [
        ProductGroup(gid, g.label, g.canonical_title, g.members)
        for gid, g in zip(ids, groups, strict=True)
    ]
    return MatchResult(stored, rematched, trust)


# -- corrections ---------------------------------------------------------------------------


def _offer(store: Store, offer_id: int):
    offer = store.offer_in_group(offer_id)
    if offer is None:
        raise PipelineError(f"offer o{offer_id} does not exist (see `pricelens report`)")
    return offer


@dataclass(frozen=True)
class LinkResult:
    group_id: int
    # offers that left the group because the user had said they are not the linked offer's
    # product, each with its new group of its own
    parted: list[tuple[OfferInGroup, int]]


def link_offers(store: Store, offer_id: int, other_id: int) -> LinkResult:
    """Record that two offers are the same product and put the first into the second's
    group.

    Earlier corrections of the first offer stay in force, so the group is made to agree with
    them now rather than at the next `pricelens match`: a member the user had unlinked from
    the offer leaves the group (the result names it); an offer the user had linked it to
    outside this group makes the link a contradiction, refused naming that offer."""
    if offer_id == other_id:
        raise PipelineError(f"cannot link offer o{offer_id} to itself")
    offer, other = _offer(store, offer_id), _offer(store, other_id)
    if offer.shop == other.shop:
        raise PipelineError(
            f"offers o{offer_id} and o{other_id} are both from shop {offer.shop!r}; "
            "a product group holds one offer per shop"
        )
    members = [] if other.group_id is None else store.group_offers(other.group_id)
    members = [m for m in members if m.offer_id != offer_id]
    clash = [m for m in members if m.shop == offer.shop]
    if clash:
        raise PipelineError(
            f"group g{other.group_id} already has offer o{clash[0].offer_id} from shop "
            f"{offer.shop!r}; run `pricelens match unlink {clash[0].offer_id}` first"
        )
    said = _corrections_of(store, offer_id)
    in_group = {m.offer_id for m in members} | {other_id}
    for linked in sorted(o for o, same in said.items() if same and o not in in_group):
        bound = _offer(store, linked)
        raise PipelineError(
            f"o{offer_id} was linked to o{linked} ({bound.shop!r}), which is not in group "
            f"g{other.group_id}; link o{linked} to o{other_id} as well first, or withdraw "
            f"that link with `pricelens match unlink {offer_id}`"
            if other.group_id is not None
            else f"o{offer_id} was linked to o{linked} ({bound.shop!r}); withdraw that link "
            f"with `pricelens match unlink {offer_id}` first"
        )
    said[other_id] = True  # this link overrides an earlier unlink of the pair
    parted = [m for m in members if said.get(m.offer_id) is False]
    other_group = other.group_id
    if other_group is None:
        other_group, _ = store.correct_match(other_id, None, [])
    group_id, own_groups = store.correct_match(
        offer_id, other_group, [(offer_id, other_id, True)], [m.offer_id for m in parted]
    )
    return LinkResult(group_id, list(zip(parted, own_groups, strict=True)))


def _corrections_of(store: Store, offer_id: int) -> dict[int, bool]:
    """The corrections in force that name *offer_id*: the other offer -> same product."""
    return {
        c.other_offer_id if c.offer_id == offer_id else c.offer_id: c.same
        for c in active_corrections(store)
        if offer_id in (c.offer_id, c.other_offer_id)
    }


def unlink_offer(store: Store, offer_id: int) -> int:
    """Record that an offer is none of its group's products and give it a group of its own.
    Returns the new group's id."""
    offer = _offer(store, offer_id)
    if offer.group_id is None:
        raise PipelineError(f"offer o{offer_id} is in no group yet; run `pricelens match` first")
    others = [m.offer_id for m in store.group_offers(offer.group_id) if m.offer_id != offer_id]
    if not others:
        raise PipelineError(f"offer o{offer_id} is alone in group g{offer.group_id}; nothing to do")
    group_id, _ = store.correct_match(offer_id, None, [(offer_id, o, False) for o in others])
    return group_id


def parse_ref(text: str, default: str) -> tuple[str, int]:
    """'g12' -> ('group', 12), 'o34' -> ('offer', 34), '12' -> (*default*, 12)."""
    m = re.fullmatch(r"\s*([gGoO]?)(\d+)\s*", text)
    if not m:
        raise PipelineError(f"{text!r} is not a group (g12) or offer (o34) id")
    kind = {"g": "group", "o": "offer", "": default}[m.group(1).lower()]
    return kind, int(m.group(2))


def parse_offer_id(text: str) -> int:
    kind, number = parse_ref(text, "offer")
    if kind != "offer":
        raise PipelineError(f"{text!r} is a group id; give an offer id such as o34")
    return number
