r"""Exact posteriors of digits: the shipped MNIST mixture prior (``mnist_mixture``, 100 factor
analysers of rank 8 in :math:`d = 784`) under linear measurements :math:`y = A x + \sigma_y n`,
where every posterior is closed form (:meth:`~scoredae.mixtures.GaussianMixture.posterior`).

The tasks (:data:`TASKS`) are a hidden central box, half the pixels observed, 2x and 4x
super-resolution by block averages and a Gaussian blur. The observed digit :math:`x` is a draw of
the prior (the prior is right) or a real test digit (the prior is wrong; the posterior is still
exact for the model). A sampler's samples are measured against exact posterior draws
(:func:`evaluate_digits`):

* the sliced Wasserstein distance over its floor (independent exact draws of the same size);
* the total variation of the component masses (each sample given to its most responsible
  posterior component), beside that of exact draws;
* per-pixel coverage: the share of samples, averaged over the pixels, inside each pixel's exact
  central interval of level :math:`p \in \{0.5, 0.8, 0.9, 0.95\}` (the marginal of a pixel is a 1-D
  mixture); a calibrated sampler gives :math:`p`, a calibration curve per method;
* the MMSE gap: the PSNR of the samples' mean against the exact posterior mean
  :math:`\mathbb E[x \mid y]`, beside that of as many exact draws (its Monte Carlo floor).
"""

from __future__ import annotations

import math

import deepinv
import torch

from ..mixtures import GaussianMixture
from ..rng import seeded
from .exact_posterior import (
    MixtureProblem,
    interval_coverage,
    mode_tv,
    run_counted,
    sliced_wasserstein_floor,
)
from .sample_quality import sliced_wasserstein

#: the measurements of :func:`digit_operator`, by name
TASKS = ("box", "half", "sr2", "sr4", "blur")
#: the levels of the exact per-pixel intervals whose coverage is measured
LEVELS = (0.5, 0.8, 0.9, 0.95)
SIDE = 28
SIGMA_MAX = 80.0  # the EDM start, far above the prior's spread (pixels in [0, 1])


