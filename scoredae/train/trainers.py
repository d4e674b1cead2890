r"""What scoredae trains, each a model, a batch source and a per-sample loss for :func:`~scoredae.train.loop.train`.

* :func:`train_denoiser`: an image denoiser with the MMSE objective
  :func:`~scoredae.objectives.denoising_loss`, :math:`\frac1d \lVert D(x + \sigma n, \sigma) - x \rVert^2`,
  at its fixed :math:`\sigma` or with one level per image drawn log-uniformly from its
  ``sigma_range``; over a range each image's loss is weighted by
  :math:`\lambda(\sigma) = 1/\sigma^2 + 1/\sigma_{data}^2` (Karras et al. 2022, eq. 8), which puts every
  level on the same scale without moving the per-level minimiser, the posterior mean. With
  ``objective="flow"``, conditional flow matching instead (:func:`~scoredae.objectives.flow_matching_loss`):
  times :math:`t = \sigma / (1 + \sigma)` uniform over the range, each loss weighted by :math:`1 / t^2`.
* :func:`train_toy`: a :class:`~scoredae.nets.toy.ToyDenoiser` on toy points with any objective of
  :data:`OBJECTIVES`.
* :func:`train_classifier`: the MNIST classifier of the sample-quality metric, with cross-entropy.

===========  ====================================================================================
``"dsm"``    :func:`~scoredae.objectives.dsm_loss` of ``model.score``, :math:`\lambda = \sigma^2`
``"mse"``    :func:`~scoredae.objectives.denoising_loss` of the denoiser ``model``
``"l1"``     :func:`~scoredae.objectives.l1_denoising_loss` (learns the posterior median)
``"charb"``  :func:`~scoredae.objectives.charbonnier_denoising_loss` (between median and mean)
``"edge"``   :func:`~scoredae.objectives.edge_aware_denoising_loss` (the posterior mean again)
``"ism"``    :math:`\sigma^2\,` :func:`~scoredae.objectives.ism_loss` (exact trace) at
             :math:`\tilde x = x + \sigma n`, score ``model.score(., sigma)``: fits :math:`p_\sigma`
``"ssm"``    the same with :func:`~scoredae.objectives.ssm_loss` (one Gaussian projection, VR)
===========  ====================================================================================
"""

from __future__ import annotations

import os
from collections.abc import Callable

import torch

from .._checks import positive_int, resolve_device
from ..data.batches import TensorBatches, toy_batches
from ..eval.denoising import evaluate_psnr
from ..eval.report import EVAL_SIGMAS
from ..nets.base import ImageDenoiser
from ..nets.classifier import MNISTClassifier
from ..nets.toy import ToyDenoiser
from ..objectives import (
    charbonnier_denoising_loss,
    denoising_loss,
    dsm_loss,
    edge_aware_denoising_loss,
    flow_matching_loss,
    ism_loss,
    l1_denoising_loss,
    log_normal_sigmas,
    log_uniform_sigmas,
    model_sigma,
    perturb,
    ssm_loss,
)
from .loop import TrainConfig, TrainResult, train

#: denoising losses of :func:`train_denoiser` by name: what each estimates is in :mod:`scoredae.objectives`
DENOISING_LOSSES: dict[str, Callable] = {"mse": denoising_loss, "l1": l1_denoising_loss,
                                         "charb": charbonnier_denoising_loss, "edge": edge_aware_denoising_loss}


