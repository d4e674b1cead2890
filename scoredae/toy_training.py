r"""Training a :class:`~scoredae.models.toy.ToyScoreNet` on toy data with any objective.

One loop: Adam with a cosine learning-rate decay, a fresh batch every step (drawn from the
mixture on the training device, or from the rows of a tensor of points), optional mixed precision
on CUDA. Each objective maps ``(model, x, sigmas, generator)`` to per-sample losses ``(B,)``:

=============  ====================================================================================
``"dsm"``      :func:`~scoredae.objectives.dsm_loss` of ``model.score``, :math:`\lambda = \sigma^2`
``"mse"``      :func:`~scoredae.objectives.denoising_loss` of the denoiser ``model``
``"l1"``       :func:`~scoredae.objectives.l1_denoising_loss` (learns the posterior median)
``"ism"``      :math:`\sigma^2\,` :func:`~scoredae.objectives.ism_loss` (exact trace) at
               :math:`\tilde x = x + \sigma n`, score ``model.score(., sigma)``: fits :math:`p_\sigma`
``"ssm"``      the same with :func:`~scoredae.objectives.ssm_loss` (one Gaussian projection, VR)
=============  ====================================================================================
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Callable

import torch
from tqdm.auto import tqdm

from .mixtures import GaussianMixture
from .models.toy import ToyScoreNet
from .objectives import denoising_loss, dsm_loss, ism_loss, l1_denoising_loss, perturb, ssm_loss
from .utils import resolve_device

logger = logging.getLogger(__name__)


def _noisy_objective(loss_fn) -> Callable:
    r""":math:`\sigma^2 \ell(s_\theta(\cdot, \sigma); \tilde x)` for a clean-data objective
    :math:`\ell` applied to :math:`\tilde x = x + \sigma n \sim p_\sigma`."""

    def objective(model, x, sigmas, generator):
        y, s, _ = perturb(x, sigmas, generator)
        sigma = s.reshape(-1) if s.ndim else s  # 0-d or (B,)
        return sigma**2 * loss_fn(lambda z: model.score(z, sigma), y, generator=generator)

    return objective


OBJECTIVES: dict[str, Callable] = {
    "dsm": lambda model, x, sigmas, g: dsm_loss(model.score, x, sigmas, generator=g),
    "mse": lambda model, x, sigmas, g: denoising_loss(model, x, sigmas, generator=g),
    "l1": lambda model, x, sigmas, g: l1_denoising_loss(model, x, sigmas, generator=g),
    "ism": _noisy_objective(ism_loss),
    "ssm": _noisy_objective(ssm_loss),
}


def _batch_source(data, device: torch.device, generator: torch.Generator):
    """A function n -> (n, d) float32 batch on ``device``, and the dimension d."""
    if isinstance(data, GaussianMixture):
        mixture = GaussianMixture(
            data.weights.to(device, torch.float32), data.means.to(device, torch.float32),
            data.covs.to(device, torch.float32),
        )
        return (lambda n: mixture.sample(n, generator=generator)), data.dim
    if isinstance(data, torch.Tensor):
        if data.ndim != 2 or data.shape[0] < 1:
            raise ValueError(f"data: expected points of shape (N, d), got {tuple(data.shape)}")
        points = data.to(device, torch.float32)
        return (lambda n: points[torch.randint(len(points), (n,), generator=generator, device=device)]), \
            data.shape[1]
    raise TypeError(f"data: expected a GaussianMixture or a tensor of points, got {type(data).__name__}")


def _autocast(device: torch.device, amp: str | None):
    """The autocast context and the GradScaler (fp16 only) for ``amp`` in (None, 'bf16', 'fp16')."""
    if amp is None:
        return contextlib.nullcontext(), None
    if amp not in ("bf16", "fp16"):
        raise ValueError(f"amp: expected None, 'bf16' or 'fp16', got {amp!r}")
    if amp == "fp16" and device.type != "cuda":
        raise ValueError(f"amp='fp16' needs a CUDA device, got {device}")
    dtype = torch.bfloat16 if amp == "bf16" else torch.float16
    scaler = torch.amp.GradScaler(device.type) if amp == "fp16" else None
    return torch.autocast(device.type, dtype=dtype), scaler


def train_toy(
    data,
    *,
    objective: str | Callable = "dsm",
    sigmas=(0.05, 2.0),
    steps: int = 3000,
    batch_size: int = 512,
    lr: float = 3e-3,
    model: ToyScoreNet | None = None,
    parametrization: str = "score",
    amp: str | None = None,
    device="auto",
    generator: torch.Generator | None = None,
    progress: bool = True,
) -> ToyScoreNet:
    r"""Train a noise-conditional :class:`ToyScoreNet` on ``data`` and return it in eval mode.

    :param data: a :class:`~scoredae.mixtures.GaussianMixture` (sampled afresh each step) or points
        ``(N, d)`` (rows drawn with replacement).
    :param objective: a name of :data:`OBJECTIVES` or a callable ``(model, x, sigmas, generator) -> (B,)``.
    :param sigmas: the noise levels: a float, or a range ``(lo, hi)`` drawn log-uniformly per sample.
    :param lr: the Adam learning rate at the start, decayed to 0 by
        :math:`\eta_t = \eta\, \tfrac12 (1 + \cos(\pi t / T))`.
    :param model: a model to continue training; by default a new ``ToyScoreNet(d, parametrization=...)``.
    :param amp: mixed precision, ``None``, ``"bf16"`` or ``"fp16"`` (with a GradScaler, CUDA only).
    :param device: ``"auto"`` picks CUDA when available.
    :param generator: seeds the initialisation, the batches and the noise.
    :returns: the model; ``model.train_losses`` holds the mean loss of every step (CPU tensor).
    """
    if steps < 1 or batch_size < 1:
        raise ValueError(f"steps and batch_size must be >= 1, got {steps} and {batch_size}")
    loss_fn = objective if callable(objective) else OBJECTIVES.get(objective)
    if loss_fn is None:
        raise ValueError(f"objective: expected one of {sorted(OBJECTIVES)} or a callable, got {objective!r}")
    name = objective if isinstance(objective, str) else getattr(objective, "__name__", "custom")
    device = resolve_device(device)
    seed_device = "cpu" if generator is None else generator.device
    seed = int(torch.randint(2**62, (1,), generator=generator, device=seed_device))
    gen = torch.Generator(device).manual_seed(seed)
    sample, dim = _batch_source(data, device, gen)
    if model is None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = ToyScoreNet(dim, parametrization=parametrization)
    model = model.to(device=device, dtype=torch.float32).train()
    autocast, scaler = _autocast(device, amp)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda t: 0.5 * (1 + math.cos(math.pi * t / steps)))
    losses = torch.empty(steps, device=device)
    for step in tqdm(range(steps), disable=not progress, desc=f"train_toy[{name}]"):
        with autocast:
            loss = loss_fn(model, sample(batch_size), sigmas, gen).mean()
        optimizer.zero_grad(set_to_none=True)
        if scaler is None:
            loss.backward()
            optimizer.step()
        else:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        schedule.step()
        losses[step] = loss.detach()
    model.train_losses = losses.cpu()
    if not bool(torch.isfinite(model.train_losses).all()):
        raise RuntimeError("training diverged (non-finite loss); try a smaller lr")
    logger.info("train_toy: %d steps of %s, final loss %.4g", steps, name, float(losses[-1]))
    return model.eval()
