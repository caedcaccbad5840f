"""User labels for stored photos: which photo a reference names (a sha256, a prefix of one, or
an offer id such as ``o34``), and why none or several do."""

from __future__ import annotations

import re

from db.store import Store
from pipeline.errors import PipelineError
from pipeline.matching import parse_offer_id

MIN_PREFIX = 8  # hex characters of a sha256 that name one photo among many thousands


def photo_of(store: Store, reference: str) -> str:
    """The sha256 of the stored photo *reference* names: an offer id (``o34``, or ``34``) or
    a sha256 or a unique prefix of one (at least 8 hex characters). A number is tried as an
    offer id first; a number of 8+ digits that is no offer id is tried as a prefix too."""
    text = reference.strip()
    if re.fullmatch(r"[oO]?\d+", text):
        offer_id = parse_offer_id(text)
        exists, sha256 = store.offer_photo(offer_id)
        if exists and sha256 is None:
            raise PipelineError(f"{reference}: offer o{offer_id} has no photo")
        if exists:
            return sha256
        if not text.isdigit() or len(text) < MIN_PREFIX:
            raise PipelineError(f"{reference}: no offer o{offer_id}")
    if not re.fullmatch(r"[0-9a-fA-F]+", text):
        raise PipelineError(
            f"{reference!r}: neither an offer id (o34) nor a photo's sha256 (hex digits)"
        )
    if len(text) < MIN_PREFIX:
        raise PipelineError(
            f"{reference}: a sha256 prefix needs at least {MIN_PREFIX} hex characters"
        )
    found = store.photos_with_prefix(text, limit=3)
    if not found:
        what = "no offer with this id and no" if text.isdigit() else "no"
        raise PipelineError(f"{reference}: {what} stored photo whose sha256 starts with it")
    if len(found) > 1:
        shown = ", ".join(sha[: len(text) + 4] for sha in found[:2])
        raise PipelineError(
            f"{reference}: matches several photos ({shown}, ...); give more characters"
        )
    return found[0]


def label_photo(store: Store, reference: str, category: str) -> str:
    """Label the photo *reference* names with *category* as the user's; returns its sha256."""
    sha256 = photo_of(store, reference)
    store.set_label(sha256, category, "user")
    return sha256
