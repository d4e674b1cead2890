r"""Fitting a mixture of factor analysers to data by expectation-maximisation (Ghahramani & Hinton
1996, "The EM algorithm for mixtures of factor analyzers", with one diagonal :math:`\Psi_k` per
component): :math:`p(x) = \sum_k w_k\, \mathcal N(x; \mu_k, F_k F_k^\top + \Psi_k)`, the latent
model :math:`x = \mu_k + F_k z + e`, :math:`z \sim \mathcal N(0, I_r)`, :math:`e \sim \mathcal N(0, \Psi_k)`.

E-step, per point and component: the responsibility :math:`\rho_{nk} \propto w_k \mathcal N(x_n; \mu_k,
\Sigma_k)` and the latent posterior :math:`z \mid x_n, k \sim \mathcal N(B_k (x_n - \mu_k), G_k)`,
:math:`G_k = (I + F_k^\top \Psi_k^{-1} F_k)^{-1}`, :math:`B_k = G_k F_k^\top \Psi_k^{-1}`. M-step, with
:math:`\tilde F_k = [F_k, \mu_k]` and :math:`\tilde z = [z; 1]` (their eq. 15, means and factors together):

.. math::
    \tilde F_k &= \Big(\sum_n \rho_{nk} x_n \mathbb E[\tilde z]^\top\Big)
                 \Big(\sum_n \rho_{nk} \mathbb E[\tilde z \tilde z^\top]\Big)^{-1}, \\
    \Psi_k &= \operatorname{diag}\Big(\sum_n \rho_{nk} x_n x_n^\top
             - \tilde F_k \sum_n \rho_{nk} \mathbb E[\tilde z] x_n^\top\Big) \Big/ N_k,

:math:`w_k = N_k / N`, :math:`N_k = \sum_n \rho_{nk}`. Every sum is a product of the data with all
components at once, batch by batch: no loop over components in an iteration. The start is
k-means on the data and each cluster's principal axes.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import torch
from tqdm.auto import tqdm

from .._checks import finite, positive_int
from .covariance import LowRank
from .gaussian_mixture import GaussianMixture


@dataclass
class FitResult:
    """A fitted mixture and its course: the mean log-likelihood per point after each iteration."""

    prior: GaussianMixture
    log_likelihood: list[float] = field(default_factory=list)
    converged: bool = False


def _check_data(data: torch.Tensor, n_components: int, rank: int) -> torch.Tensor:
    if not isinstance(data, torch.Tensor) or data.ndim != 2:
        raise ValueError(f"data: expected a tensor of shape (N, d), got {getattr(data, 'shape', type(data).__name__)}")
    finite("data", data)
    positive_int("n_components", n_components)
    positive_int("rank", rank)
    n, d = data.shape
    if n < 2 * n_components:
        raise ValueError(f"n_components: {n_components} components need at least {2 * n_components} points, got {n}")
    if rank >= d:
        raise ValueError(f"rank: expected fewer factors than the dimension d = {d}, got {rank}")
    constant = (data.var(0) == 0).nonzero().flatten()
    if len(constant):
        raise ValueError(f"data: {len(constant)} coordinates are constant (the first: {constant[:5].tolist()}), "
                         "which no density fits; dequantise the data (add uniform noise of one grey level) "
                         "or drop those coordinates")
    return data.to(torch.float64) if data.dtype != torch.float64 else data


def _kmeans(data: torch.Tensor, k: int, iterations: int, generator) -> torch.Tensor:
    """Cluster labels (N,) after Lloyd's iterations from k distinct data points."""
    centres = data[torch.randperm(len(data), generator=generator)[:k]].clone()
    for _ in range(iterations):
        labels = (centres.square().sum(1) - 2 * data @ centres.T).argmin(1)
        counts = torch.bincount(labels, minlength=k).to(data.dtype)
        sums = torch.zeros_like(centres).index_add_(0, labels, data)
        centres = torch.where(counts[:, None] > 0, sums / counts.clamp(min=1)[:, None], centres)
    return labels


def initial_mixture(data: torch.Tensor, n_components: int, rank: int, *, kmeans_iterations: int = 10,
                    min_variance: float = 1e-6, generator: torch.Generator | None = None) -> GaussianMixture:
    r"""The start of EM: k-means clusters, and in each the factor analyser of its principal axes,
    :math:`F = V_r (\Lambda_r - \bar\psi)^{1/2}` and :math:`\Psi` the variance the axes leave."""
    return _initial_mixture(_check_data(data, n_components, rank), n_components, rank, kmeans_iterations,
                            min_variance, generator)


def _initial_mixture(data, n_components, rank, kmeans_iterations, min_variance, generator) -> GaussianMixture:
    """:func:`initial_mixture` on data already checked."""
    labels = _kmeans(data, n_components, kmeans_iterations, generator)
    d = data.shape[1]
    weights = torch.bincount(labels, minlength=n_components).to(data.dtype).clamp(min=1)
    means = torch.zeros(n_components, d, dtype=data.dtype).index_add_(0, labels, data) / weights[:, None]
    covs = torch.stack([torch.cov(data[labels == k].T) if int(weights[k]) > 1 else torch.eye(d, dtype=data.dtype)
                        for k in range(n_components)])  # once, at the start
    values, vectors = torch.linalg.eigh(covs + min_variance * torch.eye(d, dtype=data.dtype))
    top, axes = values[:, -rank:], vectors[:, :, -rank:]
    rest = (values[:, :-rank].sum(1) / (d - rank))[:, None]
    factors = axes * (top - rest).clamp(min=0).sqrt()[:, None, :]
    diagonal = (torch.diagonal(covs, dim1=1, dim2=2) - factors.square().sum(-1)).clamp(min=min_variance)
    return GaussianMixture(weights / weights.sum(), means, LowRank(factors, diagonal))


