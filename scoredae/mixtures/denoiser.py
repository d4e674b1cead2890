r"""The exact MMSE denoiser of a Gaussian mixture prior as a :class:`deepinv.models.Denoiser`."""

from __future__ import annotations

import math

import deepinv
import torch

from .._checks import expand_sigma
from .gaussian_mixture import GaussianMixture


class MixtureDenoiser(deepinv.models.Denoiser):
    r"""The exact MMSE denoiser :math:`D(y, \sigma) = \mathbb E[x \mid y = x + \sigma n]` of a
    :class:`GaussianMixture` prior, as a :class:`deepinv.models.Denoiser`.

    Accepts ``x`` of shape ``(B, *S)`` with :math:`\prod S = d` (points, or images flattened to
    ``d`` pixels), so ``deepinv.optim.ScorePrior(MixtureDenoiser(gm))`` works unchanged. ``sigma``
    may differ per sample (shape ``(B,)``). Exact at every level, it declares ``sigma_range``, the
    levels the recipes and the command line sample over (EDM's by default), as the networks do.
    """

    noise_conditional = True
    label_conditional = False

    def __init__(self, mixture: GaussianMixture, sigma_range: tuple[float, float] = (0.002, 80.0)):
        super().__init__()
        if not isinstance(mixture, GaussianMixture):
            raise TypeError(f"mixture: expected a GaussianMixture, got {type(mixture).__name__}")
        self.mixture = mixture
        self.sigma_range = sigma_range

    def forward(self, x: torch.Tensor, sigma, **kwargs) -> torch.Tensor:
        d = self.mixture.dim
        if x.ndim < 2 or math.prod(x.shape[1:]) != d:
            raise ValueError(f"x: expected shape (B, *S) with prod(S) = {d}, got {tuple(x.shape)}")
        points = x.reshape(x.shape[0], d).to(self.mixture.means.dtype)  # (B, d)
        s = expand_sigma(sigma, points).reshape(-1).expand(x.shape[0])  # (B,)
        levels = torch.unique(s)
        if len(levels) == 1:
            out = self.mixture.mmse(points, float(levels[0]))
        else:
            out = self.mixture.mmse_per_row(points, s)
        return out.reshape(x.shape).to(x.dtype)
