r"""Gaussian mixtures: the prior whose every quantity in the score chain is closed form.

For :math:`p(x) = \sum_k w_k\, \mathcal N(x; \mu_k, \Sigma_k)` in :math:`\mathbb R^d`:

* the noised density :math:`p_\sigma = p * \mathcal N(0, \sigma^2 I)` is the mixture with
  covariances :math:`\Sigma_k + \sigma^2 I`;
* its score is :math:`\nabla \log p_\sigma(x) = -\sum_k r_k(x)\,(\Sigma_k + \sigma^2 I)^{-1}(x - \mu_k)`,
  with responsibilities :math:`r_k(x) \propto w_k\, \mathcal N(x; \mu_k, \Sigma_k + \sigma^2 I)`;
* the posterior of :math:`x` given :math:`y = A x + \sigma n` is again a mixture
  (:class:`MixturePosterior`), and for :math:`A = I` its mean is Tweedie's
  :math:`\mathbb E[x \mid y] = y + \sigma^2 \nabla \log p_\sigma(y)`.

Everything is computed in the log domain with Cholesky factors: with :math:`L_k L_k^\top = \Sigma_k`
and :math:`z_k = L_k^{-1}(x - \mu_k)`,
:math:`\log \mathcal N(x; \mu_k, \Sigma_k) = -\tfrac12 \lVert z_k\rVert^2 - \sum_i \log (L_k)_{ii}
- \tfrac d2 \log 2\pi` and :math:`\Sigma_k^{-1}(x - \mu_k) = L_k^{-\top} z_k`.
"""

from __future__ import annotations

import math

import deepinv
import torch

from ._checks import expand_sigma, finite, finite_number


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


