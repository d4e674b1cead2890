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
    may differ per sample (shape ``(B,)``).
    """

    def __init__(self, mixture: GaussianMixture):
        super().__init__()
        if not isinstance(mixture, GaussianMixture):
            raise TypeError(f"mixture: expected a GaussianMixture, got {type(mixture).__name__}")
        self.mixture = mixture

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
            out = self._mmse_per_row(points, s)
        return out.reshape(x.shape).to(x.dtype)

    def _mmse_per_row(self, y: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        r"""The posterior mean of each row of ``y`` (B, d) at its own level ``s`` (B,):
        :math:`\sum_k r_k(y) \big(\mu_k + \Sigma_k (\Sigma_k + s^2 I)^{-1} (y - \mu_k)\big)`, the
        responsibilities :math:`r_k \propto w_k \mathcal N(y; \mu_k, \Sigma_k + s^2 I)`."""
        m = self.mixture
        cov = m.covs + s[:, None, None, None] ** 2 * torch.eye(m.dim, dtype=y.dtype, device=y.device)  # (B, K, d, d)
        diff = y[:, None, :] - m.means  # (B, K, d)
        solved = torch.linalg.solve(cov, diff[..., None])[..., 0]  # (Sigma_k + s^2 I)^{-1} (y - mu_k)
        log_r = m.weights.log() - 0.5 * (diff * solved).sum(-1) - 0.5 * torch.linalg.slogdet(cov)[1]  # (B, K)
        means = m.means + (m.covs @ solved[..., None])[..., 0]  # (B, K, d)
        return (log_r.softmax(1)[..., None] * means).sum(1)
