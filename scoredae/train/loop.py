r"""The one training loop: every denoiser, toy score network and classifier of scoredae trains here.

A recipe (:mod:`scoredae.train.trainers`) gives the loop a model, a source of batches and a loss
``loss_fn(net, batch, generator) -> (B,)`` returning one value per sample (as NVlabs/edm's
``training/loss.py``); the loop minimises their mean with Adam and owns everything else:

* the learning-rate schedule (:mod:`scoredae.train.schedule`: cosine over the budget, or EDM2's
  inverse square root, each with an optional warm-up);
* gradient-norm clipping, mixed precision (bf16, or fp16 with a GradScaler, on CUDA),
  ``torch.compile``, DistributedDataParallel under ``torchrun``;
* an exponential moving average (EMA) of the weights, and power-function EMAs whose snapshots
  the post-hoc EMA of :mod:`scoredae.train.posthoc` recombines after training (EDM2);
* evaluation every ``eval_every`` steps, checkpoints every ``save_every`` steps, resume;
* a finiteness check of the loss every ``check_every`` steps (one device-to-host sync each).

Randomness is a function of ``(seed, step, rank)`` only (each step's generator, and each epoch's
data order, are seeded from them), so with the optimizer and EMA states a checkpoint holds
everything needed: a resumed run reaches the same weights as an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import time
from collections.abc import Callable

import torch
import torch.distributed as dist
from tqdm.auto import tqdm

from .._checks import positive, positive_int
from ..nets.checkpoints import as_json
from ..rng import seeded
from .checkpoints import RunFolder, moving_averages
from .schedule import SCHEDULES, learning_rate
from .state import StopOnSignal

log = logging.getLogger(__name__)


@dataclasses.dataclass
class TrainConfig:
    """Options of :func:`train`. Training stops after ``steps`` or ``minutes``, whichever first.

    ``lr_schedule``, ``warmup_steps`` and ``lr_ref_steps`` are those of
    :func:`~scoredae.train.schedule.learning_rate`; ``phema`` lists the relative widths of the
    power-function EMAs kept beside ``ema``, written as snapshots every ``snapshot_every`` steps.
    """

    steps: int | None = 1000
    minutes: float | None = None
    batch_size: int = 128
    lr: float = 2e-3
    grad_clip: float | None = 1.0
    ema: float | None = 0.999
    lr_schedule: str = "cosine"
    warmup_steps: int = 0
    lr_ref_steps: int | None = None
    phema: tuple[float, ...] = ()
    snapshot_every: int | None = None
    eval_every: int | None = None
    save_every: int = 500
    save_minutes: float | None = 5.0
    check_every: int = 50
    seed: int = 0
    amp: str | None = None
    compile: bool = False
    progress: bool = True

    def __post_init__(self):
        if self.steps is None and self.minutes is None:
            raise ValueError("give steps or minutes (the training budget)")
        for name in ("steps", "eval_every", "lr_ref_steps", "snapshot_every"):
            if getattr(self, name) is not None:
                positive_int(name, getattr(self, name))
        for name in ("batch_size", "save_every", "check_every"):
            positive_int(name, getattr(self, name))
        for name in ("minutes", "grad_clip", "save_minutes"):
            if getattr(self, name) is not None:
                positive(name, getattr(self, name))
        positive("lr", self.lr)
        if self.ema is not None and not 0 < self.ema < 1:
            raise ValueError(f"ema: expected a decay in (0, 1) or None, got {self.ema}")
        if self.lr_schedule not in SCHEDULES:
            raise ValueError(f"lr_schedule: expected one of {SCHEDULES}, got {self.lr_schedule!r}")
        if self.lr_schedule == "rsqrt" and self.lr_ref_steps is None:
            raise ValueError("lr_ref_steps: the rsqrt schedule needs the step where its decay starts")
        if self.warmup_steps < 0:
            raise ValueError(f"warmup_steps: expected 0 or more, got {self.warmup_steps}")
        self.phema = tuple(float(s) for s in self.phema)
        if bool(self.phema) != (self.snapshot_every is not None):
            raise ValueError("phema and snapshot_every: give both (power-function EMAs are kept for their snapshots) "
                             "or neither")
        if self.amp not in (None, "bf16", "fp16"):
            raise ValueError(f"amp: expected None, 'bf16' or 'fp16', got {self.amp!r}")


@dataclasses.dataclass
class TrainResult:
    """What :func:`train` returns.

    :ivar model: the weights to use: the EMA model when enabled, else the trained model (eval mode).
    :ivar metadata: the checkpoint metadata (``step``, ``elapsed_s``, ``metrics``, ``history``, ...).
    :ivar losses: the mean loss of every step run in this call, a CPU tensor.
    """

    model: torch.nn.Module
    metadata: dict
    losses: torch.Tensor


class TrainingInterrupted(Exception):
    """SIGINT or SIGTERM stopped the training after a checkpoint was written."""


def distributed_world() -> tuple[int, int]:
    """(rank, world size) under torchrun (initialising the process group once), else (0, 1)."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    if dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _autocast(device: torch.device, amp: str | None):
    """The autocast context and the GradScaler (fp16 only) for ``amp`` in (None, 'bf16', 'fp16')."""
    if amp is None:
        return contextlib.nullcontext(), None
    if amp == "fp16" and device.type != "cuda":
        raise ValueError(f"amp='fp16' needs a CUDA device, got {device}")
    dtype = torch.bfloat16 if amp == "bf16" else torch.float16
    scaler = torch.amp.GradScaler(device.type) if amp == "fp16" else None
    return torch.autocast(device.type, dtype=dtype), scaler


