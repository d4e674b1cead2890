r"""Score matching: denoising (DSM), explicit (ESM), implicit (ISM, exact trace or Hutchinson) and
sliced (SSM), each per sample ``(B,)``, weighted by :math:`\lambda(\sigma)` where the level varies."""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..rng import rademacher
from .noise import model_sigma, perturb


def _weight(weighting, s: torch.Tensor) -> torch.Tensor:
    r""":math:`\lambda(\sigma)` per sample, shape (B,) or 0-d."""
    s = model_sigma(s)
    if callable(weighting):
        return weighting(s)
    if weighting == "sigma2":
        return s**2
    if weighting == "none":
        return torch.ones_like(s)
    raise ValueError(f"weighting: expected 'sigma2', 'none' or a callable lambda(sigma), got {weighting!r}")


def _sq_norm(v: torch.Tensor) -> torch.Tensor:
    """Squared norm of each sample: (B, *S) -> (B,)."""
    return v.pow(2).flatten(1).sum(1)


def dsm_loss(
    score_model, x: torch.Tensor, sigma, generator: torch.Generator | None = None, weighting="sigma2"
) -> torch.Tensor:
    r"""Per-sample denoising score matching loss (Vincent 2010, eq. 11; Song & Ermon 2019, eq. 2):

    .. math::
        \ell_i = \frac{\lambda(\sigma_i)}{2}\,
        \Big\lVert s_\theta(\tilde x_i, \sigma_i) + \frac{n_i}{\sigma_i} \Big\rVert^2,
        \qquad \tilde x_i = x_i + \sigma_i n_i,

    since :math:`\nabla_{\tilde x} \log \mathcal N(\tilde x; x, \sigma^2 I) = -n / \sigma`. The norm
    sums over all :math:`d` entries. Its expectation differs from :func:`esm_loss`'s by
    :math:`\frac{\lambda}{2}\big(d/\sigma^2 - \mathbb E\lVert\nabla \log p_\sigma(\tilde x)\rVert^2\big)`,
    independent of :math:`\theta`.

    :param score_model: ``s(x_noisy, sigma)``, noise-conditional.
    :param sigma: float, tensor ``(B,)`` or range ``(lo, hi)`` (see :func:`~scoredae.objectives.noise.perturb`).
    :param weighting: ``"sigma2"`` for :math:`\lambda(\sigma) = \sigma^2` (Song & Ermon 2019, which
        makes every level's loss :math:`\frac12 \lVert \sigma s_\theta + n \rVert^2` of order one),
        ``"none"`` for :math:`\lambda = 1`, or a callable ``lambda(sigma)``.
    """
    y, s, noise = perturb(x, sigma, generator)
    return 0.5 * _weight(weighting, s) * _sq_norm(score_model(y, model_sigma(s)) + noise / s)


def esm_loss(
    score_model,
    target_score,
    x: torch.Tensor,
    sigma,
    generator: torch.Generator | None = None,
    weighting="sigma2",
) -> torch.Tensor:
    r"""Per-sample explicit score matching loss against a known score (Hyvarinen 2005, eq. 2):

    .. math::
        \ell_i = \frac{\lambda(\sigma_i)}{2}\,
        \big\lVert s_\theta(\tilde x_i, \sigma_i) - \nabla \log p_{\sigma_i}(\tilde x_i) \big\rVert^2,
        \qquad \tilde x_i = x_i + \sigma_i n_i \sim p_{\sigma_i},

    with :math:`\nabla \log p_\sigma` = ``target_score(x_noisy, sigma)``, e.g.
    :meth:`GaussianMixture.score <scoredae.mixtures.GaussianMixture.score>` (which takes one
    float level). ``sigma``, ``generator`` and ``weighting`` as in :func:`dsm_loss`.
    """
    y, s, _ = perturb(x, sigma, generator)
    sig = model_sigma(s)
    target = target_score(y, sig).detach()
    return 0.5 * _weight(weighting, s) * _sq_norm(score_model(y, sig) - target)


def _score_and_input(score_fn, x: torch.Tensor):
    """x as a leaf that requires grad, and s(x); the graph is kept for a loss that is trained."""
    x = x.detach().requires_grad_(True)
    return x, score_fn(x)


