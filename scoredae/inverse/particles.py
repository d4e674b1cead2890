r"""A particle sampler of the posterior that is exact as the particles grow: the twisted diffusion
sampler (TDS, Wu et al. 2023, "Practical and asymptotically exact conditional sampling in diffusion
models", Algorithm 1), for :math:`y = A x + \sigma_y n`.

Why TDS: its correction needs nothing but the likelihood at the end, so it holds for any linear
operator given as a matrix, a deepinv physics or a pair of callables (MCGdiff, Cardoso et al. 2024,
needs the operator's SVD), and its twisting function is the guidance of the other samplers, so the
difference between them is exactly the importance weights.

The particles :math:`x^{1..P}` follow the diffusion's ancestral kernel
:math:`p(x_{i+1} \mid x_i) = \mathcal N(\mu_i, \tau_i^2 I)`, :math:`\mu_i = D + (\sigma_{i+1}^2 /
\sigma_i^2)(x_i - D)`, :math:`\tau_i^2 = \sigma_{i+1}^2 (1 - \sigma_{i+1}^2 / \sigma_i^2)` (the
posterior of the forward noising, :math:`\eta = 1` in :mod:`scoredae.inverse.diffusion_prior`), twisted by
:math:`\tilde p_i(y \mid x) \propto \exp\big(-\tfrac12 \rho^\top (\sigma_y^2 I + r_i^2 A A^\top)^{-1}
\rho\big)`, :math:`\rho = y - A D(x, \sigma_i)`, :math:`r_i^2 = \sigma_i^2 \sigma_{data}^2 / (\sigma_i^2 +
\sigma_{data}^2)`: PiGDM's likelihood (:func:`~scoredae.inverse.likelihood_scores.pigdm_likelihood_score`; with
``data_variance`` :math:`\sigma_{data}^2 = 0` the DPS twist of the paper's eq. 8). Its normalising
constant depends on the level only, so it cancels from the weights and, telescoping, from the
evidence; it is left out. Each step
proposes from :math:`q = \mathcal N(\mu_i + \tau_i^2 \nabla \log \tilde p_i(y \mid x_i), \tau_i^2 I)`
(their eq. 9) and multiplies the weights by

.. math::
    w_{i+1} = \frac{p(x_{i+1} \mid x_i)\, \tilde p_{i+1}(y \mid x_{i+1})}{q(x_{i+1} \mid x_i)\,
    \tilde p_i(y \mid x_i)}, \qquad w_0 = \tilde p_0(y \mid x_0),

the last twist replaced by the exact likelihood :math:`\mathcal N(y; A x_N, \sigma_y^2 I)` (at a final
level 0, :math:`x_N = D(x_{N-1})`). The product of the weights telescopes to
:math:`p(y \mid x_N)` times the ratio of the model's path to the proposal's: whatever the twist,
the weighted particles target the posterior of the model's prior, and the mean of the weights
estimates the evidence :math:`p(y)` (their Theorem 1: both exact as :math:`P \to \infty`). The
particles are resampled (systematic resampling) whenever the effective sample size
:math:`(\sum w)^2 / \sum w^2` falls below ``resample_below`` times :math:`P`, and at the end.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Callable
from typing import NamedTuple

import torch

from .._checks import finite_number
from ..rng import rand, randn
from ..sampling.loop import LoopSpec, SamplerResult, run_chain
from ..uncertainty import denoise_with_pullback
from .inputs import posterior_inputs
from .likelihood_scores import gaussian_posterior_variance

log = logging.getLogger(__name__)


class SMCState(NamedTuple):
    r"""The particle system beside ``x``: the log weights (P,); the running estimate of
    :math:`\log p(y)`; the effective sample size after each step's reweighting (N,); and, at the
    particles, :math:`D`, :math:`\nabla \log \tilde p` and :math:`\log \tilde p` of the current level."""

    log_weights: torch.Tensor
    log_evidence: torch.Tensor
    ess: torch.Tensor
    denoised: torch.Tensor
    grad: torch.Tensor
    log_twist: torch.Tensor


def _log_gaussian(residual: torch.Tensor, variance: float) -> torch.Tensor:
    """log N(r; 0, v I) per row of the residual (P, ...)."""
    flat = residual.reshape(residual.shape[0], -1)
    return -0.5 * flat.square().sum(1) / variance - 0.5 * flat.shape[1] * math.log(2 * math.pi * variance)


def log_mean_exp(log_w: torch.Tensor) -> torch.Tensor:
    r""":math:`\log \tfrac1P \sum_p e^{\ell_p}`, stably."""
    return torch.logsumexp(log_w, 0) - math.log(len(log_w))


def importance_effective_size(log_w: torch.Tensor) -> torch.Tensor:
    r""":math:`(\sum_p w_p)^2 / \sum_p w_p^2` from the log weights, a 0-d tensor in :math:`[1, P]`."""
    return torch.exp(2 * torch.logsumexp(log_w, 0) - torch.logsumexp(2 * log_w, 0))


def systematic_indices(log_w: torch.Tensor, generator) -> torch.Tensor:
    r"""Systematic resampling: the ancestors :math:`\{j : F_{j-1} \le (u + p) / P < F_j\}` of the
    cumulative normalised weights :math:`F` for one uniform :math:`u`, (P,)."""
    n = len(log_w)
    cdf = torch.softmax(log_w, 0).cumsum(0)
    u = (rand((1,), generator, dtype=log_w.dtype, device=log_w.device) + torch.arange(n, device=log_w.device)) / n
    return torch.searchsorted(cdf, u).clamp(max=n - 1)


def shared_observation(y: torch.Tensor, x_T: torch.Tensor) -> int:
    """The number of particles, refused below 2, and the check that they share one observation."""
    n = x_T.shape[0]
    if n < 2:
        raise ValueError(f"x_T: expected at least 2 particles (its leading dimension), got {n}")
    if not bool((y == y[:1]).all()):
        raise ValueError("y: the particles share one observation; give one (or the same for every particle)")
    return n


def check_resample_below(resample_below) -> None:
    """``resample_below``, the share of the particles under which the effective sample size triggers
    resampling, must be in (0, 1]."""
    if not 0 < finite_number("resample_below", resample_below) <= 1:
        raise ValueError(f"resample_below: expected a fraction in (0, 1], got {resample_below!r}")


def warn_on_collapse(method: str, ess: torch.Tensor, n: int, levels: list[float]) -> None:
    """Log a warning when the effective sample size (one per step) fell below 5% of the particles."""
    worst = float(ess.min())
    if worst < 0.05 * n:
        log.warning("%s: the weights collapsed (effective sample size %.3g of %d particles at level %.3g); "
                    "add particles or levels", method, worst, n, levels[int(ess.argmin()) + 1])


@torch.no_grad()
def twisted_diffusion(denoiser, y, forward, noise_sigma: float, x_T: torch.Tensor, sigmas, *,
                      data_variance: float = 1.0, resample_below: float = 0.5,
                      generator: torch.Generator | None = None,
                      progress: bool = False, record_every: int | None = None,
                      callback: Callable | None = None, max_norm: float | None = None) -> SamplerResult:
    r"""The twisted diffusion sampler of the module docstring for one observation ``y`` (shape of
    ``forward`` applied to one particle, or with a leading 1), the batch of ``x_T`` the particles.

    :returns: a :class:`~scoredae.sampling.loop.SamplerResult` whose ``samples`` are the particles
        after the final resampling (equally weighted) and whose ``state`` is the :class:`SMCState`:
        ``state.log_evidence`` estimates :math:`\log p(y)`, ``state.ess`` the effective sample size
        per level (a collapse is also logged as a warning).
    """
    op, y, noise_sigma, levels = posterior_inputs(denoiser, y, forward, noise_sigma, x_T, sigmas, generator,
                                                  "the twisted diffusion sampler")
    n = shared_observation(y, x_T)
    finite_number("data_variance", data_variance, allow_zero=True)
    check_resample_below(resample_below)

    def twist(x, sigma):  # D, grad log twist, log twist (up to its constant)
        denoised, pullback = denoise_with_pullback(denoiser, x, sigma)
        residual = y - op.A(denoised)
        solved = op.gram_solve(residual, gaussian_posterior_variance(sigma, data_variance), noise_sigma**2)
        log_twist = -0.5 * (residual * solved).reshape(n, -1).sum(1)
        return denoised, pullback(op.A_adjoint(solved)), log_twist

    def step(x, state: SMCState, i):
        x, state = _resample(x, state, resample_below, generator)
        sigma, sigma_next = levels[i - 1], levels[i]
        if sigma_next == 0:  # the deterministic last move to D; its weight the exact likelihood
            x_next = state.denoised
            log_inc = _log_gaussian(y - op.A(x_next), noise_sigma**2) - state.log_twist
            new = (state.denoised, state.grad, state.log_twist)
        else:
            tau2 = sigma_next**2 * (1 - sigma_next**2 / sigma**2)
            mean = state.denoised + sigma_next**2 / sigma**2 * (x - state.denoised)
            shift = tau2 * state.grad
            x_next = mean + shift + math.sqrt(tau2) * randn(x.shape, generator, dtype=x.dtype, device=x.device)
            flat = lambda t: t.reshape(n, -1)
            log_p_over_q = (flat(x_next - mean - shift).square().sum(1) - flat(x_next - mean).square().sum(1)) / (2 * tau2)
            new = twist(x_next, sigma_next)
            if i == len(levels) - 1:  # the last level: the exact likelihood in place of the twist
                new = (*new[:2], _log_gaussian(y - op.A(x_next), noise_sigma**2))
            log_inc = log_p_over_q + new[2] - state.log_twist
        log_w = state.log_weights + log_inc
        ess = state.ess.clone()
        ess[i - 1] = importance_effective_size(log_w)
        return x_next, state._replace(log_weights=log_w, ess=ess, denoised=new[0], grad=new[1], log_twist=new[2])

    denoised, grad, log_twist = twist(x_T, levels[0])
    state = SMCState(log_twist, x_T.new_zeros(()), x_T.new_zeros(len(levels) - 1), denoised, grad, log_twist)
    spec = LoopSpec("twisted diffusion sampler", level_of=lambda i: levels[i - 1], stationary=False)
    result = run_chain(step, x_T, state, len(levels) - 1, spec,
                       progress=progress, record_every=record_every, callback=callback, max_norm=max_norm)
    return finish_particles(result, levels, generator, "twisted diffusion sampler")


def _resample(x: torch.Tensor, state: SMCState, resample_below: float, generator):
    """Systematic resampling of the particles and their cached quantities when the effective sample
    size is below ``resample_below`` times their number (decided on the device, no sync), the
    running evidence multiplied by the mean weight it discards."""
    n, log_w = len(x), state.log_weights
    need = importance_effective_size(log_w) < resample_below * n
    idx = torch.where(need, systematic_indices(log_w, generator), torch.arange(n, device=x.device))
    log_z = state.log_evidence + torch.where(need, log_mean_exp(log_w), 0.0)
    return x[idx], state._replace(log_weights=torch.where(need, 0.0, log_w[idx]), log_evidence=log_z,
                                  denoised=state.denoised[idx], grad=state.grad[idx], log_twist=state.log_twist[idx])


def finish_particles(result: SamplerResult, levels: list[float], generator, method: str) -> SamplerResult:
    """A particle sampler's result after the final resampling: equally weighted particles, the
    evidence estimate completed by the mean of the last weights; a collapse of the weights is logged.
    ``result.state`` has ``log_weights``, ``log_evidence`` and ``ess``."""
    state, n = result.state, len(result.samples)
    log_z = state.log_evidence + log_mean_exp(state.log_weights)
    idx = systematic_indices(state.log_weights, generator)
    warn_on_collapse(method, state.ess, n, levels)
    return dataclasses.replace(result, samples=result.samples[idx], state=state._replace(
        log_weights=torch.zeros_like(state.log_weights), log_evidence=log_z))
