r"""Training objectives: the MMSE denoising loss and the score-matching family.

Every loss returns one value per sample, shape ``(B,)``; the caller reduces (as in NVlabs/edm's
``training/loss.py``). Points ``x`` have shape ``(B, *S)``; :math:`d = \prod S`.

A denoiser and a score are two parametrisations of one object (Tweedie's formula,
:math:`D(y, \sigma) = y + \sigma^2 s(y, \sigma)`), and their losses agree: with
:math:`y = x + \sigma n`, :math:`D(y) - x = \sigma^2 (s(y) + n / \sigma)`, so

.. math::
    \texttt{denoising\_loss}(D) = \frac{2 \sigma^2}{d}\, \texttt{dsm\_loss}(s)
    \quad (\lambda(\sigma) = \sigma^2), \qquad
    \texttt{denoising\_loss}(D) = \frac{2}{d}\, \texttt{dsm\_loss}(s) \quad (\lambda(\sigma) = \sigma^4).

Common random numbers: every noisy loss draws its noise level and noise through :func:`perturb`
(first the levels of a range, then ``n``), so equal generator states give equal noisy points in
:func:`denoising_loss`, :func:`l1_denoising_loss`, :func:`dsm_loss` and :func:`esm_loss`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from ._checks import expand_sigma, positive
from .rng import rademacher


def _level_range(sigma_range) -> tuple[float, float]:
    if len(sigma_range) != 2 or not 0 < sigma_range[0] <= sigma_range[1]:
        raise ValueError(f"sigma: expected a range (lo, hi) with 0 < lo <= hi, got {sigma_range}")
    return float(sigma_range[0]), float(sigma_range[1])


def log_uniform_sigmas(n: int, sigma_range, generator: torch.Generator | None = None, *,
                       like: torch.Tensor) -> torch.Tensor:
    r"""``n`` noise levels with :math:`\log \sigma_i \sim \mathcal U(\log lo, \log hi)`, shape ``(n,)``, in the
    dtype and on the device of ``like`` (the continuous version of the geometric levels of Song & Ermon 2019)."""
    lo, hi = _level_range(sigma_range)
    u = torch.rand(n, generator=generator, device=like.device, dtype=like.dtype)
    return torch.exp(math.log(lo) + u * math.log(hi / lo))


def log_normal_sigmas(n: int, mean: float, std: float, sigma_range, generator: torch.Generator | None = None, *,
                      like: torch.Tensor) -> torch.Tensor:
    r"""``n`` noise levels with :math:`\ln \sigma_i \sim \mathcal N(\text{mean}, \text{std}^2)`, clipped to
    ``sigma_range``, shape ``(n,)``: EDM's training distribution (Karras et al. 2022, Table 1:
    :math:`P_{mean} = -1.2`, :math:`P_{std} = 1.2` for images in [-1, 1]), which spends the training on the
    middle levels, where the denoiser's error matters most to a sampler."""
    if not std > 0:
        raise ValueError(f"std: expected a positive standard deviation of ln sigma, got {std}")
    z = torch.randn(n, generator=generator, device=like.device, dtype=like.dtype)
    return torch.exp(mean + std * z).clamp(*_level_range(sigma_range))


def perturb(x: torch.Tensor, sigma, generator: torch.Generator | None = None):
    r"""Noisy points :math:`y = x + \sigma n`, :math:`n \sim \mathcal N(0, I)`, never clamped.

    :param sigma: a float, a tensor of shape ``(B,)``, or a range ``(lo, hi)`` from which one level
        per sample is drawn log-uniformly, :math:`\log \sigma_i \sim \mathcal U(\log lo, \log hi)`
        (the continuous version of the geometric noise levels of Song & Ermon 2019).
    :returns: ``(y, s, n)``: noisy points and noise (shape of ``x``), and the level ``s``
        broadcasting against ``x`` (0-d, or ``(B, 1, ..., 1)``).
    """
    if isinstance(sigma, tuple | list):
        sigma = log_uniform_sigmas(x.shape[0], sigma, generator, like=x)  # (B,)
    s = expand_sigma(sigma, x)
    noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    return torch.addcmul(x, s, noise), s, noise  # x + s * noise in one pass


def model_sigma(s: torch.Tensor) -> torch.Tensor:
    """The level as a model receives it: 0-d, or (B,)."""
    return s.reshape(-1) if s.ndim else s


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


