"""`pricelens match`: regroup offers into products, optionally scored against an answer key;
`match link` / `match unlink` / `match corrections`: a user's corrections."""

from __future__ import annotations

import json
from dataclasses import replace

import click

from db.store import Store
from pipeline.classifying import matching_problem
from pipeline.commands.options import format_option, text_or_json_option
from pipeline.errors import PipelineError
from pipeline.evaluation import evaluate_grouping, load_answer_key
from pipeline.matching import (
    MatchSettings,
    active_corrections,
    group_offers,
    link_offers,
    match_stored_offers,
    parse_offer_id,
    unlink_offer,
)
from pipeline.output import render_rows


def register(group: click.Group) -> None:
    group.add_command(match)


def _baselines(store: Store, model_id: int, key: dict) -> dict:
    """The same grouping from one signal alone (all offers matched afresh, not stored)."""
    offers = store.offers_for_matching(model_id)
    corrections = active_corrections(store)
    default = MatchSettings()
    only = {
        "title_only": replace(default, image_weight=0.0, title_weight=1.0),
        "image_only": replace(default, image_weight=1.0, title_weight=0.0),
    }
    return {
        name: evaluate_grouping(store, group_offers(offers, settings, corrections), key)
        for name, settings in only.items()
    }


@click.group(invoke_without_command=True)
@click.option(
    "--evaluate",
    "answer_key",
    type=click.Path(dir_okay=False),
    default=None,
    help="Score the groups against a demo mall answer key (per-offer F1) beside the "
    "title-only and image-only baselines.",
)
@click.option(
    "--full",
    is_flag=True,
    help="Re-match every offer, not only new or changed ones (group ids are still kept).",
)
@text_or_json_option("Summary as one line of text or as JSON.")
@click.pass_context
def match(ctx, answer_key, full, fmt):
    """Group the stored offers into products with the current model's predictions.

    Only new or changed offers are matched; the others keep their group (and its id).
    Corrections made with `match link` / `match unlink` always win."""
    if ctx.invoked_subcommand is not None:
        return
    env = ctx.obj
    key = load_answer_key(answer_key) if answer_key else None
    with Store(env.home.database) as store:
        model = store.current_model()
        if model is None:
            raise PipelineError(f"{env.home.database}: no model yet; run `pricelens demo` first")
        refusal, warning = matching_problem(store, model)
        if refusal:
            raise PipelineError(f"{env.home.database}: {refusal}")
        if warning:
            env.err.print(f"warning: {warning}", highlight=False, soft_wrap=True)
        result = match_stored_offers(store, model.id, full=full)
        summary = {
            "groups": len(result.groups),
            "multi_shop_groups": sum(1 for g in result.groups if len(g.members) > 1),
            "rematched_offers": result.rematched,
            "image_trust": {
                "/".join(sorted(pair)): round(value, 2) for pair, value in result.trust.items()
            },
        }
        if key:
            summary |= evaluate_grouping(store, result.groups, key)
            if not summary["offers"]:
                raise PipelineError(
                    f"{answer_key}: none of its {summary['missing']} offers is in "
                    f"{env.home.database} (matched by shop and SKU, else URL path); "
                    "nothing to score"
                )
            summary["baselines"] = _baselines(store, model.id, key)
    if summary.get("missing"):
        env.err.print(
            f"warning: {summary['missing']} of the {summary['missing'] + summary['offers']} "
            f"offers in {answer_key} are not in the database; scored on the other "
            f"{summary['offers']}",
            highlight=False,
            soft_wrap=True,
        )
    if fmt == "json":
        env.out.print_json(json.dumps(summary))
        return
    baselines = summary.pop("baselines", {})
    trust = summary.pop("image_trust")
    env.out.print(_line(summary), highlight=False, soft_wrap=True)
    if trust:
        env.out.print(f"image trust: {_line(trust)}", highlight=False, soft_wrap=True)
    for name, scores in baselines.items():
        env.out.print(f"{name}: {_line(scores)}", highlight=False, soft_wrap=True)


def _line(values: dict) -> str:
    return ", ".join(
        f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in values.items()
    )


@match.command()
@click.argument("offer")
@click.argument("other")
@click.pass_obj
def link(env, offer, other):
    """Say that two offers (ids such as o34 or 34) are the same product: OFFER joins OTHER's
    group, now and on every later `pricelens match`."""
    a, b = parse_offer_id(offer), parse_offer_id(other)
    with Store(env.home.database) as store:
        result = link_offers(store, a, b)
    env.out.print(f"o{a} and o{b} are the same product: group g{result.group_id}", highlight=False)
    for parted, group_id in result.parted:
        env.out.print(
            f"o{parted.offer_id} ({parted.shop}) left the group for g{group_id}: you said it is "
            f"not the same product as o{a} (if it is, run `pricelens match link "
            f"{parted.offer_id} {a}`)",
            highlight=False,
            markup=False,
        )


@match.command()
@click.argument("offer")
@click.pass_obj
def unlink(env, offer):
    """Say that an offer (id such as o34 or 34) is none of its group's products: it leaves the
    group and is never grouped with those offers again."""
    a = parse_offer_id(offer)
    with Store(env.home.database) as store:
        group_id = unlink_offer(store, a)
    env.out.print(f"o{a} now stands alone in group g{group_id}", highlight=False)


@match.command()
@format_option()
@click.pass_obj
def corrections(env, fmt):
    """List the corrections in force (latest per pair of offers): the matcher's training signal,
    also readable as the `match_feedback` view."""
    with Store(env.home.database) as store:
        rows = store.match_feedback()
    columns = ["offer_id", "other_offer_id", "same", "created_at", "title", "other_title"]
    render_rows(env.out, columns, [[r[c] for c in columns] for r in rows], fmt, "Corrections")