class GaussianMixture:
    r"""The mixture :math:`p(x) = \sum_{k=1}^K w_k\, \mathcal N(x; \mu_k, \Sigma_k)` in :math:`\mathbb R^d`.

    :param weights: (K,) non-negative, summing to 1.
    :param means: (K, d); its dtype and device are those of every result.
    :param covs: (K, d, d) full, (K, d) diagonal, (K,) isotropic variances, or one float.
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
        self.covs = _as_covariances(covs, k, d, means)
        variances = torch.diagonal(self.covs, dim1=-2, dim2=-1)[:, :1]  # (K, 1)
        isotropic = torch.equal(self.covs, variances[:, :, None] * self._eye())
        self._variances = variances[:, 0] if isotropic else None  # c_k when Sigma_k = c_k I
        self._cache = _LevelCache(self.covs)  # sigma -> noised components; ("posterior", sigma) -> conditioning
        self._components(0.0)  # validates the covariances now

    @property
    def dim(self) -> int:
        return self.means.shape[1]

    @property
    def n_components(self) -> int:
        return self.means.shape[0]

    def _eye(self) -> torch.Tensor:
        return torch.eye(self.dim, dtype=self.means.dtype, device=self.means.device)

    def _components(self, sigma: float) -> _Components:
        return self._cache.noised(sigma, self.weights, self.means, self.covs)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n independent draws, shape (n, d)."""
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        idx = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        eps = torch.randn(n, self.dim, generator=generator, dtype=self.means.dtype, device=self.means.device)
        chol = torch.linalg.cholesky(self.covs)
        return self.means[idx] + _correlated(eps, chol, idx)

    def log_prob_and_score(self, x: torch.Tensor, sigma: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
        r"""Both :math:`\log p_\sigma(x)` (n,) and :math:`\nabla_x \log p_\sigma(x)` (n, d), sharing work."""
        _check_points(x, self.dim)
        return self._components(sigma).log_prob_and_score(x)

    def log_prob(self, x: torch.Tensor, sigma: float = 0.0) -> torch.Tensor:
        r""":math:`\log p_\sigma(x) = \operatorname{logsumexp}_k [\log w_k + \log \mathcal N(x; \mu_k,
        \Sigma_k + \sigma^2 I)]`, shape (n,); ``sigma = 0`` is the mixture itself."""
        _check_points(x, self.dim)
        comps = self._components(sigma)
        return torch.logsumexp(comps.log_joint(comps.whiten(x)), dim=-1)

    def score(self, x: torch.Tensor, sigma: float = 0.0) -> torch.Tensor:
        r""":math:`\nabla_x \log p_\sigma(x) = -\sum_k r_k(x) (\Sigma_k + \sigma^2 I)^{-1}(x - \mu_k)`, (n, d)."""
        return self.log_prob_and_score(x, sigma)[1]

    def noised(self, sigma: float) -> GaussianMixture:
        r"""The law of :math:`x + \sigma n`: covariances :math:`\Sigma_k + \sigma^2 I`."""
        sigma = finite_number("sigma", sigma, allow_zero=True)
        return GaussianMixture(self.weights, self.means, self.covs + sigma**2 * self._eye())

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
            terms = self._cache.get(("posterior", sigma), lambda: self._conditioning(sigma, self._eye()))
        else:
            terms = self._conditioning(sigma, A)
        evidence, gain, covs, projected_means = terms
        log_pi = evidence.log_joint(evidence.whiten(y))  # (n, K): log w_k + log N(y; A mu_k, G_k)
        resid = y[:, None, :] - projected_means  # (n, K, m)
        means = self.means + torch.einsum("kdm,nkm->nkd", gain, resid)  # (n, K, d)
        return MixturePosterior(torch.softmax(log_pi, dim=-1), means, covs, torch.logsumexp(log_pi, dim=-1))

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

    def _conditioning(self, sigma: float, A: torch.Tensor):
        """Per-component terms of the posterior that do not depend on y: the evidence components
        N(A mu_k, G_k), the gain Sigma_k A^T G_k^{-1}, the covariances C_k, and A mu_k."""
        sat = self.covs @ A.T  # Sigma_k A^T, (K, d, m)
        gram = A @ sat + sigma**2 * torch.eye(A.shape[0], dtype=A.dtype, device=A.device)  # G_k
        evidence = _Components(self.weights.log(), self.means @ A.T, gram)
        gain = torch.linalg.solve(gram, sat.transpose(-1, -2)).transpose(-1, -2)  # (K, d, m)
        covs = self.covs - gain @ sat.transpose(-1, -2)
        return evidence, gain, 0.5 * (covs + covs.transpose(-1, -2)), self.means @ A.T

    def mmse(self, y: torch.Tensor, sigma: float) -> torch.Tensor:
        r"""The posterior mean :math:`\mathbb E[x \mid y]` for :math:`y = x + \sigma n`, (n, d).

        With isotropic covariances :math:`\Sigma_k = c_k I` it needs no matrix at all:
        :math:`\sum_k r_k(y) \big(\mu_k + \tfrac{c_k}{c_k + \sigma^2} (y - \mu_k)\big)`,
        :math:`r_k \propto w_k (c_k + \sigma^2)^{-d/2} e^{-\lVert y - \mu_k \rVert^2 / 2 (c_k + \sigma^2)}`
        (:math:`O(n K d)` where the general path whitens with :math:`K` factors of size :math:`d \times d`).
        """
        if self._variances is None:
            return self.posterior(y, sigma).mean()
        _check_points(y, self.dim)
        sigma = finite_number("sigma", sigma)
        total = self._variances + sigma**2  # (K,)
        sq = (y[:, None, :] - self.means).square().sum(-1)  # (n, K)
        log_r = self.weights.log() - 0.5 * sq / total - 0.5 * self.dim * total.log()
        shrink = self._variances / total  # (K,)
        r = torch.softmax(log_r, dim=-1)  # (n, K)
        # sum_k r_k (mu_k (1 - shrink_k) + shrink_k y)
        return r @ (self.means * (1 - shrink)[:, None]) + (r @ shrink)[:, None] * y


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
    r"""One Gaussian mixture per observation: weights (n, K), means (n, K, d), covariances (K, d, d)
    shared by all observations, and the log evidence :math:`\log p(y) = \log \sum_k w_k\,
    \mathcal N(y; A \mu_k, A \Sigma_k A^\top + \sigma^2 I)` of each observation (n,)."""

    def __init__(self, weights: torch.Tensor, means: torch.Tensor, covs: torch.Tensor,
                 log_evidence: torch.Tensor | None = None):
        self.weights, self.means, self.covs = weights, means, covs
        self.log_evidence = log_evidence
        self._noised = _LevelCache(covs)

    def _components(self, sigma: float) -> _Components:
        r"""Cholesky factors of the :math:`C_k + \sigma^2 I`, computed on first use per level."""
        return self._noised.noised(sigma, self.weights, self.means, self.covs)

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
        second = torch.einsum("nk,kde->nde", self.weights, self.covs)
        second = second + torch.einsum("nk,nkd,nke->nde", self.weights, self.means, self.means)
        return second - mean[:, :, None] * mean[:, None, :]

    def median(self, n_iter: int = 100) -> torch.Tensor:
        r"""The coordinate-wise posterior median, shape (n, d): the minimiser of the expected absolute
        error. Coordinate :math:`j`'s marginal is the 1-D mixture with CDF
        :math:`F_j(t) = \sum_k \pi_k \Phi\big((t - m_{kj}) / \sqrt{C_{kjj}}\big)`; its root of
        :math:`F_j(t) = 1/2` is :func:`mixture_quantile`'s."""
        scale = torch.diagonal(self.covs, dim1=-2, dim2=-1).sqrt()  # (K, d)
        # components last: weights (n, 1, K), means (n, d, K), scales (d, K)
        return mixture_quantile(self.weights[:, None], self.means.transpose(1, 2), scale.T, 0.5, n_iter)

    def responsibilities(self, x: torch.Tensor) -> torch.Tensor:
        r"""The component probabilities :math:`\pi_k \mathcal N(x; m_k, C_k) / p(x \mid y)` of each
        point (n, K), each observation's at its own point (or every point's for one observation)."""
        _check_points(x, self.means.shape[-1])
        comps = self._components(0.0)
        return torch.softmax(comps.log_joint(comps.whiten(x)), dim=-1)

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
        chol = torch.linalg.cholesky(self.covs)
        rows = torch.arange(n, device=idx.device)
        return self.means[rows, idx] + _correlated(eps, chol, idx)

    def mode(self, max_iter: int = 500, tol: float = 1e-10) -> torch.Tensor:
        r"""The MAP estimate, shape (n, d): the best of the ascents started from every component mean.

        Each ascent iterates the fixed point of :math:`\nabla \log p = 0` (Carreira-Perpinan 2000,
        "Mode-finding for mixtures of Gaussian distributions", eq. 7),

        .. math::
            x &\leftarrow \Big(\sum_k r_k(x) C_k^{-1}\Big)^{-1} \sum_k r_k(x) C_k^{-1} m_k \\
            &= x + \Big(\sum_k r_k C_k^{-1}\Big)^{-1} \nabla \log p(x),

        a Newton-like step whose curvature is the responsibility-weighted precision; it never
        decreases the density and stops at a stationary point.
        """
        # the same components seen from S = K starting points per observation
        comps = _Components(self.weights.log()[:, None], self.means[:, None], self.covs)
        prec = comps.prec_chol.transpose(-1, -2) @ comps.prec_chol  # C_k^{-1}, (K, d, d)
        x = self.means.clone()  # (n, S, d)
        for _ in range(max_iter):
            r = torch.softmax(comps.log_joint(comps.whiten(x)), dim=-1)  # (n, S, K)
            curvature = torch.einsum("nsk,kde->nsde", r, prec)
            target = torch.einsum("nsk,kde,nke->nsd", r, prec, self.means)
            new = torch.linalg.solve(curvature, target.unsqueeze(-1)).squeeze(-1)
            step = float((new - x).abs().max())
            x = new
            if step <= tol * (1 + float(x.abs().max())):
                break
        best = torch.logsumexp(comps.log_joint(comps.whiten(x)), dim=-1).argmax(dim=1)  # (n,)
        return x[torch.arange(x.shape[0]), best]


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