def digit_operator(task: str, seed: int = 0) -> torch.Tensor:
    r"""The matrix :math:`A` (m, 784) of ``task`` on 28 x 28 digits, float64:

    * ``"box"``: every pixel outside the central 14 x 14 box (m = 588);
    * ``"half"``: half the pixels, drawn from ``seed`` (m = 392);
    * ``"sr2"``, ``"sr4"``: the means of 2 x 2 and 4 x 4 blocks (m = 196, 49);
    * ``"blur"``: a Gaussian blur of standard deviation 1 pixel, its 7 x 7 kernel normalised, zero
      outside the image (m = 784).
    """
    d = SIDE * SIDE
    eye = torch.eye(d, dtype=torch.float64)
    if task == "box":
        hidden = torch.zeros(SIDE, SIDE, dtype=torch.bool)
        hidden[7:21, 7:21] = True
        return eye[~hidden.reshape(-1)]
    if task == "half":
        keep = torch.randperm(d, generator=torch.Generator().manual_seed(seed))[: d // 2].sort().values
        return eye[keep]
    if task in ("sr2", "sr4"):
        f = int(task[-1])
        pool = torch.nn.functional.avg_pool2d(eye.reshape(d, 1, SIDE, SIDE), f)  # column j: A e_j
        return pool.reshape(d, -1).T.contiguous()
    if task == "blur":
        t = torch.arange(-3, 4, dtype=torch.float64)
        kernel = torch.exp(-0.5 * (t[:, None] ** 2 + t[None] ** 2))
        blurred = torch.nn.functional.conv2d(eye.reshape(d, 1, SIDE, SIDE), (kernel / kernel.sum())[None, None],
                                             padding=3)
        return blurred.reshape(d, d).T.contiguous()  # A e_j is column j
    raise ValueError(f"task: expected one of {TASKS}, got {task!r}")


def digit_problem(prior: GaussianMixture, task: str, noise_sigma: float, digit: torch.Tensor | None = None,
                  seed: int = 0) -> MixtureProblem:
    r"""The problem :math:`y = A x + \sigma_y n` of ``task`` (:func:`digit_operator`) for the 784-pixel
    ``prior``: :math:`x` the ``digit`` given (a real one, any shape of 784 values) or a draw of the
    prior from ``seed``, the noise from ``seed``; chains start at :math:`\sigma_{max} = 80`."""
    if prior.dim != SIDE * SIDE:
        raise ValueError(f"prior: expected a mixture on {SIDE * SIDE} pixels, got dimension {prior.dim}")
    if not noise_sigma > 0:
        raise ValueError(f"noise_sigma: expected a positive level, got {noise_sigma!r}")
    gen = seeded(seed, 7)
    A = digit_operator(task, seed).to(prior.means)
    if digit is None:
        x = prior.sample(1, generator=gen)
    else:
        if digit.numel() != prior.dim:
            raise ValueError(f"digit: expected {prior.dim} pixels, got shape {tuple(digit.shape)}")
        x = digit.reshape(1, -1).to(prior.means)
    y = x @ A.T + noise_sigma * torch.randn(1, A.shape[0], generator=gen, dtype=x.dtype)
    return MixtureProblem(prior, A, float(noise_sigma), y, x, sigma_max=SIGMA_MAX)


class DigitImages(deepinv.models.Denoiser):
    """An image denoiser (B, 1, 28, 28) seen on flat digits (B, 784), as the samplers hold them:
    a network next to the mixture's exact denoiser, in the network's dtype, answering in the input's."""

    def __init__(self, network):
        super().__init__()
        self.network = network
        self.sigma_range = getattr(network, "sigma_range", None)

    def forward(self, x: torch.Tensor, sigma, **kwargs) -> torch.Tensor:
        dtype = next(self.network.parameters()).dtype
        sigma = torch.as_tensor(sigma, dtype=dtype, device=x.device)
        out = self.network(x.reshape(-1, 1, SIDE, SIDE).to(dtype), sigma.reshape(-1) if sigma.ndim else sigma)
        return out.reshape(x.shape).to(x.dtype)


def pixel_coverage(problem: MixtureProblem, samples: torch.Tensor, levels=LEVELS) -> list[float]:
    """For each level p, the share of ``samples`` (n, 784) inside each pixel's exact central p
    interval, averaged over the pixels: p for exact draws, up to Monte Carlo error."""
    pixels = torch.eye(problem.prior.dim, dtype=samples.dtype, device=samples.device)
    return [float(interval_coverage(problem.posterior, samples, pixels, p).mean()) for p in levels]


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(-10 * torch.log10((a - b).square().mean()))


def sample_measures(problem: MixtureProblem, samples: torch.Tensor, seed: int) -> dict:
    """The measures of the module docstring for ``samples`` (n, 784) of ``problem``'s posterior."""
    n = len(samples)
    exact_mean = problem.posterior.mean()[0]
    return {"sw": sliced_wasserstein(samples, _exact_draws(problem, n, seed), generator=seeded(seed, 3)),
            "mode_tv": mode_tv(problem.posterior, samples),
            "coverage": pixel_coverage(problem, samples),
            "mean_psnr": _psnr(samples.mean(0), exact_mean),
            "truth_psnr": _psnr(samples.mean(0), problem.x[0])}


def _exact_draws(problem: MixtureProblem, n: int, seed: int, stream: int = 1) -> torch.Tensor:
    return problem.posterior.sample(n, generator=seeded(seed, stream))[:, 0]


def exact_floors(problem: MixtureProblem, n: int, seed: int = 0) -> dict:
    """The measures of ``n`` independent exact draws (:func:`sample_measures`), and the sliced
    Wasserstein floor (:func:`~scoredae.eval.exact_posterior.sliced_wasserstein_floor`): what a
    perfect sampler scores with as many samples; with the PSNR of the exact posterior mean against
    the digit observed and the largest posterior component weight."""
    floors = sample_measures(problem, _exact_draws(problem, n, seed, stream=8), seed)
    return {**floors, "sw": sliced_wasserstein_floor(problem.posterior, n, seed),
            "exact_truth_psnr": _psnr(problem.posterior.mean()[0], problem.x[0]),
            "top_weight": float(problem.posterior.weights.max())}


def evaluate_digits(sampler, problem: MixtureProblem, n: int, steps: int, seed: int = 0, *, name: str,
                    denoiser=None, floors: dict | None = None) -> dict:
    """One row: ``sampler``'s ``n`` samples on ``steps`` EDM levels (the prior's exact denoiser, or
    ``denoiser``), counted (:func:`~scoredae.eval.exact_posterior.run_counted`), and their
    :func:`sample_measures`, the sliced distance also as a ratio to ``floors`` (:func:`exact_floors`,
    computed when not given). A sampler that diverges gets a row saying where, its measures NaN."""
    floors = floors or exact_floors(problem, n, seed)
    result, row = run_counted(sampler, problem, n, steps, seed, name, denoiser)
    if result is None:
        return {**row, "sw_ratio": math.nan}
    samples = (result if isinstance(result, torch.Tensor) else result.samples).to(problem.prior.means)
    measures = sample_measures(problem, samples.reshape(n, -1), seed)
    return {**row, **measures, "sw_ratio": measures["sw"] / floors["sw"]}
