r"""Particle filters in the spectral domain of the operator: MCGdiff (Cardoso et al., ICLR 2024,
"Monte Carlo guided diffusion for Bayesian linear inverse problems") and FPS (Dou & Song, ICLR
2024, "Diffusion posterior sampling for linear inverse problem solving: a filtering perspective").

With :math:`A = U \operatorname{diag}(s) V^\top`, :math:`\bar x = V^\top x` and, on the coordinates
:math:`A` sees (:math:`s_j > 0`), :math:`\bar y_j = (U^\top y)_j / s_j`, the observation is
:math:`\bar y_j = \bar x_j + \nu_j n_j` with :math:`\nu_j = \sigma_y / s_j`: each seen coordinate is
observed through its own Gaussian noise. Under the variance-exploding noising
:math:`x_\sigma = x + \sigma n`, coordinates of :math:`\bar x` are noised independently, which
both methods use. The particles :math:`x^{1..P}` follow the diffusion's ancestral kernel
:math:`p(x' \mid x) = \mathcal N(\mu, \tau^2 I)` from level :math:`\sigma` to :math:`\sigma'`,
:math:`\mu = D + (\sigma'^2 / \sigma^2)(x - D)`, :math:`\tau^2 = \sigma'^2 (1 - \sigma'^2 / \sigma^2)`,
weighted by a Gaussian potential of the seen coordinates at each level,

.. math::
    g_\sigma(x) = \prod_{j:\, s_j > 0} \mathcal N\big(\bar x_j;\, c_j(\sigma),\, v_j(\sigma)\big).

Every step is the fully adapted auxiliary particle filter: the particles are resampled by
:math:`w = \int p(x' \mid x)\, g_{\sigma'}(x')\, dx' / g_\sigma(x)^{[\text{twisted}]}`, a Gaussian
:math:`\prod_j \mathcal N(\bar\mu_j; c_j', \tau^2 + v_j')`, then moved by the product of the kernel
and the potential, coordinate by coordinate,

.. math::
    \bar x'_j = \bar\mu_j + K_j (c'_j - \bar\mu_j) + \sqrt{\tau^2 (1 - K_j)}\, z_j, \qquad
    K_j = \frac{\tau^2}{\tau^2 + v'_j},

:math:`K_j = 0` where :math:`s_j = 0`. What the particles target depends on the
potentials: MCGdiff's make it the prior conditioned on its own noised coordinates, the posterior
when the model is exact, and the product of the mean weights, times :math:`\prod_j s_j^{-1}` and the
density of the part of :math:`y` outside the range of :math:`A`, its evidence :math:`p(y)`; FPS's
count the observation at every level (see :func:`fps`). One
denoiser call per level; no Jacobian products.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import torch

from ..rng import randn
from ..sampling.loop import LoopSpec, SamplerResult, run_chain
from .inputs import posterior_inputs
from .operators import spectral_observation
from .particles import (
    check_resample_below,
    finish_particles,
    importance_effective_size,
    log_mean_exp,
    shared_observation,
    systematic_indices,
)


class FilterState(NamedTuple):
    r"""The particle filter beside ``x``: the log weights before the next resampling (P,); the
    running estimate of :math:`\log p(y)`; the effective sample size of each level's weights (N,);
    the centre :math:`c(\sigma)` of the current level's potential (one, shared by the particles)."""

    log_weights: torch.Tensor
    log_evidence: torch.Tensor
    ess: torch.Tensor
    center: torch.Tensor


def _log_normal(r: torch.Tensor, variance: torch.Tensor, seen: torch.Tensor) -> torch.Tensor:
    """Sum over the seen coordinates of log N(r; 0, variance), per particle (P,)."""
    terms = -0.5 * r.square() / variance - 0.5 * torch.log(2 * math.pi * variance)
    return torch.where(seen, terms, 0).reshape(r.shape[0], -1).sum(1)