def _optimizer_step(loss, model, optimizer, scaler, grad_clip: float | None) -> None:
    """Backward pass (loss-scaled for fp16), gradient-norm clipping, one optimizer step."""
    optimizer.zero_grad(set_to_none=True)
    if scaler is None:
        loss.backward()
    else:
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
    if grad_clip is not None:
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip, foreach=True)
    if scaler is None:
        optimizer.step()
    else:
        scaler.step(optimizer)
        scaler.update()


def train(
    model: torch.nn.Module,
    loss_fn: Callable,
    batches: Callable,
    config: TrainConfig,
    *,
    evaluate: Callable | None = None,
    out: str | os.PathLike | None = None,
    resume: bool = False,
    metadata: dict | None = None,
    desc: str = "train",
) -> TrainResult:
    """Train ``model`` on the device of its parameters.

    :param loss_fn: ``loss_fn(net, batch, generator) -> (B,)`` per-sample losses.
    :param batches: ``batches(step, generator, rank, world) -> batch`` on the model's device (see
        :mod:`scoredae.data.batches`); its ``steps_per_epoch`` (if any) is the default ``eval_every``.
    :param evaluate: ``evaluate(model) -> dict`` of JSON metrics, run on the EMA model every
        ``eval_every`` steps (into ``history``) and at every checkpoint (as ``metrics``).
    :param out: folder for checkpoints (:mod:`scoredae.train.checkpoints`): ``last`` (weights,
        optimizer and EMA state, for ``resume``) and ``model`` (the weights to use), every
        ``save_every`` steps and at the end; rank 0 writes.
    :param resume: continue from ``out/last``, which must exist and hold a run with the same model
        and the same :data:`~scoredae.train.checkpoints.SAME_ON_RESUME` settings.
    :param metadata: extra JSON metadata to store (data, training command, ...).

    Checkpoints also go out every ``save_minutes`` of training time, and when SIGINT or SIGTERM
    arrives: the loop finishes its step, writes ``last`` and raises :class:`TrainingInterrupted`.
    """
    rank, world = distributed_world()
    run = _Run(model, batches, config, evaluate, out=out, metadata=metadata, rank=rank, world=world)
    if resume:
        run.continue_from(run.folder.resume(config))
    net = model
    if world > 1:
        net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[run.device.index] if run.device.type == "cuda" else None)
    if config.compile:
        net = torch.compile(net)
    bar = run.progress_bar(desc)
    model.train()
    with StopOnSignal() as stop:
        while run.fraction() < 1:
            loss = run.optimize(net, loss_fn)
            bar.update(run.took if run.by_time else 1)
            run.after_step(loss, bar, stop.received)
    bar.close()
    model.eval()
    saved = run.saved
    meta = saved if saved is not None and saved["step"] == run.step else run.save()  # not written twice
    return TrainResult(run.evaluated, meta, torch.stack(run.losses).cpu() if run.losses else torch.empty(0))


