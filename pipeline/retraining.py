"""The retraining job: when enough scraped photos were labelled since the current model was
trained, fine-tune it on them, promote the result only if it is better on held-out data, then
re-classify and re-match with the new model."""

from __future__ import annotations

import logging
import threading

from classifier.config import TrainConfig
from db.store import Store
from pipeline.classifying import classify_pending, training_steps
from pipeline.config import ServiceConfig
from pipeline.matching import match_offers
from pipeline.model_training import train_and_register
from pipeline.settings import Home

log = logging.getLogger(__name__)


def new_labels(store: Store) -> int:
    """Photos labelled since the newest labels the current model was trained on, or that a
    candidate fine-tuned from it was (one that lost: the same labels again would train the
    same losing model at every check). All of them if no such model saw any."""
    current = store.current_model()
    if current is None:
        return store.labels_since("")
    seen = [current.data.get("scraped_labelled_until", "")] + [
        m.data.get("scraped_labelled_until", "")
        for m in store.models()
        if m.data.get("fine_tuned_from") == current.version
    ]
    return store.labels_since(max(seen))


def retrain_if_due(
    store: Store,
    home: Home,
    config: ServiceConfig,
    stop: threading.Event | None = None,
    progress=None,
) -> dict:
    """Counts for pipeline_runs: new labels, and the model trained and whether it was promoted."""
    current = store.current_model()
    if current is None:
        return {"retrain": "skipped: no current model (the classify step trains the first)"}
    waiting = new_labels(store)
    counts: dict = {"new_labels": waiting}
    if waiting < config.retrain_min_labels:
        counts["retrain"] = f"skipped: {waiting} new labels, {config.retrain_min_labels} needed"
        return counts
    train = TrainConfig(  # a gentler schedule than from scratch: it starts from a good model
        dataset=config.retrain_dataset,
        epochs=config.retrain_epochs,
        lr=1e-3,
        warmup=0.1,
        train_limit=config.train_limit,
    )
    _, on_step = training_steps(progress, "retrain", stop)
    outcome = train_and_register(store, home, train, current, on_step=on_step)
    counts |= {
        "model": outcome.model.version,
        "promoted": outcome.promoted,
        "retrain": outcome.reason,
    }
    if outcome.promoted:
        counts["classified"] = classify_pending(
            store, outcome.model, progress=progress, stop=stop
        ).classified
        counts["groups"] = len(match_offers(store, outcome.model.id))
    return counts