def denoiser_loss(model: ImageDenoiser, log_normal: tuple[float, float] | None = None, loss: str = "mse",
                  label_dropout: float = 0.0, objective: str = "denoising") -> Callable:
    """The per-sample loss of ``model`` at its noise level(s), weighted over a range (module
    docstring): the squared error (``loss="mse"``, the MMSE objective) or another of
    :data:`DENOISING_LOSSES`. The levels are log-uniform over the range, or, given
    ``log_normal=(mean, std)``, drawn by :func:`~scoredae.objectives.log_normal_sigmas`.
    A class-conditional model takes batches ``(images, labels)``; each label is dropped (the model
    sees "none") with probability ``label_dropout``. ``objective="flow"``: conditional flow matching
    (module docstring), for a noise-conditional model with the squared error."""
    if objective not in ("denoising", "flow"):
        raise ValueError(f"objective: expected denoising or flow, got {objective!r}")
    if objective == "flow" and (not model.noise_conditional or loss != "mse" or log_normal is not None):
        raise ValueError("objective: flow matching trains a noise-conditional model with the squared error, its "
                         "times uniform (no log_normal)")
    if loss not in DENOISING_LOSSES:
        raise ValueError(f"loss: expected one of {sorted(DENOISING_LOSSES)}, got {loss!r}")
    if not 0 <= label_dropout < 1 or (label_dropout and not model.label_conditional):
        raise ValueError(f"label_dropout: expected a probability in [0, 1) for a class-conditional model, got "
                         f"{label_dropout} for a {'class-conditional' if model.label_conditional else 'unconditional'} one")
    per_sample = DENOISING_LOSSES[loss]

    def loss_fn(net, batch, generator) -> torch.Tensor:
        x, denoiser = batch, net
        if model.label_conditional:
            x, labels = batch
            drop = torch.rand(labels.shape, generator=generator, device=labels.device) < label_dropout
            labels = labels.masked_fill(drop, model.config.num_classes)  # the "no label" class

            def denoiser(y, sigma):
                return net(y, sigma, class_labels=labels)
        if not model.noise_conditional:
            return per_sample(denoiser, x, model.trained_sigma, generator)
        if objective == "flow":
            lo, hi = (s / (1 + s) for s in model.sigma_range)
            t = lo + (hi - lo) * torch.rand(x.shape[0], generator=generator, device=x.device, dtype=x.dtype)
            return flow_matching_loss(denoiser, x, t, generator)
        if log_normal is None:
            sigma = log_uniform_sigmas(x.shape[0], model.sigma_range, generator, like=x)  # (B,)
        else:
            sigma = log_normal_sigmas(x.shape[0], *log_normal, model.sigma_range, generator, like=x)  # (B,)
        weight = 1 / sigma**2 + 1 / model.config.sigma_data**2
        return weight * per_sample(denoiser, x, sigma, generator)

    return loss_fn


def train_denoiser(
    model: ImageDenoiser,
    train_data: torch.Tensor | Callable,
    test_images: torch.Tensor,
    config: TrainConfig,
    *,
    eval_sigmas: tuple[float, ...] = EVAL_SIGMAS["mnist"],
    eval_images: int = 500,
    log_normal: tuple[float, float] | None = None,
    loss: str = "mse",
    train_labels: torch.Tensor | None = None,
    label_dropout: float = 0.0,
    objective: str = "denoising",
    out: str | os.PathLike | None = None,
    resume: bool = False,
    metadata: dict | None = None,
) -> TrainResult:
    """Train ``model`` (on the device of its parameters) on ``train_data``: images (N, C, H, W),
    batched epoch by epoch (:class:`~scoredae.data.batches.TensorBatches`) with their int64
    ``train_labels`` (N,) for a class-conditional model, or a batch source such as
    :class:`~scoredae.data.images.RandomCrops`.

    The PSNR on the first ``eval_images`` of ``test_images``, noised with a fixed seed, is
    recorded every epoch and at every checkpoint, at each of ``eval_sigmas`` (a noise-conditional
    model) or at the trained sigma. ``log_normal=(mean, std)`` draws the training levels of a
    noise-conditional model as EDM does; ``loss``, ``label_dropout`` and ``objective`` are those of
    :func:`denoiser_loss`. Other arguments are those of :func:`~scoredae.train.loop.train`.
    """
    positive_int("eval_images", eval_images)
    device = next(model.parameters()).device
    x_eval = test_images[:eval_images].to(device, torch.float32)
    sigmas = eval_sigmas if model.noise_conditional else (model.trained_sigma,)

    def evaluate(m) -> dict:
        return {"psnr": {str(s): round(evaluate_psnr(m, x_eval, s), 3) for s in sigmas}}

    if model.label_conditional != (train_labels is not None):
        raise ValueError(f"train_labels: a {'class-conditional' if model.label_conditional else 'unconditional'} "
                         f"model needs {'them' if model.label_conditional else 'none'}")
    if isinstance(train_data, torch.Tensor):  # (N, C, H, W), held once on the device
        labels = () if train_labels is None else (train_labels.to(device),)
        batches = TensorBatches(train_data.to(device, torch.float32), *labels, batch_size=config.batch_size,
                                seed=config.seed)
    else:
        batches = train_data
    if log_normal is not None and not model.noise_conditional:
        raise ValueError("log_normal: a fixed-sigma model has one level; give it a sigma_range")
    draw = "uniform t = sigma / (1 + sigma)" if objective == "flow" else \
        {"log_normal": list(log_normal)} if log_normal else "log_uniform"
    return train(model, denoiser_loss(model, log_normal, loss, label_dropout, objective), batches, config,
                 evaluate=evaluate, out=out, resume=resume,
                 metadata={**(metadata or {}), "eval_images": len(x_eval), "sigma_draw": draw,
                           "loss": loss, "objective": objective, **({"label_dropout": label_dropout} if model.label_conditional else {})})


