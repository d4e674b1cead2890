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
from pathlib import Path

import torch
import torch.distributed as dist
from tqdm.auto import tqdm

from .._checks import positive, positive_int
from ..nets.checkpoints import as_json, load_into, save_checkpoint
from ..rng import seeded
from .schedule import SCHEDULES, learning_rate
from .state import EMA, StopOnSignal, restore_state, train_state

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


#: what a resumed run must share with the run it continues (the budget may change)
SAME_ON_RESUME = ("batch_size", "lr", "grad_clip", "ema", "seed", "amp", "lr_schedule", "warmup_steps",
                  "lr_ref_steps", "phema")


class TrainingInterrupted(Exception):
    """SIGINT or SIGTERM stopped the training after a checkpoint was written."""


def _resume(last: Path | None, model, optimizer, averages: dict[str, EMA], config: TrainConfig) -> dict:
    """Load ``last`` into the model, optimizer and EMA; refuse a missing checkpoint or other settings."""
    if last is None:
        raise ValueError("resume: expected out, the folder of the run to continue, got None")
    if not last.with_suffix(".json").exists():
        raise ValueError(f"resume: there is no checkpoint {last}.json to continue; train without resume to start afresh")

    def same_settings(meta: dict) -> None:
        before = {**{f"model {k}": v for k, v in meta["config"].items()},
                  **{k: meta["train_config"].get(k) for k in SAME_ON_RESUME}}
        now = {**{f"model {k}": v for k, v in as_json(model.config).items()},
               **as_json({k: getattr(config, k) for k in SAME_ON_RESUME})}
        changed = [f"{k} {before.get(k)!r} -> {v!r}" for k, v in now.items() if before.get(k) != v]
        if changed:
            raise ValueError(f"resume: {last} was trained with other settings ({', '.join(changed)}); resume "
                             f"with the same ones, or train into another folder")

    extra, meta = load_into(model, last, check=same_settings)
    restore_state(extra, optimizer, averages, str(last))
    log.info("resumed from %s at step %d", last, meta["step"])
    return meta


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
    :param out: folder for checkpoints: ``last`` (weights, optimizer and EMA state, for ``resume``)
        and ``model`` (the weights to use), every ``save_every`` steps and at the end; rank 0 writes.
    :param resume: continue from ``out/last``, which must exist and hold a run with the same model
        and the same :data:`SAME_ON_RESUME` settings.
    :param metadata: extra JSON metadata to store (data, training command, ...).

    Checkpoints also go out every ``save_minutes`` of training time, and when SIGINT or SIGTERM
    arrives: the loop finishes its step, writes ``last`` and raises :class:`TrainingInterrupted`.
    """
    rank, world = distributed_world()
    device = next(model.parameters()).device
    eval_every = config.eval_every or getattr(batches, "steps_per_epoch", None)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, foreach=True)
    averages = _averages(model, config)
    evaluated = averages["ema"].model if "ema" in averages else model
    checkpoints = _Checkpoints(out if rank == 0 else None, model, evaluated, optimizer, averages,
                               {**(metadata or {}), "model": type(model).__name__, "config": as_json(model.config),
                                "train_config": dataclasses.asdict(config)})
    step, elapsed, history = 0, 0.0, []
    if resume:
        meta = _resume(checkpoints.last, model, optimizer, averages, config)
        step, elapsed, history = meta["step"], meta["elapsed_s"], meta["history"]
    net = model
    if world > 1:
        net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    if config.compile:
        net = torch.compile(net)
    autocast, scaler = _autocast(device, config.amp)

    def fraction() -> float:  # of the budget used
        parts = [step / config.steps] if config.steps else []
        if config.minutes:
            parts.append(elapsed / (60 * config.minutes))
        return min(1.0, max(parts))

    measured: dict[int, dict] = {}  # step -> metrics, so an evaluation and a checkpoint share one pass

    def metrics_now() -> dict:
        if step not in measured:
            training = model.training
            model.eval()
            measured.clear()
            measured[step] = evaluate(evaluated) if evaluate else {}
            model.train(training)
        return measured[step]

    def save() -> dict:
        return checkpoints.save(step=step, elapsed_s=elapsed, history=history, metrics=metrics_now())

    losses, unchecked, saved_at = [], [], elapsed
    by_time = config.steps is None  # a time budget alone: the bar counts seconds
    bar = tqdm(total=config.steps or round(60 * config.minutes), initial=step if not by_time else round(elapsed),
               unit="s" if by_time else "step", disable=not config.progress or rank != 0, desc=desc)
    if evaluate is not None and not bar.disable:  # where the run starts, before the first epoch ends
        bar.set_postfix(step=step, **{k: str(v) for k, v in metrics_now().items()})
    model.train()
    saved = None  # the metadata of the last checkpoint
    with StopOnSignal() as stop:
        while fraction() < 1:
            start = time.perf_counter()
            gen = seeded(config.seed, step, rank, device=device)
            batch = batches(step, gen, rank, world)
            lr = learning_rate(config.lr, config.lr_schedule, step, fraction(), config.warmup_steps, config.lr_ref_steps)
            for group in optimizer.param_groups:
                group["lr"] = lr
            with autocast:
                loss = loss_fn(net, batch, gen).float().mean()
            _optimizer_step(loss, model, optimizer, scaler, config.grad_clip)
            for avg in averages.values():
                avg.update(step)
            step += 1
            losses.append(loss.detach())
            unchecked.append(losses[-1])
            if len(unchecked) == config.check_every or fraction() >= 1:
                if not bool(torch.stack(unchecked).isfinite().all()):  # one sync for check_every steps
                    raise RuntimeError(f"training diverged by step {step} (non-finite loss); try a smaller lr")
                unchecked = []
            took = time.perf_counter() - start
            elapsed += took
            bar.update(took if by_time else 1)
            if eval_every and step % eval_every == 0:
                metrics = metrics_now()
                history.append({"step": step, "loss": round(loss.item(), 6), **metrics, "elapsed_s": round(elapsed, 1)})
                log.info("step %d: loss %.5g %s", step, loss.item(), metrics)
                bar.set_postfix(step=step, loss=f"{loss.item():.4g}", **{k: str(v) for k, v in metrics.items()})
            if config.snapshot_every and step % config.snapshot_every == 0:
                checkpoints.snapshot(step, elapsed)
            due = step % config.save_every == 0 or (config.save_minutes and elapsed - saved_at >= 60 * config.save_minutes)
            if out is not None and (due or stop.received):
                saved, saved_at = save(), elapsed
            if stop.received:
                where = f"; checkpoint {checkpoints.last} written, continue with resume" if out is not None else ""
                raise TrainingInterrupted(f"training stopped by {stop.received} at step {step}{where}")
    bar.close()
    model.eval()
    meta = saved if saved is not None and saved["step"] == step else save()  # not written twice
    return TrainResult(evaluated, meta, torch.stack(losses).cpu() if losses else torch.empty(0))


def _averages(model: torch.nn.Module, config: TrainConfig) -> dict[str, EMA]:
    """The moving averages of a run by checkpoint name: ``ema`` and one ``phema-<std>`` per profile."""
    averages = {"ema": EMA(model, config.ema)} if config.ema else {}
    averages.update({_phema_name(s): EMA(model, std=s) for s in config.phema})
    return averages


def _phema_name(std: float) -> str:
    return f"phema-{std:.3f}"


class _Checkpoints:
    """What a run writes under ``out`` (nothing when ``out`` is None, as on ranks other than 0):

    * ``last``: the weights with the optimizer and moving-average states, to resume from;
    * ``model``: the weights to use (the EMA when there is one), with the same metadata;
    * ``snapshots/phema-<std>-<step>``: the power-function EMAs at a step, for the post-hoc EMA.
    """

    def __init__(self, out, model, evaluated, optimizer, averages: dict[str, EMA], metadata: dict):
        self.out = Path(out) if out is not None else None
        self.last = self.out / "last" if self.out is not None else None
        self.model, self.evaluated, self.optimizer, self.averages = model, evaluated, optimizer, averages
        self.metadata = metadata

    def save(self, **state) -> dict:
        meta = {**self.metadata, **state, "version": _version()}
        if self.out is not None:
            save_checkpoint(self.last, self.model, meta, train_state(self.optimizer, self.averages))
            save_checkpoint(self.out / "model", self.evaluated, meta)
        return meta

    def snapshot(self, step: int, elapsed: float) -> None:
        if self.out is None:
            return
        for name, avg in self.averages.items():
            if avg.std is not None:
                meta = {**self.metadata, "step": step, "elapsed_s": elapsed, "phema_std": avg.std, "version": _version()}
                save_checkpoint(self.out / "snapshots" / f"{name}-{step:07d}", avg.model, meta)


def _version() -> str:
    from .. import __version__

    return __version__
