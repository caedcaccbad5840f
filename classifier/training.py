"""The training loop: one Trainer owns epochs, evaluation, checkpoints, early stopping and logs.

A run folder holds ``config.json`` (the resolved config), ``last.pt`` (full state after each
epoch: model, optimizer, scheduler, scaler, epoch, RNG streams, best metric) and ``best.pt``;
``--resume`` continues from ``last.pt`` exactly as if never stopped. Data stays in memory (on
the device when it fits), so there are no loader workers in the loop itself.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from classifier.checkpoints import CheckpointWriter, load_checkpoint, restore_rng, rng_state
from classifier.config import TrainConfig, config_from_checkpoint
from classifier.data import TensorSet
from classifier.errors import CheckpointError, ClassifierError
from classifier.evaluation import evaluate
from classifier.model import build_model, model_kwargs
from classifier.train_step import GraphedTrainStep, TrainStep
from classifier.transforms import INPUT_SIZE, augment, flip_and_shift, normalise, random_erase

__all__ = ["TrainConfig", "TrainResult", "Trainer", "pick_device", "train_model"]

log = logging.getLogger(__name__)
IMAGES_SHARE = 0.25  # of a GPU's free memory the images (a byte a pixel) may take
# A whole epoch prepared in one pass (float copies, the affine grid, JPEG round trips) peaks
# at about 30 bytes per image byte (measured on the CPU, 20,000 and 60,000 images); it is
# prepared so while that takes at most PREPARE_SHARE of the GPU's free memory
PREPARE_BYTES_PER_BYTE = 32
PREPARE_SHARE = 0.5

StepCallback = Callable[[int, int, float, float], None]  # step, total, loss, accuracy


@dataclass
class TrainResult:
    checkpoint: Path  # best.pt
    metrics: dict  # of the best epoch: accuracy, loss, per_class, confusion
    epochs_run: int
    stopped_early: bool
    history: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    config: dict = field(default_factory=dict)  # as trained (config.json)


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ClassifierError("--device cuda asked for, but CUDA is not available here")
    return torch.device(name)


def bf16_pays(device: torch.device) -> bool:
    """Whether bf16 autocast speeds training up on *device*: on a GPU, and on a CPU with
    native bf16 arithmetic (AVX-512 BF16 or AMX; 1.55-1.8x the fp32 step on a 2-core AMD EPYC
    with AVX-512 BF16). Elsewhere a CPU would emulate it, slower than fp32."""
    if device.type == "cuda":
        return True
    cpu = torch.cpu
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")  # private: may go
    return device.type == "cpu" and any(getattr(cpu, name, lambda: False)() for name in checks)


def distributed() -> tuple[int, int]:
    """(rank, world size) under torchrun, else (0, 1)."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def fits_on(device: torch.device, nbytes: int, share: float = IMAGES_SHARE) -> bool:
    """Whether *nbytes* may be held on *device*: always in host memory (the images are there
    already); on a GPU when they take at most *share* of its free memory."""
    if device.type != "cuda":
        return True
    free, _ = torch.cuda.mem_get_info(device)
    return nbytes <= free * share