def _residual(denoiser, x: torch.Tensor, sigma, generator) -> torch.Tensor:
    r""":math:`D(x + \sigma n, \sigma) - x` for noise drawn by :func:`perturb`."""
    y, s, _ = perturb(x, sigma, generator)
    return denoiser(y, model_sigma(s)) - x


def denoising_loss(
    denoiser, x: torch.Tensor, sigma, generator: torch.Generator | None = None
) -> torch.Tensor:
    r"""Per-sample MMSE denoising loss, shape ``(B,)``; the caller reduces.

    .. math::
        \ell_i = \frac{1}{d}\,\lVert D(x_i + \sigma_i n_i, \sigma_i) - x_i \rVert^2,
        \qquad n_i \sim \mathcal N(0, I),

    with :math:`d` the number of entries of one sample. Its minimiser over all functions is the
    posterior mean :math:`\mathbb{E}[x \mid y]` (the MMSE estimator). ``sigma`` as in :func:`perturb`.
    """
    return _residual(denoiser, x, sigma, generator).square().flatten(1).mean(1)


def l1_denoising_loss(
    denoiser, x: torch.Tensor, sigma, generator: torch.Generator | None = None
) -> torch.Tensor:
    r"""Per-sample absolute-error denoising loss, shape ``(B,)``:
    :math:`\ell_i = \frac1d \lVert D(x_i + \sigma_i n_i, \sigma_i) - x_i \rVert_1`.

    Its minimiser is the coordinate-wise posterior *median* of :math:`x \mid y`, not the mean, so
    Tweedie's formula does not turn it into a score.
    """
    return _residual(denoiser, x, sigma, generator).abs().flatten(1).mean(1)


def charbonnier_denoising_loss(
    denoiser, x: torch.Tensor, sigma, generator: torch.Generator | None = None, eps: float = 0.01
) -> torch.Tensor:
    r"""Per-sample Charbonnier loss, shape ``(B,)``, with :math:`r = D(x_i + \sigma_i n_i, \sigma_i) - x_i`:
    :math:`\ell_i = \frac1d \sum_j \big(\sqrt{r_j^2 + \varepsilon^2} - \varepsilon\big)`.

    Quadratic for :math:`|r| \ll \varepsilon` and absolute for :math:`|r| \gg \varepsilon`, so its
    minimiser, a smooth M-estimate of location of :math:`x_j \mid y`, lies between the posterior
    median and mean and is neither (unless the posterior is symmetric): not a Tweedie score.
    """
    positive("eps", eps)
    r = _residual(denoiser, x, sigma, generator)
    return (r.square() + eps**2).sqrt().sub(eps).flatten(1).mean(1)


def _differences(r: torch.Tensor) -> list[torch.Tensor]:
    """Forward differences of ``r`` along its spatial axes: the last one of points (B, d), the
    last two of images (B, C, H, W)."""
    axes = (-1,) if r.ndim < 4 else (-2, -1)
    return [r.diff(dim=axis) for axis in axes]


def edge_aware_denoising_loss(
    denoiser, x: torch.Tensor, sigma, generator: torch.Generator | None = None, lam: float = 1.0
) -> torch.Tensor:
    r"""Per-sample squared error plus ``lam`` times the squared error of the image gradients
    (forward differences :math:`\nabla` along the spatial axes), shape ``(B,)``:

    .. math::
        \ell_i = \frac1d \Big(\lVert r \rVert^2 + \lambda \lVert \nabla r \rVert^2\Big)
        = \frac1d\, r^\top (I + \lambda \nabla^\top \nabla)\, r,
        \qquad r = D(x_i + \sigma_i n_i, \sigma_i) - x_i.

    A positive-definite quadratic form of the error: its expected value given :math:`y` is
    :math:`(D - \mathbb E[x|y])^\top A (D - \mathbb E[x|y])` plus a constant, so its minimiser is the
    posterior mean again, whatever :math:`\lambda \ge 0`; the weight on edges changes what a
    network of limited capacity trades off, not the target.
    """
    if not lam >= 0:
        raise ValueError(f"lam: expected a weight >= 0, got {lam}")
    r = _residual(denoiser, x, sigma, generator)
    edges = sum(g.square().flatten(1).sum(1) for g in _differences(r))
    return (r.square().flatten(1).sum(1) + lam * edges) / r[0].numel()


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
    :param sigma: float, tensor ``(B,)`` or range ``(lo, hi)`` (see :func:`perturb`).
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
