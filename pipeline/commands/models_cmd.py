"""`pricelens models`, `pricelens label` and `pricelens classify`: the model registry,
user labels for scraped photos, and labelling every photo with the current model."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import click

from classifier.export import export_onnx
from classifier.inference import BACKENDS
from db.records import LABELS
from db.store import Store
from pipeline.classifying import classify_pending
from pipeline.commands.options import format_option, text_or_json_option
from pipeline.errors import PipelineError
from pipeline.labelling import label_photo
from pipeline.model_training import export_for_inference
from pipeline.output import render_rows
from pipeline.progress import progress_bar


def register(group: click.Group) -> None:
    group.add_command(models)
    group.add_command(label)
    group.add_command(classify)


@click.group()
def models():
    """List, promote and export the trained models."""


def _model_or_fail(store: Store, version: str):
    model = store.model(version)
    if model is None and version == "current":
        raise PipelineError(f"{store.path}: no current model yet; run `pricelens train` first")
    if model is None:
        raise PipelineError(f"{version}: no such model (see `pricelens models list`)")
    return model


@models.command("list")
@format_option()
@click.pass_obj
def list_models(env, fmt):
    """Every registered model: version, accuracy, held-out score, data, which is current."""
    with Store(env.home.database) as store:
        rows = [
            (
                m.id,
                m.version,
                "*" if m.is_current else "",
                m.architecture,
                m.metrics.get("accuracy"),
                m.metrics.get("held_out", {}).get("score"),
                m.data.get("dataset"),
                m.data.get("train_images"),
                m.data.get("fine_tuned_from"),
                m.created_at,
            )
            for m in store.models()
        ]
    columns = (
        "id",
        "version",
        "current",
        "architecture",
        "accuracy",
        "held_out_score",
        "dataset",
        "train_images",
        "fine_tuned_from",
        "created_at",
    )
    render_rows(env.out, columns, rows, fmt)


@models.command()
@click.argument("version")
@click.pass_obj
def promote(env, version):
    """Make VERSION the current model (the one `classify` and `match` use)."""
    with Store(env.home.database) as store:
        model = _model_or_fail(store, version)
        if not Path(model.path).is_file():
            raise PipelineError(f"{model.path}: checkpoint of {model.version} is missing")
        store.promote(model.id)
    export_for_inference(Path(model.path))
    env.out.print(f"{model.version} is now the current model", highlight=False)


@models.command()
@click.argument("version")
@click.option("--onnx", "as_onnx", is_flag=True, required=True, help="Export to ONNX (required).")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Where to write it [default: model.onnx beside the checkpoint].",
)
@click.pass_obj
def export(env, version, as_onnx, out):
    """Export VERSION to ONNX and check that ONNX Runtime gives PyTorch's outputs (1e-4)."""
    with Store(env.home.database) as store:
        model = _model_or_fail(store, version)
        checkpoint = Path(model.path)
        target = out or checkpoint.with_name("model.onnx")
        parity = export_onnx(checkpoint, target)
        store.update_model_metrics(model.id, {"onnx_max_abs_diff": parity["max_abs_diff"]})
    env.out.print(
        f"{target}: max difference from PyTorch {parity['max_abs_diff']:.2e} "
        f"over {parity['samples']} inputs",
        highlight=False,
    )


@click.command()
@click.argument("image_or_offer")
@click.argument("category", type=click.Choice(LABELS))
@click.pass_obj
def label(env, image_or_offer, category):
    """Label a stored photo (sha256 or its first 8+ characters, or an offer id: o34 or 34)
    with CATEGORY; user labels win over the shop's category and are used in retraining."""
    with Store(env.home.database) as store:
        sha256 = label_photo(store, image_or_offer, category)
    env.out.print(f"{sha256[:12]}: {category}", highlight=False)


@click.command()
@click.option(
    "--device",
    type=click.Choice(["auto", "cpu", "cuda"]),
    default="auto",
    show_default=True,
    help="Where to run the model (torch backend).",
)
@click.option(
    "--backend",
    type=click.Choice(BACKENDS),
    default="auto",
    show_default=True,
    help="PyTorch, or ONNX Runtime on the model's ONNX export; auto: ONNX Runtime on the "
    "CPU where the model has one (made when a model is promoted), else PyTorch.",
)
@click.option("--batch", default=512, show_default=True, type=click.IntRange(1), help="Batch size.")
@text_or_json_option()
@click.pass_obj
def classify(env, device, backend, batch, fmt):
    """Label and embed every stored photo that the current model has not seen yet."""
    with Store(env.home.database) as store:
        model = store.current_model()
        if model is None:
            raise PipelineError(
                f"{env.home.database}: no model yet; run `pricelens train` (or `pricelens demo`)"
            )
        with progress_bar(env.progress) as progress:
            done = classify_pending(store, model, device, batch, progress, backend)
    if fmt == "json":
        figures = {"model": model.version} | asdict(done)
        env.out.print_json(json.dumps(figures))
    else:
        text = f"{model.version}: {done.classified} classified, {done.unreadable} unreadable"
        if done.backend:
            text += f" ({'ONNX Runtime' if done.backend == 'onnx' else 'PyTorch'})"
        if done.previously_unreadable:
            text += f", {done.previously_unreadable} found unreadable before (not decoded again)"
        if done.missing:
            text += f", {done.missing} missing (no file)"
        env.out.print(text, highlight=False, soft_wrap=True)