def _observation_constant(op, y: torch.Tensor, noise_sigma: float, seen: torch.Tensor,
                          like: torch.Tensor) -> torch.Tensor:
    r""":math:`\log p(y \mid x) - \sum_j \log \mathcal N(\bar y_j; \bar x_j, \nu_j^2)`: the Jacobian
    :math:`-\sum_j \log s_j` of the seen coordinates and, with :math:`\sigma_y > 0`, the density of the
    :math:`m - r` coordinates of :math:`U^\top y` that :math:`A` cannot reach (``like`` one spectral
    particle, for the shape)."""
    seen = seen.expand_as(like)
    s = torch.as_tensor(op.svd()[3]).to(like)
    constant = -torch.where(seen, s.abs(), 1).expand_as(like).log().sum()
    if noise_sigma > 0:
        reached = torch.where(seen, op.svd()[2](y[:1]), 0).square().sum()
        outside = (y[:1].square().sum() - reached).clamp(min=0)
        unreached = y[0].numel() - int(seen.sum())
        constant = constant - outside / (2 * noise_sigma**2) - 0.5 * unreached * math.log(2 * math.pi * noise_sigma**2)
    return constant


def _spectral_filter(denoiser, y, op, noise_sigma: float, x_T: torch.Tensor, levels: list[float], method: str, *,
                     potential: Callable, twisted: bool, path: bool, resample_below: float, generator,
                     loop: dict) -> SamplerResult:
    r"""The filter of the module docstring. ``potential(i)`` gives the variances :math:`v(\sigma_i)` of
    the seen coordinates and where the potential acts (a variance 0 pins the coordinate to its
    centre); ``twisted`` divides each weight by the previous potential (MCGdiff: only the last
    potential is the likelihood); ``path`` draws the centres along a noised observation path (FPS)
    rather than keeping :math:`\bar y`."""
    n = shared_observation(y, x_T)
    check_resample_below(resample_below)
    v_adjoint, v, seen, y_bar, _ = spectral_observation(op, y[:1], noise_sigma, x_T)
    x_bar = v_adjoint(x_T)

    def draw(shape):
        return randn(shape, generator, dtype=x_T.dtype, device=x_T.device)

    def log_potential(r, i, divide=False):  # log g at level i; to divide by, the unpinned coordinates only
        variance, acts = potential(i)
        return _log_normal(r, variance, acts & (variance > 0) if divide else acts)

    center, log_evidence = y_bar, _observation_constant(op, y, noise_sigma, seen, x_bar[:1])
    n_seen = int(seen.expand_as(y_bar).sum())
    if path:  # the path starts where the first particle is; every particle's seen coordinates with it
        center = torch.where(seen, x_bar[:1], 0)
        x_bar = torch.where(seen, center, x_bar)
        x_T = v(x_bar)
        log_evidence = log_evidence - _log_normal(center - y_bar, torch.full_like(y_bar, levels[0] ** 2), seen)[0]

    def step(x, state: FilterState, i):
        sigma, sigma_next = levels[i - 1], levels[i]
        ratio = sigma_next**2 / sigma**2
        tau2 = sigma_next**2 * (1 - ratio)
        denoised = denoiser(x, sigma)
        mu = v_adjoint(denoised + ratio * (x - denoised))
        center, log_z = state.center, state.log_evidence
        if path:  # the observation path's own ancestral step, one draw z for all particles
            z = torch.where(seen, draw(y_bar.shape), 0)
            center = y_bar + ratio * (center - y_bar) + math.sqrt(tau2) * z
            if tau2 > 0:  # minus the log density of the step drawn, N(sqrt(tau2) z; 0, tau2) on the seen part
                log_z = log_z + 0.5 * z.square().sum() + 0.5 * n_seen * math.log(2 * math.pi * tau2)
        variance, acts = potential(i)
        log_w = state.log_weights + _log_normal(mu - center, tau2 + variance, acts)
        if twisted:
            log_w = log_w - log_potential(v_adjoint(x) - state.center, i - 1, divide=True)
        ess = state.ess.clone()
        ess[i - 1] = importance_effective_size(log_w)
        need = ess[i - 1] < resample_below * n  # decided on the device, no sync
        mu = mu[torch.where(need, systematic_indices(log_w, generator), torch.arange(n, device=x.device))]
        log_z = log_z + torch.where(need, log_mean_exp(log_w), 0.0)
        gain = torch.where(acts, tau2 / (tau2 + variance), 0)
        x_bar = mu + gain * (center - mu) + (tau2 * (1 - gain)).sqrt() * draw(mu.shape)
        return v(x_bar), FilterState(torch.where(need, 0.0, log_w), log_z, ess, center)

    state = FilterState(log_potential(x_bar - center, 0, divide=True),  # the first potential (twisted: cancels)
                        log_evidence, x_T.new_zeros(len(levels) - 1), center)
    spec = LoopSpec(method, level_of=lambda i: levels[i - 1], stationary=False)
    result = run_chain(step, x_T, state, len(levels) - 1, spec, **loop)
    return finish_particles(result, levels, generator, method)


