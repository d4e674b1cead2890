r"""How far a learned denoiser or score is from the Bayes-optimal one, against the exact answers of
a Gaussian-mixture prior.

Points are drawn on the prior's device and in its dtype, and passed as they are to the model
(``sigma`` as a float); the model's output is compared in the prior's dtype.
"""

from __future__ import annotations

import torch

from .._checks import positive, positive_int
from ..mixtures import GaussianMixture


def _check(prior: GaussianMixture, sigma: float, n: int) -> None:
    if not isinstance(prior, GaussianMixture):
        raise TypeError(f"prior: expected a GaussianMixture, got {type(prior).__name__}")
    positive("sigma", sigma)
    positive_int("n", n)


@torch.no_grad()
def bayes_gap(denoiser, prior: GaussianMixture, sigma: float, n: int = 100_000,
              generator: torch.Generator | None = None) -> float:
    r"""The denoiser's mean squared error relative to the Bayes (MMSE) error of the prior:

    .. math::
        \frac{\sum_i \lVert D(y_i, \sigma) - x_i \rVert^2}
             {\sum_i \lVert \mathbb E[x \mid y_i] - x_i \rVert^2},
        \qquad x_i \sim p,\ y_i = x_i + \sigma n_i,

    with the exact posterior mean of :meth:`GaussianMixture.posterior
    <scoredae.mixtures.GaussianMixture.posterior>` on the same pairs (common random numbers, so
    the ratio's Monte Carlo error is that of the excess error only). 1.0 is optimal; it is
    :math:`1 + \mathbb E\lVert D - D^*\rVert^2 / \mathrm{MMSE}` in expectation.
    """
    _check(prior, sigma, n)
    x = prior.sample(n, generator=generator)
    y = x + sigma * torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
    mse = (denoiser(y, sigma).to(x.dtype) - x).pow(2).sum()
    mmse = (prior.posterior(y, sigma).mean() - x).pow(2).sum()
    return float(mse / mmse)


@torch.no_grad()
def score_error(score_fn, prior: GaussianMixture, sigma: float, n: int = 100_000,
                generator: torch.Generator | None = None) -> float:
    r"""Relative :math:`L^2(p_\sigma)` error of a score against the exact one:

    .. math::
        \sqrt{\frac{\sum_i \lVert s(\tilde x_i, \sigma) - \nabla \log p_\sigma(\tilde x_i) \rVert^2}
                   {\sum_i \lVert \nabla \log p_\sigma(\tilde x_i) \rVert^2}},
        \qquad \tilde x_i \sim p_\sigma = p * \mathcal N(0, \sigma^2 I).
    """
    _check(prior, sigma, n)
    y = prior.noised(sigma).sample(n, generator=generator)
    exact = prior.score(y, sigma)
    err = (score_fn(y, sigma).to(y.dtype) - exact).pow(2).sum()
    return float((err / exact.pow(2).sum()).sqrt())
