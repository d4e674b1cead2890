r"""The shared machinery of every mixture: Gaussian components of one covariance structure
(:mod:`~scoredae.mixtures.covariance`), their log densities and score, one noised form per level
kept for reuse, and the checks on points."""

from __future__ import annotations

import math

import torch


class _Components:
    r"""Gaussian components :math:`\mathcal N(\mu_k, \Sigma_k)` with means and log weights that may
    carry leading batch dimensions: means ``(..., K, d)``, log weights ``(..., K)``."""

    def __init__(self, log_weights: torch.Tensor, means: torch.Tensor, cov):
        self.log_weights, self.means, self.cov = log_weights, means, cov
        k, d = means.shape[-2:]
        self.shared = means.reshape(k, d) if means.numel() == k * d else None  # one set of means for all points
        self.log_norm = -0.5 * cov.log_det - 0.5 * d * math.log(2 * math.pi)  # (K,)

    def log_joint_and_score(self, x: torch.Tensor):
        r""":math:`\log w_k + \log \mathcal N(x; \mu_k, \Sigma_k)` (..., K) for points x (..., d), and
        ``score(r)``, :math:`-\sum_k r_k \Sigma_k^{-1}(x - \mu_k)` for weights r (..., K)."""
        if self.shared is not None:
            quad, score = self.cov.at_shared_means(x, self.shared)
        else:
            quad, solved = self.cov.quadratic_and_solve(x.unsqueeze(-2) - self.means)

            def score(r):
                return -(r.unsqueeze(-1) * solved).sum(-2)

        return self.log_weights + self.log_norm - 0.5 * quad, score

    def log_joint(self, x: torch.Tensor) -> torch.Tensor:
        return self.log_joint_and_score(x)[0]

    def log_prob_and_score(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        r""":math:`\log p(x)` (...,) and :math:`\nabla \log p(x) = -\sum_k r_k \Sigma_k^{-1}(x - \mu_k)` (..., d)."""
        log_joint, score = self.log_joint_and_score(x)
        return torch.logsumexp(log_joint, dim=-1), score(torch.softmax(log_joint, dim=-1))


class _LevelCache:
    """Terms computed once per key (a noise level), kept until ``limit`` are held, then all dropped:
    64, or fewer where an entry's factors are large, as many as 256 MiB of them hold (two for full
    covariances at K = 25, d = 800, where 64 entries would hold 8 GB)."""

    def __init__(self, cov):
        self.limit = max(1, min(64, 2**28 // max(cov.nbytes, 1)))
        self.entries: dict = {}

    def get(self, key, make):
        if key not in self.entries:
            if len(self.entries) >= self.limit:
                self.entries.clear()
            self.entries[key] = make()
        return self.entries[key]

    def noised(self, sigma: float, weights: torch.Tensor, means: torch.Tensor, cov) -> _Components:
        r"""The components of covariances :math:`\Sigma_k + \sigma^2 I`, once per :math:`\sigma`."""
        return self.get(sigma, lambda: _Components(weights.log(), means, cov.plus(sigma**2)))


def _check_points(x: torch.Tensor, d: int, name: str = "x") -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(x).__name__}")
    if x.ndim != 2 or x.shape[1] != d:
        raise ValueError(f"{name}: expected shape (n, {d}), got {tuple(x.shape)}")