def _quadratic_forms(score: torch.Tensor, x: torch.Tensor, probes: torch.Tensor) -> torch.Tensor:
    r""":math:`v_m^\top \nabla_x s(x)\, v_m` for probes (M, B, *S): shape (M, B), from the M
    vector-Jacobian products :math:`v_m^\top \nabla_x s` batched in one backward pass."""
    (vjps,) = torch.autograd.grad(score, x, grad_outputs=probes, is_grads_batched=True, create_graph=True)
    return (vjps * probes).flatten(2).sum(2)


def _exact_trace(score: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    r""":math:`\operatorname{tr} \nabla_x s(x) = \sum_{j=1}^d e_j^\top \nabla_x s\, e_j`, shape (B,)."""
    b, d = x.shape[0], x[0].numel()
    basis = torch.eye(d, dtype=x.dtype, device=x.device)[:, None, :].expand(d, b, d)  # e_j per sample
    return _quadratic_forms(score, x, basis.reshape(d, *x.shape)).sum(0)


def _probes(x: torch.Tensor, n: int, kind: str, generator) -> torch.Tensor:
    """n probe vectors per sample with E[v v^T] = I: (n, B, *S), Rademacher or Gaussian."""
    if kind == "rademacher":
        return rademacher(n, x, generator)
    return torch.randn((n, *x.shape), generator=generator, device=x.device, dtype=x.dtype)


def ism_loss(
    score_fn: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    estimator: str = "exact",
    n_probes: int = 1,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""Per-sample implicit score matching loss (Hyvarinen 2005, eq. 4 / Theorem 1):

    .. math::
        \ell_i = \operatorname{tr} \nabla_x s_\theta(x_i) + \frac12 \lVert s_\theta(x_i) \rVert^2,
        \qquad \mathbb E_p[\ell] = \tfrac12 \mathbb E_p \lVert s_\theta - \nabla \log p \rVert^2
        - \tfrac12 \mathbb E_p \lVert \nabla \log p \rVert^2.

    :param score_fn: ``s(x)`` of the data's density; for a noise-conditional model fitted to
        :math:`p_\sigma`, pass noisy points and ``lambda y: model.score(y, sigma)``.
    :param estimator: ``"exact"``: the trace from the :math:`d` rows of the Jacobian, one batched
        backward pass of :math:`d` vector-Jacobian products (small :math:`d`);
        ``"hutchinson"``: :math:`\frac1M \sum_m v_m^\top \nabla_x s\, v_m` with :math:`M` =
        ``n_probes`` Rademacher vectors (Hutchinson 1989), unbiased, cost independent of :math:`d`.
    """
    if estimator not in ("exact", "hutchinson"):
        raise ValueError(f"estimator: expected 'exact' or 'hutchinson', got {estimator!r}")
    if n_probes < 1:
        raise ValueError(f"n_probes must be >= 1, got {n_probes}")
    x, score = _score_and_input(score_fn, x)
    if estimator == "exact":
        trace = _exact_trace(score, x)
    else:
        trace = _quadratic_forms(score, x, _probes(x, n_probes, "rademacher", generator)).mean(0)
    return trace + 0.5 * _sq_norm(score)


def ssm_loss(
    score_fn: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    n_projections: int = 1,
    variance_reduction: bool = True,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""Per-sample sliced score matching loss (Song, Garg, Shi & Ermon 2019, eq. 7 and SSM-VR eq. 8),
    with :math:`M` = ``n_projections`` Gaussian projections :math:`v_m \sim \mathcal N(0, I)`:

    .. math::
        \ell_i = \frac1M \sum_m \Big[ v_m^\top \nabla_x s_\theta(x_i)\, v_m
        + \tfrac12 \big(v_m^\top s_\theta(x_i)\big)^2 \Big]
        \quad\text{or, variance-reduced,}\quad
        \frac1M \sum_m v_m^\top \nabla_x s_\theta(x_i)\, v_m + \tfrac12 \lVert s_\theta(x_i) \rVert^2.

    As :math:`\mathbb E[v v^\top] = I`, both have the expectation of :func:`ism_loss`.
    """
    if n_projections < 1:
        raise ValueError(f"n_projections must be >= 1, got {n_projections}")
    x, score = _score_and_input(score_fn, x)
    probes = _probes(x, n_projections, "gaussian", generator)  # (M, B, *S)
    trace = _quadratic_forms(score, x, probes).mean(0)
    if variance_reduction:
        return trace + 0.5 * _sq_norm(score)
    projected = (probes * score).flatten(2).sum(2)  # v_m^T s, (M, B)
    return trace + 0.5 * projected.pow(2).mean(0)
