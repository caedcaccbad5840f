"""`pricelens train` and `pricelens eval`: train, fine-tune, resume and score the CNN."""

from __future__ import annotations

import json
from pathlib import Path

import click

from classifier.config import CHOICES, resolve_config
from classifier.evaluation import write_confusion_png
from db.records import LABELS
from db.store import Store
from pipeline.commands.options import text_or_json_option
from pipeline.errors import PipelineError
from pipeline.model_training import evaluate_model, resumable_run, train_and_register
from pipeline.progress import progress_bar


def register(group: click.Group) -> None:
    group.add_command(train)
    group.add_command(evaluate)


@click.command()
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="TOML file of training settings (keys as in `key=value`; a [train] table or top level).",
)
@click.option(
    "--dataset",
    type=click.Choice(CHOICES["dataset"]),
    default=None,
    help="Fashion-MNIST, the labelled scraped photos, or both [default: fashion-mnist].",
)
@click.option(
    "--epochs",
    type=click.IntRange(1),
    default=None,
    help="Epochs to train for [default: the config's epochs, else 2].",
)
@click.option(
    "--device",
    type=click.Choice(CHOICES["device"]),
    default=None,
    help="Where to train: CUDA when present with auto [default: auto].",
)
@click.option(
    "--resume",
    is_flag=True,
    help="Continue the newest unfinished run exactly where it stopped, or register one whose "
    "training finished unregistered; with its saved settings (only --device may change).",
)
@click.option(
    "--from",
    "from_version",
    default=None,
    metavar="VERSION",
    help="Fine-tune this model ('current' for the current one) instead of starting afresh.",
)
@click.argument("overrides", nargs=-1, metavar="[KEY=VALUE]...")
@click.pass_obj
def train(env, config_file, dataset, epochs, device, resume, from_version, overrides):
    """Train the CNN, register it, and make it current if it beats the current model on the
    same held-out data. KEY=VALUE pairs override config keys (e.g. lr=0.1 width=24)."""
    if resume:
        _refuse_with_resume(config_file, dataset, epochs, from_version, overrides)
        given: dict[str, str] = {}
    else:
        config, given = resolve_config(
            config_file, overrides, dataset=dataset, epochs=epochs, device=device
        )
    env.home.create()
    with Store(env.home.database) as store:
        base, resume_dir = None, None
        if from_version:
            base = store.model(from_version)
            if base is None and from_version == "current":
                raise PipelineError(
                    f"--from current: {env.home.database} has no current model yet; train "
                    "one without --from first"
                )
            if base is None:
                raise PipelineError(f"--from {from_version}: no such model (see `models list`)")
        if resume:
            run = resumable_run(store, env.home.models)
            if run is None:
                raise PipelineError(
                    f"{env.home.models}: no unfinished training run (nor a finished one left "
                    "unregistered) to resume"
                )
            resume_dir, config = run.folder, run.config
            if device is not None:
                config = config.replace(device=device)
            if run.finished:
                note = f"training finished ({run.epoch} epochs), never registered: registering"
            else:
                note = f"resuming after epoch {run.epoch} of {config.epochs}"
            if run.fine_tuned_from:
                note += f" (fine-tuning {run.fine_tuned_from})"
            env.err.print(f"{run.folder.name}: {note}", highlight=False, soft_wrap=True)
        with progress_bar(env.progress) as progress:
            task = progress.add_task("train", total=None, status="")

            def on_step(step: int, total: int, loss: float, accuracy: float) -> None:
                status = f"loss {loss:.3f} acc {accuracy:.3f}"
                progress.update(task, completed=step, total=total, status=status)

            outcome = train_and_register(store, env.home, config, base, resume_dir, on_step, given)
    if outcome is None:
        return  # a secondary torchrun process
    result, scores = outcome.result, outcome.scores["candidate"]
    env.out.print(
        f"model {outcome.model.version}: {result.epochs_run} epochs in {result.seconds:.0f} s"
        f"{' (stopped early)' if result.stopped_early else ''}, validation accuracy "
        f"{result.metrics['accuracy']:.4f}; held-out "
        + ", ".join(f"{k} {v:.4f}" for k, v in scores.items()),
        highlight=False,
    )
    verdict = "promoted to current" if outcome.promoted else "not promoted"
    env.out.print(f"{verdict}: {outcome.reason}", highlight=False)


def _refuse_with_resume(config_file, dataset, epochs, from_version, overrides) -> None:
    """--resume takes the run's saved settings; anything else given would be ignored."""
    given = [
        *([f"--config {config_file}"] if config_file else []),
        *([f"--dataset {dataset}"] if dataset else []),
        *([f"--epochs {epochs}"] if epochs else []),
        *([f"--from {from_version}"] if from_version else []),
        *overrides,
    ]
    if given:
        raise click.UsageError(
            f"--resume continues a run with its saved settings; drop {', '.join(given)} "
            "(only --device may change)"
        )


def _png_name(ctx, param, value: Path | None) -> Path | None:
    if value is not None and value.suffix.lower() != ".png":
        raise click.BadParameter(f"{str(value)!r}: the confusion matrix is written as a .png file")
    return value


@click.command("eval")
@click.option(
    "--model", "version", default="current", show_default=True, help="Model version or id."
)
@click.option(
    "--dataset",
    type=click.Choice(CHOICES["dataset"]),
    default="fashion-mnist",
    show_default=True,
    help="Held-out data: the Fashion-MNIST test set, held-out scraped photos, or both.",
)
@click.option(
    "--device",
    type=click.Choice(CHOICES["device"]),
    default="auto",
    show_default=True,
    help="Where to run the model.",
)
@click.option(
    "--confusion",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    callback=_png_name,
    metavar="FILE.png",
    help="Where to write the confusion-matrix PNG [default: beside the model].",
)
@text_or_json_option()
@click.pass_obj
def evaluate(env, version, dataset, device, confusion, fmt):
    """Print a model's accuracy and per-class accuracy on held-out data, and write its
    confusion matrix as a PNG."""
    with Store(env.home.database) as store:
        model = store.model(version)
        if model is None and version == "current" and not store.models():
            raise PipelineError(
                f"{env.home.database}: no model yet; run `pricelens train` (or `pricelens demo`)"
            )
        if model is None:
            raise PipelineError(f"--model {version}: no such model (see `pricelens models list`)")
        figures = evaluate_model(store, env.home, model, dataset, device)
        key = "fashion-mnist" if dataset == "fashion-mnist" else dataset
        store.update_model_metrics(model.id, {f"eval_{key}": figures["accuracy"]})
    png = confusion or Path(model.path).with_name(f"confusion-{dataset}.png")
    write_confusion_png(figures["confusion"], LABELS, png)
    figures["confusion_png"] = str(png)
    if fmt == "json":
        env.out.print_json(json.dumps(figures))
        return
    env.out.print(
        f"model {model.version} on {dataset} ({figures['images']} images): "
        f"accuracy {figures['accuracy']:.4f}",
        highlight=False,
    )
    if len(figures["by_set"]) > 1:  # the pooled figure weighs the bigger set more
        sets = ", ".join(f"{name} {value:.4f}" for name, value in figures["by_set"].items())
        env.out.print(
            f"by set: {sets}; score {figures['score']:.4f} (their mean, as promotion uses)",
            highlight=False,
        )
    for name, accuracy in figures["per_class"].items():
        env.out.print(f"  {name:<12} {accuracy:.4f}", highlight=False)
    env.out.print(f"confusion matrix: {png}", highlight=False)
