r"""The exact posterior of a Gaussian mixture prior, one mixture per observation (mean, covariance,
median, mode, samples, evidence), and the quantiles of 1-D mixtures."""

from __future__ import annotations

import torch

from .._checks import finite_number
from .components import _check_points, _Components, _LevelCache
from .covariance import FullCovariance


def mixture_quantile(weights: torch.Tensor, means: torch.Tensor, scales: torch.Tensor, q: float,
                     n_iter: int = 100) -> torch.Tensor:
    r"""The ``q``-quantile of 1-D Gaussian mixtures, the components along the last dimension of
    ``weights``, ``means`` and ``scales`` (broadcasting): the root of
    :math:`F(t) = \sum_k w_k \Phi\big((t - m_k) / s_k\big) = q` by ``n_iter`` bisections, each halving
    the bracket :math:`[\min_k m_k - 12 s_k, \max_k m_k + 12 s_k]`."""
    lo = (means - 12 * scales).amin(-1)
    hi = (means + 12 * scales).amax(-1)
    for _ in range(n_iter):
        mid = (lo + hi) / 2
        below = (weights * torch.special.ndtr((mid[..., None] - means) / scales)).sum(-1) < q
        lo, hi = torch.where(below, mid, lo), torch.where(below, hi, mid)
    return (lo + hi) / 2


class MixturePosterior:
    r"""One Gaussian mixture per observation: weights (n, K), means (n, K, d), a covariance of
    :mod:`~scoredae.mixtures.covariance` shared by all observations (``covs`` its matrices), and the
    log evidence :math:`\log p(y) = \log \sum_k w_k\,
    \mathcal N(y; A \mu_k, A \Sigma_k A^\top + \sigma^2 I)` of each observation (n,)."""

    def __init__(self, weights: torch.Tensor, means: torch.Tensor, covariance,
                 log_evidence: torch.Tensor | None = None):
        self.weights, self.means, self.covariance = weights, means, covariance
        self.log_evidence = log_evidence
        self._noised = _LevelCache(covariance)

    @property
    def covs(self) -> torch.Tensor:
        """The covariance matrices (K, d, d), formed on request."""
        return self.covariance.dense()

    def _components(self, sigma: float) -> _Components:
        r"""The components :math:`\mathcal N(m_k, C_k + \sigma^2 I)`, factorised on first use per level."""
        sigma = finite_number("sigma", sigma, allow_zero=True)
        return self._noised.noised(sigma, self.weights, self.means, self.covariance)

    def log_prob_and_score(self, x: torch.Tensor, sigma: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
        r"""The posterior noised by :math:`\sigma`, :math:`p_\sigma(x \mid y) = \sum_k \pi_k\,
        \mathcal N(x; m_k, C_k + \sigma^2 I)`, each observation's at its own point: its log density
        (n,) and score (n, d) at ``x`` (n, d) (or at every ``x`` for a single observation)."""
        _check_points(x, self.means.shape[-1])
        return self._components(sigma).log_prob_and_score(x)

    def mean(self) -> torch.Tensor:
        r""":math:`\sum_k \pi_k m_k`, shape (n, d): the MMSE estimate."""
        return torch.einsum("nk,nkd->nd", self.weights, self.means)

    def cov(self) -> torch.Tensor:
        r""":math:`\sum_k \pi_k (C_k + m_k m_k^\top) - \bar m \bar m^\top`, shape (n, d, d)."""
        mean = self.mean()
        second = torch.einsum("nk,kde->nde", self.weights, self.covariance.dense())
        second = second + torch.einsum("nk,nkd,nke->nde", self.weights, self.means, self.means)
        return second - mean[:, :, None] * mean[:, None, :]

    def median(self, n_iter: int = 100) -> torch.Tensor:
        r"""The coordinate-wise posterior median, shape (n, d): the minimiser of the expected absolute
        error. Coordinate :math:`j`'s marginal is the 1-D mixture with CDF
        :math:`F_j(t) = \sum_k \pi_k \Phi\big((t - m_{kj}) / \sqrt{C_{kjj}}\big)`; its root of
        :math:`F_j(t) = 1/2` is :func:`mixture_quantile`'s."""
        scale = self.covariance.diagonal().sqrt()  # (K, d)
        # components last: weights (n, 1, K), means (n, d, K), scales (d, K)
        return mixture_quantile(self.weights[:, None], self.means.transpose(1, 2), scale.T, 0.5, n_iter)

    def responsibilities(self, x: torch.Tensor) -> torch.Tensor:
        r"""The component probabilities :math:`\pi_k \mathcal N(x; m_k, C_k) / p(x \mid y)` of each
        point (n, K), each observation's at its own point (or every point's for one observation)."""
        _check_points(x, self.means.shape[-1])
        return torch.softmax(self._components(0.0).log_joint(x), dim=-1)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log density of each observation's posterior at its own point: x (n, d) -> (n,)."""
        return self.log_prob_and_score(x)[0]

    def sample(self, m: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """m draws from each posterior, shape (m, n, d)."""
        if m < 1:
            raise ValueError(f"m must be >= 1, got {m}")
        n, _, d = self.means.shape
        idx = torch.multinomial(self.weights, m, replacement=True, generator=generator).T  # (m, n)
        eps = torch.randn(m, n, d, generator=generator, dtype=self.means.dtype, device=self.means.device)
        rows = torch.arange(n, device=idx.device)
        return self.means[rows, idx] + self.covariance.draw(eps, idx)

    def mode(self, max_iter: int = 500, tol: float = 1e-10) -> torch.Tensor:
        r"""The MAP estimate, shape (n, d): the best of the ascents started from every component mean.

        Each ascent iterates the fixed point of :math:`\nabla \log p = 0` (Carreira-Perpinan 2000,
        "Mode-finding for mixtures of Gaussian distributions", eq. 7),

        .. math::
            x &\leftarrow \Big(\sum_k r_k(x) C_k^{-1}\Big)^{-1} \sum_k r_k(x) C_k^{-1} m_k \\
            &= x + \Big(\sum_k r_k C_k^{-1}\Big)^{-1} \nabla \log p(x),

        a Newton-like step whose curvature is the responsibility-weighted precision; it never
        decreases the density and stops at a stationary point. It forms the :math:`d \times d`
        precisions, for moderate :math:`d`.
        """
        full = FullCovariance(self.covariance.dense())
        # the same components seen from S = K starting points per observation
        comps = _Components(self.weights.log()[:, None], self.means[:, None], full)
        prec = full.precision()  # C_k^{-1}, (K, d, d)
        x = self.means.clone()  # (n, S, d)
        for _ in range(max_iter):
            r = torch.softmax(comps.log_joint(x), dim=-1)  # (n, S, K)
            curvature = torch.einsum("nsk,kde->nsde", r, prec)
            target = torch.einsum("nsk,kde,nke->nsd", r, prec, self.means)
            new = torch.linalg.solve(curvature, target.unsqueeze(-1)).squeeze(-1)
            step = float((new - x).abs().max())
            x = new
            if step <= tol * (1 + float(x.abs().max())):
                break
        best = torch.logsumexp(comps.log_joint(x), dim=-1).argmax(dim=1)  # (n,)
        return x[torch.arange(x.shape[0]), best]
