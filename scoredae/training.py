r"""The training loop of the MNIST denoisers: one function, any device, one or many processes.

Each step draws a batch by indexing the training tensor (held once on the device; no per-sample
Python work) and minimises the MMSE objective :func:`~scoredae.objectives.denoising_loss`,
:math:`\frac1d \lVert D(x + \sigma n, \sigma) - x \rVert^2`, at a fixed :math:`\sigma` or with one
level per image drawn log-uniformly from ``sigma_range``; over a range each image's loss is
weighted by :math:`\lambda(\sigma) = 1/\sigma^2 + 1/\sigma_{data}^2` (Karras et al. 2022, eq. 8),
which puts every level on the same scale without moving the per-level minimiser, the posterior mean.

Adam, cosine learning-rate decay :math:`\eta_t = \eta \frac12 (1 + \cos \pi p_t)` with :math:`p_t`
the fraction of the step or time budget used, gradient-norm clipping, an optional exponential
moving average (EMA) of the weights, PSNR on a fixed noisy test subset every epoch, mixed
precision and ``torch.compile`` on CUDA, DistributedDataParallel under ``torchrun``.

Randomness is a function of ``(seed, step, rank)`` only (the data order of each epoch and the
noise of each step are seeded from them), so with the optimizer and EMA states a checkpoint holds
everything needed: a resumed run reaches the same weights as an uninterrupted one.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import math
import os
import time
from pathlib import Path

import torch
import torch.distributed as dist
from tqdm.auto import tqdm

from .checkpoints import load_into, load_weights, save_checkpoint
from .evaluation import evaluate_psnr
from .models.base import MNISTDenoiser
from .objectives import denoising_loss
from .toy_training import _autocast, train_toy  # noqa: F401 - train_toy is part of this module's API

log = logging.getLogger(__name__)


@dataclasses.dataclass
class TrainConfig:
    """Options of :func:`train`. Training stops after ``steps`` or ``minutes``, whichever first."""

    steps: int | None = 1000
    minutes: float | None = None
    batch_size: int = 128
    lr: float = 2e-3
    grad_clip: float = 1.0
    ema: float | None = 0.999
    sigma_data: float = 0.5
    eval_sigmas: tuple[float, ...] = (0.1, 0.25, 0.5)
    eval_images: int = 500
    eval_every: int | None = None
    save_every: int = 500
    seed: int = 0
    amp: str | None = None
    compile: bool = False
    progress: bool = True

    def __post_init__(self):
        if self.steps is None and self.minutes is None:
            raise ValueError("give steps or minutes (the training budget)")
        for name in ("steps", "batch_size", "eval_images", "save_every", "eval_every"):
            v = getattr(self, name)
            if v is not None and (not isinstance(v, int) or v < 1):
                raise ValueError(f"{name}: expected a positive int, got {v!r}")
        if self.ema is not None and not 0 < self.ema < 1:
            raise ValueError(f"ema: expected a decay in (0, 1) or None, got {self.ema}")


def _seeded(seed: int, *key: int, device="cpu") -> torch.Generator:
    """A generator seeded from ``seed`` and ``key`` (e.g. step and rank)."""
    value = seed
    for k in key:
        value = (value * 1_000_003 + k) % (2**62)
    return torch.Generator(device).manual_seed(value)


def _draw_sigma(model: MNISTDenoiser, n: int, gen: torch.Generator, device) -> torch.Tensor:
    r"""(n,) noise levels: the trained level, or :math:`\log\sigma \sim \mathcal U(\log lo, \log hi)`."""
    if not model.noise_conditional:
        return torch.full((n,), model.trained_sigma, device=device)
    lo, hi = model.sigma_range
    u = torch.rand(n, generator=gen, device=device)
    return torch.exp(math.log(lo) + u * math.log(hi / lo))


class EMA:
    r"""Exponential moving average :math:`\bar\theta \leftarrow \beta_t \bar\theta + (1 - \beta_t)\theta`
    with the warm-up :math:`\beta_t = \min(\beta, (1 + t) / (10 + t))` at update :math:`t`, so the
    initial weights are forgotten early (as in TensorFlow's ExponentialMovingAverage ``num_updates``)."""

    def __init__(self, model: torch.nn.Module, decay: float):
        self.model = copy.deepcopy(model).eval().requires_grad_(False)
        self.decay = decay

    @torch.no_grad()
    def update(self, model: torch.nn.Module, t: int) -> None:
        beta = min(self.decay, (1 + t) / (10 + t))
        for avg, p in zip(self.model.state_dict().values(), model.state_dict().values()):
            avg.lerp_(p, 1 - beta) if avg.is_floating_point() else avg.copy_(p)


def _world() -> tuple[int, int]:
    """(rank, world size) under torchrun (initialising the process group once), else (0, 1)."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    if dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _train_state(optimizer, ema: EMA | None) -> dict[str, torch.Tensor]:
    """Optimizer moments and EMA weights as flat named tensors for the checkpoint."""
    out = {}
    for idx, state in optimizer.state_dict()["state"].items():
        for k, v in state.items():
            out[f"optim/{idx}/{k}"] = torch.as_tensor(v)
    if ema is not None:
        out.update({f"ema/{k}": v for k, v in ema.model.state_dict().items()})
    return out


def _restore_state(extra: dict[str, torch.Tensor], optimizer, ema: EMA | None, source: str) -> None:
    state: dict[int, dict] = {}
    for key, v in extra.items():
        if key.startswith("optim/"):
            _, idx, k = key.split("/")
            state.setdefault(int(idx), {})[k] = v
    optimizer.load_state_dict({"state": state, "param_groups": optimizer.state_dict()["param_groups"]})
    if ema is not None:
        load_weights(ema.model, {k[4:]: v for k, v in extra.items() if k.startswith("ema/")}, source)


def _optimizer_step(loss, model, optimizer, scaler, grad_clip: float) -> None:
    """Backward pass (loss-scaled for fp16), gradient-norm clipping, one optimizer step."""
    optimizer.zero_grad(set_to_none=True)
    if scaler is None:
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        optimizer.step()
        return
    scaler.scale(loss).backward()
    scaler.unscale_(optimizer)
    torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    scaler.step(optimizer)
    scaler.update()


def _device_of(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


def train(
    model: MNISTDenoiser,
    train_images: torch.Tensor,
    test_images: torch.Tensor,
    config: TrainConfig,
    out: str | os.PathLike | None = None,
    resume: bool = False,
    metadata: dict | None = None,
) -> dict:
    """Train ``model`` (on the device of its parameters) on ``train_images`` (N, 1, 28, 28).

    :param test_images: clean images of the fixed evaluation subset (its first ``eval_images``).
    :param out: folder for checkpoints: ``last`` (weights, optimizer and EMA state; for
        ``resume``) and ``model`` (the weights to use, EMA when enabled), every ``save_every``
        steps and at the end. Only rank 0 writes.
    :param resume: continue from ``out/last`` when it exists.
    :param metadata: extra JSON metadata to store (data, training command, ...).
    :returns: the final metadata (includes ``metrics``: PSNR per evaluated sigma, and ``history``).
    """
    rank, world = _world()
    device = _device_of(model)
    x_train = train_images.to(device, torch.float32)  # (N, 1, 28, 28), held once
    x_eval = test_images[: config.eval_images].to(device, torch.float32)
    per_rank = config.batch_size // world
    if per_rank < 1:
        raise ValueError(f"batch_size {config.batch_size} is smaller than the world size {world}")
    steps_per_epoch = max(1, len(x_train) // config.batch_size)
    eval_every = config.eval_every or steps_per_epoch
    sigmas = config.eval_sigmas if model.noise_conditional else (model.trained_sigma,)

    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    ema = EMA(model, config.ema) if config.ema else None
    step, elapsed, history = 0, 0.0, []
    last = Path(out) / "last" if out is not None else None
    if resume and last is not None and last.with_suffix(".json").exists():
        extra, meta = load_into(model, last)
        _restore_state(extra, optimizer, ema, str(last))
        step, elapsed, history = meta["step"], meta["elapsed_s"], meta["history"]
        log.info("resumed from %s at step %d", last, step)

    net = model
    if world > 1:
        ids = [device.index] if device.type == "cuda" else None
        net = torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)
    if config.compile:
        net = torch.compile(net)
    autocast, scaler = _autocast(device, config.amp)

    def progress_fraction() -> float:
        parts = [step / config.steps] if config.steps else []
        if config.minutes:
            parts.append(elapsed / (60 * config.minutes))
        return min(1.0, max(parts))

    def save() -> dict:
        evaluated = ema.model if ema else model
        meta = {
            **(metadata or {}),
            "model": type(model).__name__,
            "config": model.config,
            **({"sigma_range": list(model.sigma_range)} if model.noise_conditional else {"sigma": model.trained_sigma}),
            "train_config": dataclasses.asdict(config),
            "metrics": {"psnr": {str(s): evaluate_psnr(evaluated, x_eval, s) for s in sigmas},
                        "eval_images": len(x_eval)},
            "step": step,
            "elapsed_s": elapsed,
            "history": history,
            "version": _version(),
        }
        if out is not None and rank == 0:
            save_checkpoint(last, model, meta, _train_state(optimizer, ema))
            save_checkpoint(Path(out) / "model", evaluated, meta)
        return meta

    bar = tqdm(total=config.steps, initial=step, disable=not config.progress or rank != 0, desc="train")
    model.train()
    perm, perm_epoch = None, None
    while progress_fraction() < 1:
        start = time.perf_counter()
        epoch, k = divmod(step, steps_per_epoch)
        if epoch != perm_epoch:  # the data order of an epoch, drawn once from (seed, epoch)
            perm, perm_epoch = torch.randperm(len(x_train), generator=_seeded(config.seed, epoch)).to(device), epoch
        idx = perm[k * config.batch_size : (k + 1) * config.batch_size][rank::world][:per_rank]
        gen = _seeded(config.seed, step, rank, device=device)
        x = x_train[idx]  # (B / world, 1, 28, 28)
        sigma = _draw_sigma(model, len(x), gen, device)
        lr = config.lr * 0.5 * (1 + math.cos(math.pi * progress_fraction()))
        for group in optimizer.param_groups:
            group["lr"] = lr
        with autocast:
            per_sample = denoising_loss(net, x, sigma, generator=gen)
        weight = 1 / sigma**2 + 1 / config.sigma_data**2 if model.noise_conditional else 1.0
        loss = (weight * per_sample.float()).mean()
        if not bool(torch.isfinite(loss)):
            raise RuntimeError(f"training diverged at step {step} (loss {float(loss)}); try a smaller lr")
        _optimizer_step(loss, model, optimizer, scaler, config.grad_clip)
        if ema:
            ema.update(model, step)
        step += 1
        elapsed += time.perf_counter() - start
        bar.update(1)
        if step % eval_every == 0:
            model.eval()
            psnr = {str(s): round(evaluate_psnr(ema.model if ema else model, x_eval, s), 3) for s in sigmas}
            model.train()
            history.append({"step": step, "loss": round(loss.item(), 6), "psnr": psnr, "elapsed_s": round(elapsed, 1)})
            log.info("step %d: loss %.5f, PSNR %s", step, loss.item(), psnr)
        bar.set_postfix(loss=f"{loss.item():.4g}", psnr=history[-1]["psnr"] if history else "-")
        if step % config.save_every == 0:
            model.eval()
            save()
            model.train()
    bar.close()
    model.eval()
    return save()


def _version() -> str:
    from . import __version__

    return __version__