class Trainer:
    def __init__(
        self,
        config: TrainConfig,
        train: TensorSet,
        val: TensorSet,
        out_dir: Path,
        classes: tuple[str, ...] | list[str],
        init_weights: dict | None = None,
        on_step: StepCallback | None = None,
        apply_train_limit: bool = True,
    ):
        self.config, self.out_dir, self.classes = config, out_dir, list(classes)
        self.on_step = on_step
        self.rank, self.world = distributed()
        if self.world > 1 and not torch.distributed.is_initialized():
            backend = "nccl" if config.device != "cpu" and torch.cuda.is_available() else "gloo"
            torch.distributed.init_process_group(backend)
        self.device = pick_device(config.device)
        if self.device.type == "cuda" and self.world > 1:
            self.device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        torch.manual_seed(config.seed)
        self.generator = torch.Generator(device=self.device).manual_seed(config.seed)
        self.train = train.limit(config.train_limit) if apply_train_limit else train
        self.val = val.limit(config.eval_limit)
        if len(self.train) == 0 or len(self.val) == 0:
            raise ClassifierError(
                f"nothing to train on: {len(self.train)} training, {len(self.val)} held-out images"
            )
        # the images stay on the device when they fit (Fashion-MNIST's 60,000 are 47 MB),
        # and the held-out ones, evaluated every epoch, too; else each batch is copied there
        held = self.train.images.nbytes + self.val.images.nbytes
        self.on_device = fits_on(self.device, held)
        home = self.device if self.on_device else torch.device("cpu")
        if not self.on_device:
            log.info(
                "%d MB of images do not fit in the device's free memory: each batch is "
                "copied to it from host memory",
                held // 2**20,
            )
        self.images = self.train.images.to(home)
        self.labels = self.train.labels.to(self.device)
        self.val = TensorSet(self.val.images.to(home), self.val.labels.to(self.device))
        # on a GPU a whole epoch is prepared in one pass (a few launches instead of a few per
        # step) when that fits; on a CPU batch by batch, which keeps the working set in cache
        self.whole_epoch = (
            self.device.type == "cuda"
            and self.on_device
            and fits_on(self.device, PREPARE_BYTES_PER_BYTE * self.images.nbytes, PREPARE_SHARE)
        )
        self.memory_format = (
            torch.channels_last if config.channels_last else torch.contiguous_format
        )
        model = build_model(config.architecture, **model_kwargs(config, len(classes)))
        if init_weights is not None:
            model.load_state_dict(init_weights)
        self.model = model.to(self.device, memory_format=self.memory_format)
        self.net: nn.Module = self.model
        if self.world > 1:
            self.net = nn.parallel.DistributedDataParallel(self.model)
        cuda = self.device.type == "cuda"
        if config.compile and cuda:
            self.net = torch.compile(self.net)
        # one process: DDP's gradient hooks talk to other processes, which a replay cannot
        self.graphs = config.cuda_graphs and cuda and self.world == 1
        self.amp = config.amp and bf16_pays(self.device)
        self.optimizer = self._optimizer()
        self.steps_per_epoch = math.ceil(len(self.train) // self.world / config.batch_size)
        self.scheduler = self._scheduler()
        self.scaler = torch.amp.GradScaler(enabled=False)  # bf16 needs no loss scaling
        self.loss_fn = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
        step_args = (self.net, self.optimizer, self.loss_fn, self.amp, config.grad_clip)
        self.train_step = (
            GraphedTrainStep(
                *step_args,
                batch_shape=torch.Size((config.batch_size, 1, INPUT_SIZE, INPUT_SIZE)),
                memory_format=self.memory_format,
            )
            if self.graphs
            else TrainStep(*step_args)
        )
        self.epoch, self.step, self.best, self.bad_epochs = 0, 0, None, 0
        self.history: list[dict] = []

    def _optimizer(self) -> torch.optim.Optimizer:
        c = self.config
        decay = [p for p in self.model.parameters() if p.ndim > 1]
        no_decay = [p for p in self.model.parameters() if p.ndim <= 1]  # BN and biases
        groups = [
            {"params": decay, "weight_decay": c.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ]
        lr = self._lr_value(c.lr)
        if c.optimizer == "sgd":  # fused SGD keeps no step count: capturable as it is
            return torch.optim.SGD(
                groups, lr=lr, momentum=c.momentum, nesterov=True, **self._fused_options(False)
            )
        return torch.optim.AdamW(groups, lr=lr, **self._fused_options(True))

    def _fused_options(self, capturable: bool) -> dict:
        """One fused kernel per step on CUDA instead of a launch per parameter tensor."""
        if self.device.type != "cuda":
            return {}
        return (
            {"fused": True, "capturable": True} if capturable and self.graphs else {"fused": True}
        )

    def _lr_value(self, lr: float) -> float | torch.Tensor:
        # a captured step reads its learning rate from a tensor the scheduler updates in place
        return torch.tensor(float(lr), device=self.device) if self.graphs else float(lr)

    def _optimizer_state_as_built(self, saved: dict) -> dict:
        """*saved* (an optimizer state dict) with this run's fused/capturable options and lr
        type: a checkpoint written without CUDA graphs (or on a CPU) carries its own, which
        load_state_dict would take over, and a captured step would then fail."""
        built = self.optimizer.defaults
        groups = []
        for group in saved["param_groups"]:
            group = dict(group, lr=self._lr_value(group["lr"]))
            for key in ("fused", "capturable", "foreach"):
                if key in built:
                    group[key] = built[key]
            groups.append(group)
        return {**saved, "param_groups": groups}

    def _scheduler(self) -> torch.optim.lr_scheduler.LRScheduler:
        total = self.config.epochs * self.steps_per_epoch
        if self.config.schedule == "onecycle" and total * self.config.warmup >= 2:
            return torch.optim.lr_scheduler.OneCycleLR(
                self.optimizer,
                max_lr=self.config.lr,
                total_steps=total,
                pct_start=self.config.warmup,
                # a captured step keeps the betas/momentum it was captured with
                cycle_momentum=not self.graphs,
            )
        if self.config.schedule == "onecycle":  # a run too short to warm up (a few steps)
            log.warning(
                "schedule=onecycle needs at least 2 warm-up steps (%d steps x warmup %s): "
                "cosine instead",
                total,
                self.config.warmup,
            )
            self.config = self.config.replace(schedule="cosine")  # what config.json says
        return torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, T_max=total)

    # -- state ---------------------------------------------------------------------------
    def state(self) -> dict:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "epoch": self.epoch,
            "step": self.step,
            "rng": rng_state(self.generator),
            "best_metric": self.best,
            "bad_epochs": self.bad_epochs,
            "history": self.history,
            "metrics": self.history[-1] if self.history else {},
            "config": self.config.to_dict(),
            "classes": self.classes,
        }

    def resume(self, path: Path) -> None:
        """Continue from *path* (a ``last.pt``): same weights, optimizer, schedule and RNG."""
        state = load_checkpoint(path, self.device)
        saved = config_from_checkpoint(state["config"])
        if saved.architecture != self.config.architecture or saved.width != self.config.width:
            raise CheckpointError(f"{path}: trained as {saved.architecture}/{saved.width}")
        if getattr(self.train_step, "graph", None) is not None:
            # the captured graph would go on using the state tensors loading replaces
            raise CheckpointError(f"{path}: resume before training, not after a step was captured")
        planned, now = (
            _planned_steps(state["scheduler"]),
            _planned_steps(self.scheduler.state_dict()),
        )
        if planned != now:  # the schedule would run out of steps near the end, or stop short
            raise CheckpointError(
                f"{path}: cannot resume: the run planned {planned} training steps and its data "
                f"now gives {now}: the training set changed since the run started (photos "
                "labelled or crawled since); start a new run instead of --resume"
            )
        try:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(self._optimizer_state_as_built(state["optimizer"]))
            self.scheduler.load_state_dict(state["scheduler"])
            self.scaler.load_state_dict(state["scaler"])
            restore_rng(state["rng"], self.generator)
        except (KeyError, RuntimeError, ValueError) as exc:
            raise CheckpointError(f"{path}: cannot resume from it: {exc}") from exc
        self.epoch, self.step = state["epoch"], state["step"]
        self.best, self.bad_epochs = state["best_metric"], state["bad_epochs"]
        self.history = list(state["history"])

    # -- loop ----------------------------------------------------------------------------
    def _batch(self, index: torch.Tensor, batch_size: int) -> torch.Tensor:
        """The images at *index*, normalised and augmented; *index* may hold several batches of
        *batch_size*: each batch's first ``shop_augment`` share gets shop-photo looks."""
        # (*index* is on the images' device: the host's when they did not fit on the device)
        batch = normalise(self.images[index].to(self.device))
        if self.config.augment:
            batch = flip_and_shift(batch, self.generator)
        if self.config.erase:
            batch = random_erase(batch, self.config.erase, self.generator)
        position = torch.arange(len(index), device=self.device)
        sizes = (len(index) - position // batch_size * batch_size).clamp(max=batch_size)
        # in double precision, as int(len(batch) * share) always counted
        shop = position % batch_size < (sizes.double() * self.config.shop_augment).long()
        if bool(shop.all()):
            batch = augment(batch, self.generator)
        elif bool(shop.any()):
            batch[shop] = augment(batch[shop], self.generator)
        return batch.contiguous(memory_format=self.memory_format)

    def train_epoch(self) -> dict:
        self.net.train()
        c = self.config
        order = torch.randperm(len(self.images), device=self.device, generator=self.generator)
        # each process its own share under torchrun, all of one size: a process with a step
        # more would wait for its partners' gradients forever (the few left over sit out,
        # a different few each epoch)
        order = order[: len(order) // self.world * self.world][self.rank :: self.world]
        prepared = self._batch(order, c.batch_size) if self.whole_epoch else None
        labels = self.labels[order]
        # images held on the host are gathered there: the order goes over once an epoch
        index = order if self.on_device else order.cpu()
        total_steps = c.epochs * self.steps_per_epoch
        self.train_step.reset()
        seen = 0
        for start in range(0, len(order), c.batch_size):
            targets = labels[start : start + c.batch_size]
            if prepared is None:
                batch = self._batch(index[start : start + c.batch_size], c.batch_size)
            else:
                batch = prepared[start : start + c.batch_size]
            _, loss = self.train_step(batch, targets)
            self.scheduler.step()
            self.step += 1
            seen += len(targets)
            if self.on_step and (self.step % 20 == 0 or start + c.batch_size >= len(order)):
                # read back only here: syncing every step would stall a GPU
                accuracy = int(self.train_step.correct) / seen
                self.on_step(self.step, total_steps, float(loss.detach()), accuracy)
        return {
            "train_loss": float(self.train_step.loss_sum) / seen,
            "train_accuracy": int(self.train_step.correct) / seen,
        }

    def _agreed(self, val: dict) -> dict:
        """Under torchrun, the first process's validation result, for every process: each
        evaluates its own copy, whose batch-norm statistics the last step left a little
        different, and processes that disagreed on the best epoch or on stopping early
        would wait for each other's gradients forever."""
        if self.world == 1:
            return val
        shared = [val]
        device = self.device if self.device.type == "cuda" else None  # NCCL sends from a GPU
        torch.distributed.broadcast_object_list(shared, src=0, device=device)
        return shared[0]

    def _improved(self, metrics: dict) -> bool:
        value = metrics[self.config.monitor]
        if self.best is None:
            return True
        return value > self.best if self.config.monitor == "val_accuracy" else value < self.best

    def fit(self, stop_after_epoch: int | None = None) -> TrainResult:
        """Train to ``config.epochs`` (or early stopping); *stop_after_epoch* ends the run
        sooner, as an interruption would, leaving ``last.pt`` to resume from."""
        # a resumed run goes on counting from the seconds its finished epochs took
        earlier = self.history[-1].get("seconds", 0.0) if self.history else 0.0
        c, started = self.config, time.perf_counter() - earlier
        writer = self._tensorboard()
        metrics_file = self.out_dir / "metrics.json"  # the best epoch's held-out result
        if self.rank == 0:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            (self.out_dir / "config.json").write_text(json.dumps(c.to_dict(), indent=2))
        # resumed from a run that had stopped early already: nothing left to train
        stopped_early = bool(c.patience) and self.bad_epochs >= c.patience
        best_val = None
        checkpoints = CheckpointWriter()  # the GPU trains on while the last epoch is written
        try:
            while not stopped_early and self.epoch < c.epochs:
                train_metrics = self.train_epoch()
                self.epoch += 1
                metrics = {"epoch": self.epoch, **train_metrics}
                evaluated = self.epoch % c.eval_every == 0 or self.epoch >= c.epochs
                val = None
                if evaluated:
                    val = self._agreed(evaluate(self.model, self.val, self.classes, self.loss_fn))
                    metrics.update(val_accuracy=val["accuracy"], val_loss=val["loss"])
                metrics["seconds"] = round(time.perf_counter() - started, 2)
                self.history.append(metrics)
                improved = evaluated and self._improved(metrics)
                if improved:
                    self.best, self.bad_epochs, best_val = metrics[c.monitor], 0, val
                elif evaluated:  # patience counts evaluations
                    self.bad_epochs += 1
                log.info("epoch %d: %s", self.epoch, metrics)
                if self.rank == 0:
                    self._log(writer, metrics)
                    best = (self.out_dir / "best.pt",) if improved else ()

                    def describe_best(val=val, path=metrics_file) -> None:
                        path.write_text(json.dumps(val, indent=2))  # after best.pt is in place

                    checkpoints.save(
                        self.out_dir / "last.pt",
                        self.state(),
                        best,
                        describe_best if improved else None,
                    )
                if c.patience and self.bad_epochs >= c.patience:
                    stopped_early = True
                    log.info("early stop: no %s gain in %d evaluations", c.monitor, c.patience)
                    break
                if stop_after_epoch is not None and self.epoch >= stop_after_epoch:
                    break
        except BaseException:
            checkpoints.close(raise_errors=False)  # the first error is the one to see
            raise
        else:
            checkpoints.close()
        finally:
            if writer:
                writer.close()
        if best_val is None and metrics_file.exists():  # resumed after the best epoch
            best_val = json.loads(metrics_file.read_text())
        return TrainResult(
            self.out_dir / "best.pt",
            best_val or {},  # {}: stopped (stop_after_epoch) before any evaluation
            self.epoch,
            stopped_early,
            self.history,
            time.perf_counter() - started,
            self.config.to_dict(),
        )

    def _tensorboard(self):
        if not self.config.tensorboard or self.rank != 0:
            return None
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # tensorboard is a dependency; a broken install only loses logs
            log.warning("tensorboard is not importable; no TensorBoard logs for this run")
            return None
        return SummaryWriter(str(self.out_dir / "tensorboard"))

    def _log(self, writer, metrics: dict) -> None:
        if writer is None:
            return
        for key, value in metrics.items():
            if key != "epoch":
                writer.add_scalar(key.replace("_", "/", 1), value, metrics["epoch"])
        writer.add_scalar("lr", float(self.scheduler.get_last_lr()[0]), metrics["epoch"])
        writer.flush()


def train_model(
    config: TrainConfig,
    train: TensorSet,
    val: TensorSet,
    out_dir: Path,
    classes: tuple[str, ...] | list[str],
    on_step: StepCallback | None = None,
    init_weights: dict | None = None,
    resume: bool = False,
    apply_train_limit: bool = True,
) -> TrainResult:
    """Train (or resume, or fine-tune from *init_weights*) and return the best epoch."""
    trainer = Trainer(
        config, train, val, out_dir, classes, init_weights, on_step, apply_train_limit
    )
    if resume:
        trainer.resume(out_dir / "last.pt")
    return trainer.fit()


def _planned_steps(scheduler_state: dict) -> int | None:
    """The steps a learning-rate schedule was built for (one-cycle or cosine)."""
    return scheduler_state.get("total_steps", scheduler_state.get("T_max"))