def _statistics(prior: GaussianMixture, data: torch.Tensor, batch_size: int):
    """One pass of the E-step: the total log-likelihood and the sums of the M-step,
    N_k, sum rho x, sum rho x^2, sum rho x E[z]^T, sum rho E[z], sum rho E[z z^T] - N_k G_k."""
    cov, means = prior.covariance, prior.means
    k, d, r = cov.factors.shape
    gram = torch.eye(r, dtype=data.dtype) + cov.factors.transpose(1, 2) @ (cov.factors / cov.delta[..., None])
    g = torch.linalg.inv(gram)  # G_k
    b = g @ (cov.factors / cov.delta[..., None]).transpose(1, 2)  # B_k (K, r, d)
    flat_b, b_mu = b.reshape(k * r, d), torch.einsum("krd,kd->kr", b, means)
    total, sums, components = 0.0, None, prior._components(0.0)
    for x in data.split(batch_size):
        log_joint = components.log_joint(x)  # (n, K)
        total += float(torch.logsumexp(log_joint, 1).sum())
        rho = torch.softmax(log_joint, 1)
        z = (x @ flat_b.T).reshape(-1, k, r) - b_mu  # E[z | x, k], (n, K, r)
        rz = rho[..., None] * z
        part = (rho.sum(0), rho.T @ x, rho.T @ x.square(), (x.T @ rz.reshape(-1, k * r)).reshape(d, k, r).permute(1, 0, 2),
                rz.sum(0), torch.einsum("nkq,nkp->kqp", rz, z))
        sums = part if sums is None else tuple(a + p for a, p in zip(sums, part))
    return total, sums, g


def _maximise(sums, g: torch.Tensor, n: int, min_variance: float) -> tuple[torch.Tensor, ...]:
    """The M-step of the module docstring: weights, means, factors, diagonals."""
    nk, sx, sxx, sxz, sz, szz = sums
    k, r = sz.shape
    aug_xz = torch.cat([sxz, sx[..., None]], dim=-1)  # (K, d, r + 1)
    aug_zz = torch.zeros(k, r + 1, r + 1, dtype=g.dtype)
    aug_zz[:, :r, :r] = szz + nk[:, None, None] * g
    aug_zz[:, :r, r], aug_zz[:, r, :r], aug_zz[:, r, r] = sz, sz, nk
    loadings = torch.linalg.solve(aug_zz, aug_xz.transpose(1, 2)).transpose(1, 2)  # (K, d, r + 1)
    diagonal = (sxx - (loadings * aug_xz).sum(-1)) / nk[:, None]
    return nk / n, loadings[..., r], loadings[..., :r], diagonal.clamp(min=min_variance)


def fit_factor_analysers(data: torch.Tensor, n_components: int, rank: int, *, iterations: int = 100,
                         tol: float = 1e-4, min_variance: float = 1e-6, batch_size: int = 5000,
                         generator: torch.Generator | None = None, progress: bool = True) -> FitResult:
    r"""A mixture of ``n_components`` factor analysers of rank ``rank`` fitted to ``data`` (N, d) by EM
    (the module docstring), in float64 on the data's device, until the mean log-likelihood per
    point gains less than ``tol`` nats in an iteration or ``iterations`` are done. Variances are
    floored at ``min_variance``. A component whose responsibilities sum to fewer than ``rank + 1``
    points is lost: it keeps its last parameters and a warning names it; so does a fit that stops
    before it converges, or whose likelihood falls (a sign of the floor or of round-off)."""
    data = _check_data(data, n_components, rank)
    positive_int("iterations", iterations)
    prior = _initial_mixture(data, n_components, rank, 10, min_variance, generator).to(data.device)
    result = FitResult(prior)
    bar = tqdm(range(iterations), desc=f"EM, K={n_components} r={rank}", disable=not progress)
    for _ in bar:
        total, sums, g = _statistics(prior, data, batch_size)
        result.log_likelihood.append(total / len(data))
        bar.set_postfix(loglik=f"{result.log_likelihood[-1]:.2f}")
        if len(result.log_likelihood) > 1:
            gain = result.log_likelihood[-1] - result.log_likelihood[-2]
            if gain < -1e-6 * abs(result.log_likelihood[-1]):
                warnings.warn(f"EM: the log-likelihood fell by {-gain:.3g} nats per point", RuntimeWarning, stacklevel=2)
            if abs(gain) < tol:
                result.converged = True
                break
        weights, means, factors, diagonal = _maximise(sums, g, len(data), min_variance)
        lost = sums[0] < rank + 1
        if bool(lost.any()):
            warnings.warn(f"EM lost components {lost.nonzero().flatten().tolist()}: their responsibilities sum to "
                          f"fewer than rank + 1 = {rank + 1} points; they keep their last parameters",
                          RuntimeWarning, stacklevel=2)
            old = prior.covariance
            means = torch.where(lost[:, None], prior.means, means)
            factors = torch.where(lost[:, None, None], old.factors, factors)
            diagonal = torch.where(lost[:, None], old.delta, diagonal)
        prior = GaussianMixture(weights / weights.sum(), means, LowRank(factors, diagonal))
        result.prior = prior
    if not result.converged:
        warnings.warn(f"EM stopped after {iterations} iterations before converging (last gain "
                      f"{result.log_likelihood[-1] - result.log_likelihood[-2] if len(result.log_likelihood) > 1 else math.nan:.3g}"
                      f" nats per point, tol {tol:g})", RuntimeWarning, stacklevel=2)
    return result
