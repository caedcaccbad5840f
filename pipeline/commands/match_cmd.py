"""`pricelens match`: regroup offers into products, optionally scored against an answer key."""

from __future__ import annotations

import json

import click

from db.store import Store
from pipeline.errors import PipelineError
from pipeline.evaluation import evaluate_groups, load_answer_key
from pipeline.matching import match_offers


def register(group: click.Group) -> None:
    group.add_command(match)


@click.command()
@click.option(
    "--evaluate",
    "answer_key",
    type=click.Path(dir_okay=False),
    default=None,
    help="Score the groups against a demo mall answer key (per-offer F1).",
)
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@click.pass_obj
def match(env, answer_key, fmt):
    """Group the stored offers into products with the current model's predictions."""
    with Store(env.home.database) as store:
        model = store.current_model()
        if model is None:
            raise PipelineError(f"{env.home.database}: no model yet; run `pricelens demo` first")
        groups = match_offers(store, model.id)
        scores = evaluate_groups(store, load_answer_key(answer_key)) if answer_key else None
    summary = {
        "groups": len(groups),
        "multi_shop_groups": sum(1 for g in groups if len(g.members) > 1),
    }
    if scores:
        summary |= scores
    if fmt == "json":
        env.out.print_json(json.dumps(summary))
    else:
        env.out.print(
            ", ".join(
                f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in summary.items()
            ),
            highlight=False,
        )