def _noisy_objective(loss_fn) -> Callable:
    r""":math:`\sigma^2 \ell(s_\theta(\cdot, \sigma); \tilde x)` for a clean-data objective
    :math:`\ell` applied to :math:`\tilde x = x + \sigma n \sim p_\sigma`."""

    def objective(model, x, sigmas, generator):
        y, s, _ = perturb(x, sigmas, generator)
        sigma = model_sigma(s)  # 0-d or (B,)
        return sigma**2 * loss_fn(lambda z: model.score(z, sigma), y, generator=generator)

    return objective


#: objective name -> ``loss(model, x, sigmas, generator) -> (B,)`` (the table of the module docstring)
OBJECTIVES: dict[str, Callable] = {
    "dsm": lambda model, x, sigmas, g: dsm_loss(model.score, x, sigmas, generator=g),
    "mse": lambda model, x, sigmas, g: denoising_loss(model, x, sigmas, generator=g),
    "l1": lambda model, x, sigmas, g: l1_denoising_loss(model, x, sigmas, generator=g),
    "charb": lambda model, x, sigmas, g: charbonnier_denoising_loss(model, x, sigmas, generator=g),
    "edge": lambda model, x, sigmas, g: edge_aware_denoising_loss(model, x, sigmas, generator=g),
    "ism": _noisy_objective(ism_loss),
    "ssm": _noisy_objective(ssm_loss),
}


def train_toy(
    data,
    *,
    objective: str | Callable = "dsm",
    sigmas=(0.05, 2.0),
    steps: int = 3000,
    batch_size: int = 512,
    lr: float = 3e-3,
    model: ToyDenoiser | None = None,
    parametrization: str = "score",
    amp: str | None = None,
    device="auto",
    generator: torch.Generator | None = None,
    progress: bool = True,
) -> TrainResult:
    r"""Train a noise-conditional :class:`~scoredae.nets.toy.ToyDenoiser` on toy ``data``.

    :param data: a :class:`~scoredae.mixtures.GaussianMixture` (sampled afresh each step) or points
        ``(N, d)`` (rows drawn with replacement).
    :param objective: a name of :data:`OBJECTIVES` or a callable ``(model, x, sigmas, generator) -> (B,)``.
    :param sigmas: the noise levels: a float, or a range ``(lo, hi)`` drawn log-uniformly per sample.
    :param lr: the Adam learning rate at the start, decayed to 0 along the cosine.
    :param model: a model to continue training; by default a new ``ToyDenoiser(d, parametrization=...)``.
    :param amp: mixed precision, ``None``, ``"bf16"`` or ``"fp16"`` (with a GradScaler, CUDA only).
    :param device: ``"auto"`` picks CUDA when available.
    :param generator: seeds the initialisation, the batches and the noise.
    :returns: the result; ``.model`` in eval mode, ``.losses`` the mean loss of every step.
    """
    loss = objective if callable(objective) else OBJECTIVES.get(objective)
    if loss is None:
        raise ValueError(f"objective: expected one of {sorted(OBJECTIVES)} or a callable, got {objective!r}")
    name = objective if isinstance(objective, str) else getattr(objective, "__name__", "custom")
    config = TrainConfig(steps=steps, batch_size=batch_size, lr=lr, grad_clip=None, ema=None, amp=amp,
                         progress=progress, seed=int(torch.randint(2**62, (1,), generator=generator)))
    device = resolve_device(device)
    batches, dim = toy_batches(data, batch_size, device)
    if model is None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            model = ToyDenoiser(dim, parametrization=parametrization)
    model = model.to(device=device, dtype=torch.float32)
    return train(model, lambda net, x, g: loss(net, x, sigmas, g), batches, config, desc=f"train_toy[{name}]")


def train_classifier(
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    epochs: int = 3,
    batch_size: int = 128,
    lr: float = 1e-3,
    seed: int = 0,
    progress: bool = True,
) -> TrainResult:
    """Cross-entropy training of a new :class:`~scoredae.nets.classifier.MNISTClassifier` on the
    device of ``images`` (N, 1, 28, 28) with int64 ``labels`` (N,), ``epochs`` passes."""
    if images.shape[0] != labels.shape[0]:
        raise ValueError(f"images and labels differ in length: {images.shape[0]} vs {labels.shape[0]}")
    batches = TensorBatches(images, labels, batch_size=batch_size, seed=seed)
    config = TrainConfig(steps=positive_int("epochs", epochs) * batches.steps_per_epoch, batch_size=batch_size,
                         lr=lr, grad_clip=None, ema=None, seed=seed, progress=progress)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = MNISTClassifier().to(images.device)

    def loss_fn(net, batch, generator) -> torch.Tensor:
        x, y = batch
        return torch.nn.functional.cross_entropy(net(x), y, reduction="none")

    return train(model, loss_fn, batches, config, desc="classifier")