def _pin_levels(nu: torch.Tensor, seen: torch.Tensor, levels: list[float], pin: str) -> tuple[list[float], torch.Tensor]:
    r"""The levels with each seen coordinate's :math:`\nu_j` inserted (``pin="insert"``; kept from
    the first level down to the last level above 0) or as they are (``"nearest"``), and the index of
    the level that pins each coordinate: :math:`\nu_j` itself, or the nearest level above 0."""
    positive = levels[:-1]
    loudest = float(torch.where(seen, nu, 0).max())
    if loudest >= positive[0]:
        raise ValueError(f"sigmas: the observation's noise on a spectral coordinate, sigma_y / s_j = {loudest:.3g}, "
                         f"is not below the first level {positive[0]:.3g}; start the levels above it")
    if pin == "insert":
        noise = {float(v) for v in nu[seen.expand_as(nu)].unique() if 0 < float(v) < positive[0]}
        levels = sorted(set(levels) | noise, reverse=True)
        positive = levels[:-1]
    table = torch.tensor(positive, dtype=nu.dtype, device=nu.device)
    index = (table - nu.unsqueeze(-1)).abs().argmin(-1)
    return levels, torch.where(seen, index, len(levels))


@torch.no_grad()
def mcgdiff(denoiser, y, forward, noise_sigma: float, x_T: torch.Tensor, sigmas, *, pin: str = "insert",
            resample_below: float = 0.5, generator: torch.Generator | None = None, progress: bool = False,
            record_every: int | None = None, callback: Callable | None = None, max_norm: float | None = None) -> SamplerResult:
    r"""Monte Carlo guided diffusion (Cardoso et al. 2024, Algorithm 1 and its noisy extension, their
    section 3.2), the filter of the module docstring with the twisted potential

    .. math::
        c_j(\sigma) = \bar y_j, \qquad v_j(\sigma) = \sigma^2 - \lambda_j^2 \quad (\sigma \ge \lambda_j),

    and none below :math:`\lambda_j`. The observation *is* the coordinate noised to
    :math:`\nu_j = \sigma_y / s_j`: the posterior is the prior conditioned on
    :math:`\bar x_{\nu_j, j} = \bar y_j`. So above its level the coordinate is drawn towards
    :math:`\bar y_j` with the law of the forward noising from it, at :math:`\lambda_j = \nu_j` it is
    pinned to :math:`\bar y_j` (weight: the kernel's density there), and below it the diffusion moves
    it freely. With ``pin="insert"`` (the default) the levels :math:`\nu_j` are added to ``sigmas``
    (one denoiser call each), so the pin is exact and the product of the mean weights estimates
    :math:`\log p(y)`; with ``"nearest"`` each coordinate is pinned at the level of ``sigmas``
    nearest to :math:`\nu_j` (the authors' ``get_taus_from_singular_values``), an approximation
    when the two differ, for operators with many distinct singular values (blurs). A noiseless
    coordinate is pinned at the last level above 0. The authors' code (gabrielvc/mcg_diff, variance
    preserving) pins with a small variance :math:`\kappa`; pinning exactly, the variance-exploding
    form needs none. The authors resample at every level (multinomially); here the particles are
    resampled (systematically) when the effective sample size falls below ``resample_below``
    times their number (1: at every level), and at the end. ``forward`` must have an SVD (a matrix or a
    :class:`deepinv.physics.DecomposablePhysics`); ``x_T`` (at least 2 particles) shares one ``y``.

    :returns: a :class:`~scoredae.sampling.loop.SamplerResult` whose ``samples`` are the particles
        after the last resampling and whose ``state`` is a :class:`FilterState`
        (``log_evidence`` estimates :math:`\log p(y)` when :math:`\sigma_y > 0`).
    """
    op, y, noise_sigma, levels = posterior_inputs(denoiser, y, forward, noise_sigma, x_T, sigmas, generator, "MCGdiff",
                                                  noiseless=True)
    if pin not in ("insert", "nearest"):
        raise ValueError(f"pin: expected 'insert' or 'nearest', got {pin!r}")
    _, _, seen, _, nu = spectral_observation(op, y[:1], noise_sigma, x_T)
    levels, pinned_at = _pin_levels(nu, seen, levels, pin)
    table = torch.tensor(levels, dtype=x_T.dtype, device=x_T.device)

    def potential(i):
        return table[i] ** 2 - table[pinned_at.clamp(max=len(levels) - 1)] ** 2, seen & (i <= pinned_at)

    return _spectral_filter(denoiser, y, op, noise_sigma, x_T, levels, "MCGdiff", potential=potential,
                            twisted=True, path=False, resample_below=resample_below, generator=generator,
                            loop={"progress": progress, "record_every": record_every, "callback": callback,
                                  "max_norm": max_norm})


