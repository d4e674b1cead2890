r"""The Gaussian mixture prior: density, score, samples, the noised mixture, the exact posterior of
:math:`y = A x + \sigma n`, the noised likelihood and the MMSE denoiser in closed form."""

from __future__ import annotations

import torch

from .._checks import finite, finite_number
from .components import _check_points, _Components, _LevelCache
from .covariance import as_covariance
from .posterior import MixturePosterior


class GaussianMixture:
    r"""The mixture :math:`p(x) = \sum_{k=1}^K w_k\, \mathcal N(x; \mu_k, \Sigma_k)` in :math:`\mathbb R^d`.

    :param weights: (K,) non-negative, summing to 1.
    :param means: (K, d); its dtype and device are those of every result.
    :param covs: (K, d, d) full, (K, d) diagonal, (K,) isotropic variances, one float, or a
        covariance of :mod:`~scoredae.mixtures.covariance` (factor analysers: :class:`~scoredae.mixtures.LowRank`). Isotropic and diagonal components keep
        their structure (:class:`~scoredae.mixtures.covariance.DiagonalPlusLowRank`): every quantity
        then costs :math:`O(K d)` per point, and a posterior given :math:`m` measurements
        :math:`O(K d m)`, where full matrices cost :math:`O(K d^2)` per point and :math:`O(K d^3)` per level.
    """

    def __init__(self, weights, means, covs):
        means = torch.as_tensor(means)
        if not means.is_floating_point():
            means = means.to(torch.get_default_dtype())
        if means.ndim != 2:
            raise ValueError(f"means: expected shape (K, d), got {tuple(means.shape)}")
        finite("means", means)
        k, d = means.shape
        weights = torch.as_tensor(weights, dtype=means.dtype, device=means.device)
        if weights.shape != (k,):
            raise ValueError(f"weights: expected shape ({k},) to match means, got {tuple(weights.shape)}")
        finite("weights", weights)
        if bool((weights < 0).any()):
            raise ValueError(f"weights must be non-negative, got {weights.tolist()}")
        total = float(weights.sum())
        if abs(total - 1.0) > 1e-5:
            raise ValueError(f"weights must sum to 1, got sum {total:.6g}; divide by their sum")
        self.weights, self.means = weights, means
        self.covariance = as_covariance(covs, k, d, means)
        self._cache = _LevelCache(self.covariance)  # sigma -> noised components; ("posterior", sigma) -> conditioning
        self._components(0.0)  # validates the covariances now

    @property
    def covs(self) -> torch.Tensor:
        """The covariance matrices (K, d, d), formed on request."""
        return self.covariance.dense()

    def to(self, device=None, dtype=None) -> GaussianMixture:
        """The same mixture on ``device`` in ``dtype``, its covariance structure kept."""
        return GaussianMixture(self.weights.to(device, dtype), self.means.to(device, dtype),
                               self.covariance.to(device, dtype))

    @property
    def dim(self) -> int:
        return self.means.shape[1]

    @property
    def n_components(self) -> int:
        return self.means.shape[0]

    def _components(self, sigma: float) -> _Components:
        sigma = finite_number("sigma", sigma, allow_zero=True)
        return self._cache.noised(sigma, self.weights, self.means, self.covariance)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n independent draws, shape (n, d)."""
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        idx = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        eps = torch.randn(n, self.dim, generator=generator, dtype=self.means.dtype, device=self.means.device)
        return self.means[idx] + self.covariance.draw(eps, idx)

    def log_prob_and_score(self, x: torch.Tensor, sigma: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
        r"""Both :math:`\log p_\sigma(x)` (n,) and :math:`\nabla_x \log p_\sigma(x)` (n, d), sharing work."""
        _check_points(x, self.dim)
        return self._components(sigma).log_prob_and_score(x)

    def log_prob(self, x: torch.Tensor, sigma: float = 0.0) -> torch.Tensor:
        r""":math:`\log p_\sigma(x) = \operatorname{logsumexp}_k [\log w_k + \log \mathcal N(x; \mu_k,
        \Sigma_k + \sigma^2 I)]`, shape (n,); ``sigma = 0`` is the mixture itself."""
        _check_points(x, self.dim)
        return torch.logsumexp(self._components(sigma).log_joint(x), dim=-1)

    def score(self, x: torch.Tensor, sigma: float = 0.0) -> torch.Tensor:
        r""":math:`\nabla_x \log p_\sigma(x) = -\sum_k r_k(x) (\Sigma_k + \sigma^2 I)^{-1}(x - \mu_k)`, (n, d)."""
        return self.log_prob_and_score(x, sigma)[1]

    def noised(self, sigma: float) -> GaussianMixture:
        r"""The law of :math:`x + \sigma n`: covariances :math:`\Sigma_k + \sigma^2 I`."""
        sigma = finite_number("sigma", sigma, allow_zero=True)
        return GaussianMixture(self.weights, self.means, self.covariance.plus(sigma**2))

    def posterior(self, y: torch.Tensor, sigma: float, A: torch.Tensor | None = None) -> MixturePosterior:
        r"""Exact posterior of :math:`x` for each observation of :math:`y = A x + \sigma n`.

        Per component (Kalman / Woodbury form, with :math:`G_k = A \Sigma_k A^\top + \sigma^2 I`):

        .. math::
            C_k &= \Sigma_k - \Sigma_k A^\top G_k^{-1} A \Sigma_k, \\
            m_k(y) &= \mu_k + \Sigma_k A^\top G_k^{-1} (y - A \mu_k), \\
            \pi_k(y) &\propto w_k\, \mathcal N(y; A \mu_k, G_k).

        :param y: observations (n, m).
        :param sigma: noise level, > 0.
        :param A: (m, d) forward matrix; the identity when None.
        """
        sigma = finite_number("sigma", sigma)
        if A is not None:
            A = torch.as_tensor(A, dtype=self.means.dtype, device=self.means.device)
            if A.ndim != 2 or A.shape[1] != self.dim:
                raise ValueError(f"A: expected shape (m, {self.dim}), got {tuple(A.shape)}")
        _check_points(y, self.dim if A is None else A.shape[0], "y")
        if A is None:  # denoising: the terms depend on sigma only, so they are kept per sigma
            terms = self._cache.get(("posterior", sigma), lambda: self._conditioning(sigma, None))
        else:
            terms = self._conditioning(sigma, A)
        evidence, gain, covariance = terms
        log_pi = evidence.log_joint(y)  # (n, K): log w_k + log N(y; A mu_k, G_k)
        means = self.means + gain(y[:, None, :] - evidence.means)  # (n, K, d)
        return MixturePosterior(torch.softmax(log_pi, dim=-1), means, covariance, torch.logsumexp(log_pi, dim=-1))

    def noised_likelihood(self, x: torch.Tensor, sigma: float, y: torch.Tensor, noise_sigma: float,
                          A: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        r"""The exact noised likelihood :math:`\log p(y \mid x_\sigma)` (n,) of :math:`y = A x_0 +
        \sigma_y n` given :math:`x_\sigma = x_0 + \sigma n'`, and its gradient in :math:`x_\sigma`
        (n, d): the guidance term every diffusion posterior sampler approximates.

        Bayes' rule along the diffusion, :math:`p(y \mid x_\sigma) = p_\sigma(x_\sigma \mid y)\,
        p(y) / p_\sigma(x_\sigma)`, where :math:`p_\sigma(\cdot \mid y)` is the exact posterior
        (:meth:`posterior`) noised by :math:`\sigma` (:meth:`MixturePosterior.log_prob_and_score`),
        gives both in closed form:

        .. math::
            \log p(y \mid x_\sigma) &= \log p_\sigma(x_\sigma \mid y) + \log p(y)
            - \log p_\sigma(x_\sigma), \\
            \nabla_{x_\sigma} \log p(y \mid x_\sigma) &= \nabla \log p_\sigma(x_\sigma \mid y)
            - \nabla \log p_\sigma(x_\sigma).

        :param x: points :math:`x_\sigma` (n, d); :param sigma: their level :math:`\sigma \ge 0`.
        :param y: observations (n, m), one per point, or (1, m) for all.
        """
        _check_points(x, self.dim)
        posterior = self.posterior(y, noise_sigma, A)
        if posterior.weights.shape[0] not in (1, x.shape[0]):
            raise ValueError(f"y: expected one observation per point ({x.shape[0]}) or one for all, "
                             f"got {posterior.weights.shape[0]}")
        log_post, grad_post = posterior.log_prob_and_score(x, sigma)
        log_prior, grad_prior = self.log_prob_and_score(x, sigma)
        return log_post + posterior.log_evidence - log_prior, grad_post - grad_prior

    def _conditioning(self, sigma: float, A: torch.Tensor | None):
        """Per-component terms of the posterior that do not depend on y: the evidence components
        N(A mu_k, G_k), the gain r -> Sigma_k A^T G_k^{-1} r, and the posterior covariance."""
        gram, gain, covariance = self.covariance.condition(A, sigma)
        projected = self.means if A is None else self.means @ A.T
        return _Components(self.weights.log(), projected, gram), gain, covariance

    def mmse(self, y: torch.Tensor, sigma: float) -> torch.Tensor:
        r"""The posterior mean :math:`\mathbb E[x \mid y]` for :math:`y = x + \sigma n`, (n, d), by
        Tweedie's formula :math:`y + \sigma^2 \nabla \log p_\sigma(y)`, which is
        :math:`\sum_k r_k(y) \big(\mu_k + \Sigma_k (\Sigma_k + \sigma^2 I)^{-1} (y - \mu_k)\big)`
        written with one solve per component: :math:`O(n K d)` for isotropic or diagonal components."""
        _check_points(y, self.dim)
        sigma = finite_number("sigma", sigma)
        return y + sigma**2 * self._components(sigma).log_prob_and_score(y)[1]

    def mmse_per_row(self, y: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        r"""The posterior mean of each row of ``y`` (n, d) at its own level ``sigma`` (n,), all
        rows at once through the spectra :math:`\Sigma_k = V_k \Lambda_k V_k^\top` (one
        eigendecomposition per mixture): with :math:`z_k = V_k^\top (y - \mu_k)`,

        .. math::
            \log r_k(y) &= \log w_k - \tfrac12 \textstyle\sum_i \big(z_{k,i}^2 / (\lambda_{k,i} + \sigma^2)
            + \log (\lambda_{k,i} + \sigma^2)\big) + c, \\
            \mathbb E[x \mid y] &= \textstyle\sum_k r_k(y) \big(\mu_k + V_k\, \tfrac{\Lambda_k}{\Lambda_k + \sigma^2}\, z_k\big).

        Where the K spectra would take more than 256 MiB, one :meth:`mmse` per distinct level instead."""
        _check_points(y, self.dim)
        sigma = torch.as_tensor(sigma, dtype=y.dtype, device=y.device)
        if sigma.shape != (y.shape[0],) or not bool((sigma > 0).all()):
            raise ValueError(f"sigma: expected ({y.shape[0]},) positive levels, got {tuple(sigma.shape)}")
        k, d = self.means.shape
        if k * d * d * self.means.element_size() > 2**28:
            out = torch.empty_like(y)
            for level in torch.unique(sigma):
                rows = sigma == level
                out[rows] = self.mmse(y[rows], float(level))
            return out
        lam, vec = self._cache.get("spectra", lambda: torch.linalg.eigh(self.covariance.dense()))  # (K, d), (K, d, d)
        noised = lam.clamp_min(0) + sigma.square()[:, None, None]  # (n, K, d)
        z = torch.einsum("kji,nkj->nki", vec, y[:, None, :] - self.means)  # (n, K, d)
        log_joint = self.weights.log() - 0.5 * (z.square() / noised + noised.log()).sum(-1)
        shrunk = torch.einsum("kij,nkj->nki", vec, lam.clamp_min(0) / noised * z)  # (n, K, d)
        return torch.einsum("nk,nki->ni", torch.softmax(log_joint, -1), self.means + shrunk)