class _Run:
    """The state of one call of :func:`train`: where the run is (step, training seconds, history),
    the metrics measured at the current step, the losses not yet checked for finiteness, and the
    last checkpoint written."""

    def __init__(self, model, batches, config: TrainConfig, evaluate, *, out, metadata: dict | None, rank: int,
                 world: int):
        self.model, self.batches, self.config, self.evaluate = model, batches, config, evaluate
        self.rank, self.world = rank, world
        self.device = next(model.parameters()).device
        self.eval_every = config.eval_every or getattr(batches, "steps_per_epoch", None)
        self.autocast, self.scaler = _autocast(self.device, config.amp)
        self.optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, foreach=True)
        self.averages = moving_averages(model, config)
        self.evaluated = self.averages["ema"].model if "ema" in self.averages else model  # the weights to use
        self.folder = RunFolder(out, model, self.evaluated, self.optimizer, self.averages,
                                {**(metadata or {}), "model": type(model).__name__, "config": as_json(model.config),
                                 "train_config": dataclasses.asdict(config)}, writes=rank == 0)
        self.step, self.elapsed, self.history, self.took = 0, 0.0, [], 0.0
        self.losses, self.unchecked, self.saved_at, self.saved = [], [], 0.0, None
        self.measured: dict[int, dict] = {}  # step -> metrics, so an evaluation and a checkpoint share one pass
        self.by_time = config.steps is None  # a time budget alone: the bar counts seconds

    def continue_from(self, meta: dict) -> None:
        """Carry on where the checkpoint of metadata ``meta`` stopped."""
        self.step, self.elapsed, self.history, self.saved_at = meta["step"], meta["elapsed_s"], meta["history"], meta["elapsed_s"]

    def fraction(self) -> float:
        """The share of the budget used: of the steps, or of the minutes, whichever is further."""
        parts = [self.step / self.config.steps] if self.config.steps else []
        if self.config.minutes:
            parts.append(self.elapsed / (60 * self.config.minutes))
        return min(1.0, max(parts))

    def metrics(self) -> dict:
        """The evaluation of the weights in use at the current step, measured once per step."""
        if self.step not in self.measured:
            training = self.model.training
            self.model.eval()
            self.measured.clear()
            self.measured[self.step] = self.evaluate(self.evaluated) if self.evaluate else {}
            self.model.train(training)
        return self.measured[self.step]

    def save(self) -> dict:
        return self.folder.save(step=self.step, elapsed_s=self.elapsed, history=self.history, metrics=self.metrics())

    def progress_bar(self, desc: str) -> tqdm:
        """A bar over the steps, or over the seconds for a time budget alone, shown on rank 0."""
        config = self.config
        bar = tqdm(total=config.steps or round(60 * config.minutes), unit="s" if self.by_time else "step",
                   initial=round(self.elapsed) if self.by_time else self.step,
                   disable=not config.progress or self.rank != 0, desc=desc)
        if self.evaluate is not None and not bar.disable:  # where the run starts, before the first epoch ends
            bar.set_postfix(step=self.step, **{k: str(v) for k, v in self.metrics().items()})
        return bar

    def optimize(self, net, loss_fn) -> torch.Tensor:
        """One step: a batch and a generator seeded by (seed, step, rank), the learning rate of the
        schedule, the mean loss, the optimizer and moving-average updates; every ``check_every``
        steps, one check that the losses are finite. Returns the loss."""
        config, start = self.config, time.perf_counter()
        gen = seeded(config.seed, self.step, self.rank, device=self.device)
        batch = self.batches(self.step, gen, self.rank, self.world)
        lr = learning_rate(config.lr, config.lr_schedule, self.step, self.fraction(), config.warmup_steps,
                           config.lr_ref_steps)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        with self.autocast:
            loss = loss_fn(net, batch, gen).float().mean()
        _optimizer_step(loss, self.model, self.optimizer, self.scaler, config.grad_clip)
        for avg in self.averages.values():
            avg.update(self.step)
        self.step += 1
        self.losses.append(loss.detach())
        self.unchecked.append(self.losses[-1])
        if len(self.unchecked) == config.check_every or self.fraction() >= 1:
            if not bool(torch.stack(self.unchecked).isfinite().all()):  # one sync for check_every steps
                raise RuntimeError(f"training diverged by step {self.step} (non-finite loss); try a smaller lr")
            self.unchecked = []
        self.took = time.perf_counter() - start
        self.elapsed += self.took
        return loss

    def after_step(self, loss: torch.Tensor, bar: tqdm, stopped_by: str | None) -> None:
        """Evaluate, snapshot and checkpoint when due (when the run has a folder); on a signal,
        checkpoint and stop."""
        config, step, writes = self.config, self.step, self.folder.out is not None
        if self.eval_every and step % self.eval_every == 0:
            metrics = self.metrics()
            self.history.append({"step": step, "loss": round(loss.item(), 6), **metrics,
                                 "elapsed_s": round(self.elapsed, 1)})
            log.info("step %d: loss %.5g %s", step, loss.item(), metrics)
            bar.set_postfix(step=step, loss=f"{loss.item():.4g}", **{k: str(v) for k, v in metrics.items()})
        if config.snapshot_every and step % config.snapshot_every == 0:
            self.folder.snapshot(step, self.elapsed)
        due = step % config.save_every == 0 or (config.save_minutes and self.elapsed - self.saved_at >= 60 * config.save_minutes)
        if writes and (due or stopped_by):
            self.saved, self.saved_at = self.save(), self.elapsed
        if stopped_by:
            where = f"; checkpoint {self.folder.last} written, continue with resume" if writes else ""
            raise TrainingInterrupted(f"training stopped by {stopped_by} at step {step}{where}")