@torch.no_grad()
def fps(denoiser, y, forward, noise_sigma: float, x_T: torch.Tensor, sigmas, *, resample_below: float = 0.5,
        generator: torch.Generator | None = None, progress: bool = False, record_every: int | None = None,
        callback: Callable | None = None, max_norm: float | None = None) -> SamplerResult:
    r"""Filtering posterior sampling, FPS-SMC (Dou & Song 2024, Algorithm 2), the filter of the module
    docstring along a noised observation path. As in the authors' code, the path shares its noise
    with the particles at the first level (their :math:`y_T = A x_T`): :math:`c(\sigma_0)` is the
    seen part of the first particle of ``x_T``, and every particle's seen coordinates start there
    (the others stay as drawn). Each level draws the path's ancestral step towards :math:`\bar y`,

    .. math::
        c(\sigma') = \bar y + \frac{\sigma'^2}{\sigma^2} (c(\sigma) - \bar y)
        + \sqrt{\sigma'^2 (1 - \sigma'^2 / \sigma^2)}\, z, \qquad v_j(\sigma) = \nu_j^2,

    (one draw for all particles, :math:`c(0) = \bar y`), and every level's potential is kept in the
    weights (a hidden Markov model whose observation at level :math:`\sigma` is :math:`c(\sigma)`,
    their eq. 8). InverseBench's ``algo/fps.py`` draws the path with DDIM's :math:`\eta` and
    weights the spectral coordinates with :math:`\sigma_y` in place of :math:`\nu_j = \sigma_y / s_j`;
    here the path is the Brownian bridge of the model's own kernel and each coordinate has its own
    noise. The hidden Markov model counts the observation once per level, where the noised
    observation :math:`\bar y + \sigma n` shares one :math:`\bar y - \bar x` at every level, so
    the particles concentrate: on a two-component mixture in 2-D (one observed direction, 200
    levels, 4,096 particles) the variance along the observed direction came out 0.006 against the
    exact 0.24, and the log evidence of the path model, the product of the mean weights over the
    density of the drawn path, is far below :math:`\log p(y)` and falls with the number of levels:
    it is not an estimate of :math:`\log p(y)`. ``noise_sigma`` > 0; ``forward`` must have an SVD;
    ``x_T`` (at least 2 particles) shares one ``y``; ``resample_below`` as in :func:`mcgdiff`.

    :returns: as :func:`mcgdiff`.
    """
    op, y, noise_sigma, levels = posterior_inputs(denoiser, y, forward, noise_sigma, x_T, sigmas, generator, "FPS")
    _, _, seen, _, nu = spectral_observation(op, y[:1], noise_sigma, x_T)
    return _spectral_filter(denoiser, y, op, noise_sigma, x_T, levels, "FPS",
                            potential=lambda i: (nu.square(), seen), twisted=False, path=True,
                            resample_below=resample_below, generator=generator,
                            loop={"progress": progress, "record_every": record_every, "callback": callback,
                                  "max_norm": max_norm})
