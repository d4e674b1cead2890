r"""The shared machinery of every mixture: Gaussian components held by their Cholesky factors, one
factorisation per noise level, kept for reuse, and the checks on covariances and points."""

from __future__ import annotations

import math

import torch

from .._checks import finite, finite_number


class _Components:
    r"""Gaussian components sharing covariances :math:`\Sigma_k = L_k L_k^\top`, with means and log
    weights that may carry leading batch dimensions: means ``(..., K, d)``, log weights ``(..., K)``.
    """

    def __init__(self, log_weights: torch.Tensor, means: torch.Tensor, covs: torch.Tensor):
        chol, info = torch.linalg.cholesky_ex(covs)
        if bool((info != 0).any()):
            raise ValueError("covariances must be symmetric positive-definite (Cholesky failed)")
        k, d = covs.shape[0], covs.shape[-1]
        eye = torch.eye(d, dtype=covs.dtype, device=covs.device).expand(k, d, d)
        self.prec_chol = torch.linalg.solve_triangular(chol, eye, upper=False)  # L_k^{-1}, (K, d, d)
        self.log_norm = -torch.log(torch.diagonal(chol, dim1=-2, dim2=-1)).sum(-1) - 0.5 * d * math.log(
            2 * math.pi
        )  # (K,)
        self.log_weights = log_weights
        self.shift = torch.einsum("ked,...kd->...ke", self.prec_chol, means)  # L_k^{-1} mu_k

    def whiten(self, x: torch.Tensor) -> torch.Tensor:
        """z_k = L_k^{-1}(x - mu_k) for x (..., d): one matmul, shape (..., K, d)."""
        k, d, _ = self.prec_chol.shape
        w = self.prec_chol.reshape(k * d, d).T  # (d, K*d): column block k is L_k^{-T}
        return (x @ w).reshape(*x.shape[:-1], k, d) - self.shift

    def log_joint(self, z: torch.Tensor) -> torch.Tensor:
        """log w_k + log N(x; mu_k, Sigma_k), shape (..., K)."""
        return self.log_weights + self.log_norm - 0.5 * z.pow(2).sum(-1)

    def log_prob_and_score(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """log p(x) (...,) and grad log p(x) (..., d) = -sum_k r_k L_k^{-T} z_k."""
        z = self.whiten(x)
        log_joint = self.log_joint(z)
        log_p = torch.logsumexp(log_joint, dim=-1)
        r = torch.softmax(log_joint, dim=-1)  # responsibilities (..., K)
        k, d, _ = self.prec_chol.shape
        rz = (r.unsqueeze(-1) * z).reshape(*x.shape[:-1], k * d)
        score = -(rz @ self.prec_chol.reshape(k * d, d))
        return log_p, score


class _LevelCache:
    """Terms computed once per key (a noise level), kept until ``limit`` are held, then all dropped:
    64, or fewer where an entry's K factors of d x d are large, as many as 256 MiB of them hold (two
    at K = 25, d = 800, where 64 entries would hold 8 GB)."""

    def __init__(self, covs: torch.Tensor):
        self.limit = max(1, min(64, 2**28 // (covs.numel() * covs.element_size())))
        self.entries: dict = {}

    def get(self, key, make):
        if key not in self.entries:
            if len(self.entries) >= self.limit:
                self.entries.clear()
            self.entries[key] = make()
        return self.entries[key]

    def noised(self, sigma: float, weights: torch.Tensor, means: torch.Tensor, covs: torch.Tensor) -> _Components:
        r"""The components of covariances :math:`\Sigma_k + \sigma^2 I`, once per :math:`\sigma`."""
        sigma = finite_number("sigma", sigma, allow_zero=True)
        eye = torch.eye(covs.shape[-1], dtype=covs.dtype, device=covs.device)
        return self.get(sigma, lambda: _Components(weights.log(), means, covs + sigma**2 * eye))


def _as_covariances(covs, k: int, d: int, like: torch.Tensor) -> torch.Tensor:
    """Full (K, d, d) covariances from full, diagonal (K, d), isotropic (K,) or one float."""
    c = torch.as_tensor(covs, dtype=like.dtype, device=like.device)
    eye = torch.eye(d, dtype=like.dtype, device=like.device)
    if c.ndim == 0:
        c = c * eye.expand(k, d, d)
    elif c.shape == (k,):
        c = c[:, None, None] * eye
    elif c.shape == (k, d):
        c = torch.diag_embed(c)
    elif c.shape != (k, d, d):
        raise ValueError(
            f"covs: expected a float, or shape ({k},), ({k}, {d}) or ({k}, {d}, {d}), "
            f"got {tuple(c.shape)}"
        )
    finite("covs", c)
    if not torch.allclose(c, c.transpose(-1, -2), rtol=1e-6, atol=1e-10):
        raise ValueError("covs: covariance matrices must be symmetric")
    return c


def _correlated(eps: torch.Tensor, chol: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """``L_{idx} eps`` for standard normal draws ``eps`` (..., d), Cholesky factors ``chol`` (K, d, d)
    and component indices ``idx`` (...): one product per component, never the (..., d, d) gather."""
    out = torch.zeros_like(eps)
    for k in range(chol.shape[0]):
        out = torch.where((idx == k)[..., None], eps @ chol[k].T, out)
    return out


def _check_points(x: torch.Tensor, d: int, name: str = "x") -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(x).__name__}")
    if x.ndim != 2 or x.shape[1] != d:
        raise ValueError(f"{name}: expected shape (n, {d}), got {tuple(x.shape)}")
