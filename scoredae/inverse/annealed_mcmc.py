r"""Markov chain Monte Carlo inside the diffusion: DAPS (Zhang et al., CVPR 2025, "Improving
diffusion inverse problem solving with decoupled noise annealing"), which at every level estimates
the clean image from the noised one, samples the clean image given that estimate and the
observation by Langevin dynamics, and noises the result to the next level; and PnP-DM (Wu et al.,
NeurIPS 2024), split Gibbs sampling that alternates a likelihood step and a denoising-posterior step
by the diffusion from a coupling level annealed towards 0; and DPnP (Xu & Chi, NeurIPS 2024), the
same two steps on the authors' shorter schedule."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import torch

from .._checks import per_row, positive, positive_int
from ..rng import randn
from ..sampling.ancestral import ancestral_step
from ..sampling.edm import karras_sigmas
from ..sampling.loop import LoopSpec, SamplerResult, run_chain
from .inputs import posterior_inputs

_POWER_ITERATIONS = 50  # of J^T J, for the largest squared singular value of an operator without an SVD


def squared_norm(op, like: torch.Tensor) -> float:
    r""":math:`\lVert A \rVert_2^2`, the largest eigenvalue of :math:`A^\top A`: from the singular values
    when the operator has them, else by power iteration (:func:`jacobian_squared_norm`, ``like`` one
    batch of the unknown, for the shape)."""
    try:
        return float(torch.as_tensor(op.svd()[3]).abs().max() ** 2)
    except ValueError:
        return jacobian_squared_norm(op, like[:1])


def jacobian_squared_norm(op, x: torch.Tensor) -> float:
    r""":math:`\max_b \lVert J_f(x_b) \rVert_2^2` over the chains :math:`x_b` of a forward model
    (:math:`J = A` for a linear one), by power iteration of :math:`J^\top J` (a forward- and a
    reverse-mode product each) from a fixed random start: for a nonlinear :math:`f`, the
    Gauss-Newton bound on the curvature of the misfit at ``x``."""
    v = torch.randn(x.shape, generator=torch.Generator().manual_seed(0), dtype=x.dtype).to(x.device)
    for _ in range(_POWER_ITERATIONS):
        w = op.adjoint_at(x, op.jvp_at(x, v))
        v = w / per_row(w.flatten(1).norm(dim=1).clamp(min=1e-30), w)
    return float(op.jvp_at(x, v).flatten(1).square().sum(1).max())


def _likelihood_langevin(op, y, noise_sigma: float, anchor: torch.Tensor, spread: float, eta: float, steps: int,
                         generator) -> torch.Tensor:
    r"""``steps`` of unadjusted Langevin of step :math:`\eta` from ``anchor`` :math:`a`, targeting
    :math:`\exp\big(-\lVert y - f(z) \rVert^2 / 2\sigma_y^2 - \lVert z - a \rVert^2 / 2 s^2\big)`,
    ``spread`` :math:`s`: :math:`z \leftarrow z - \eta \big(J_f(z)^\top (f(z) - y) / \sigma_y^2 +
    (z - a) / s^2\big) + \sqrt{2 \eta}\, n`."""
    z = anchor
    for _ in range(steps):
        grad = op.adjoint_at(z, op.A(z) - y) / noise_sigma**2 + (z - anchor) / spread**2
        z = z - eta * grad + math.sqrt(2 * eta) * randn(z.shape, generator, dtype=z.dtype, device=z.device)
    return z


def _check_step_size(step_size: float) -> None:
    if not 0 < positive("step_size", step_size) < 2:
        raise ValueError(f"step_size: expected a fraction of 1 / L in (0, 2), got {step_size!r}; "
                         "from 2 on the Langevin chain on the Gaussian likelihood diverges")


def _clean_estimate(denoiser, x: torch.Tensor, sigma: float, steps: int, floor: float) -> torch.Tensor:
    r""":math:`\hat x_0(x_\sigma)` by ``steps`` Euler steps of the probability-flow ODE from ``sigma`` to
    0 on EDM's levels, the last above 0 the larger of ``sigma`` / 1000 and ``floor`` (the smallest level
    of the sampler, where the denoiser is known to be called); one step, or ``sigma`` at the floor,
    is :math:`D(x, \sigma)`."""
    if steps == 1 or sigma <= floor:
        return denoiser(x, sigma)
    levels = karras_sigmas(max(sigma * 1e-3, floor), sigma, steps).tolist()
    for t, t_next in itertools.pairwise(levels):
        x = x + (t_next - t) * (x - denoiser(x, t)) / t
    return x


@torch.no_grad()
def daps(denoiser, y, forward, noise_sigma: float, x_T: torch.Tensor, sigmas, *, ode_steps: int = 5,
         langevin_steps: int = 100, step_size: float = 0.5, step_decay: float = 0.01,
         generator: torch.Generator | None = None, progress: bool = False, record_every: int | None = None,
         callback: Callable | None = None, max_norm: float | None = None) -> SamplerResult:
    r"""Decoupled annealing posterior sampling (Zhang et al. 2025, Algorithm 1), variance exploding.
    At level :math:`\sigma_i`: the clean estimate :math:`\hat x_0 = \hat x_0(x_i)` by ``ode_steps``
    Euler steps of the probability-flow ODE to 0 (to the smallest level of ``sigmas``, within the
    denoiser's range, or :math:`\sigma_i / 1000` if larger); then ``langevin_steps`` of unadjusted Langevin
    dynamics on :math:`x_0` targeting their eq. 9,

    .. math::
        p(x_0 \mid x_i, y) \propto \mathcal N(x_0; \hat x_0, r_i^2 I)\,
        \exp\Big(-\frac{\lVert A x_0 - y \rVert^2}{2 \sigma_y^2}\Big), \qquad r_i = \sigma_i,

    :math:`x_0 \leftarrow x_0 - \eta_k \big(A^\top (A x_0 - y) / \sigma_y^2 + (x_0 - \hat x_0) / r_i^2\big)
    + \sqrt{2 \eta_k}\, z`, from :math:`\hat x_0`; then :math:`x_{i+1} = x_0 + \sigma_{i+1} z`
    (:math:`x_0` itself at the last level, 0). The step is relative to the Lipschitz constant of the
    gradient, :math:`\eta_k = \text{step} \cdot m_i / L_i`, :math:`L_i = \lVert A \rVert^2 / \sigma_y^2
    + 1 / r_i^2`, with :math:`m_i` decaying linearly from 1 to ``step_decay`` over the levels (the
    authors' ``lr_min_ratio``): the authors' code takes an absolute rate (InverseBench's
    ``algo/daps.py``: 1e-4 with a fixed :math:`\tau = 0.01` in place of :math:`\sigma_y`), which is
    unstable wherever :math:`r_i` is below :math:`\sqrt{\eta / 2}`; relative, one setting fits every
    level, and ``step_size`` must be below 2, where the chain on this Gaussian diverges. Costs
    ``ode_steps`` denoiser calls a level, no Jacobian products.

    ``forward`` may be any differentiable ``forward(x)``, a nonlinear :math:`f` (their section 4.2):
    the gradient is then :math:`J_f(x_0)^\top (f(x_0) - y) / \sigma_y^2`, and
    :math:`\lVert A \rVert^2` becomes :math:`\lVert J_f(\hat x_0) \rVert^2` at each level
    (:func:`jacobian_squared_norm`).
    """
    op, y, noise_sigma, levels = posterior_inputs(denoiser, y, forward, noise_sigma, x_T, sigmas, generator, "DAPS",
                                                  nonlinear=True)
    positive_int("ode_steps", ode_steps)
    positive_int("langevin_steps", langevin_steps)
    _check_step_size(step_size)
    if not 0 < positive("step_decay", step_decay) <= 1:
        raise ValueError(f"step_decay: expected a ratio in (0, 1], got {step_decay!r}")
    lip_a = squared_norm(op, x_T) / noise_sigma**2 if op.linear else None
    n = len(levels) - 1
    floor = min(s for s in levels if s > 0)

    def step(x, state, i):
        sigma, sigma_next = levels[i - 1], levels[i]
        x_hat = _clean_estimate(denoiser, x, sigma, ode_steps, floor)
        lip = lip_a if op.linear else jacobian_squared_norm(op, x_hat) / noise_sigma**2
        eta = step_size * (1 + (i - 1) / n * (step_decay - 1)) / (lip + 1 / sigma**2)
        x0 = _likelihood_langevin(op, y, noise_sigma, x_hat, sigma, eta, langevin_steps, generator)
        if sigma_next > 0:
            x0 = x0 + sigma_next * randn(x0.shape, generator, dtype=x0.dtype, device=x0.device)
        return x0, state

    spec = LoopSpec("DAPS", level_of=lambda i: levels[i - 1], stationary=False)
    return run_chain(step, x_T, None, n, spec, progress=progress, record_every=record_every, callback=callback,
                     max_norm=max_norm)


def _ancestral_from(denoiser, x: torch.Tensor, rho: float, levels: list[float], generator) -> torch.Tensor:
    r"""A draw of the denoising posterior :math:`p(x_0 \mid x_\rho = x)` by the ancestral chain
    (:func:`~scoredae.sampling.ancestral.ancestral_step`, :math:`\eta = 1`) from ``rho`` down the
    levels below it."""
    path = [rho, *(s for s in levels if s < rho)]
    for s, s_next in itertools.pairwise(path):
        x = ancestral_step(x, denoiser(x, s), s, s_next, 1.0, generator)
    return x


def _langevin_likelihood_step(op, y, noise_sigma, x, rho, steps, step_size, generator) -> torch.Tensor:
    r"""A draw of :math:`\pi_\rho(z \mid x) \propto e^{-\lVert y - f(z) \rVert^2 / 2\sigma_y^2 -
    \lVert z - x \rVert^2 / 2\rho^2}` for a nonlinear :math:`f`: ``steps`` of unadjusted Langevin from
    :math:`x`, of step ``step_size`` / :math:`L`, :math:`L = \lVert J_f(x) \rVert^2 / \sigma_y^2 + 1/\rho^2`."""
    eta = step_size / (jacobian_squared_norm(op, x) / noise_sigma**2 + 1 / rho**2)
    return _likelihood_langevin(op, y, noise_sigma, x, rho, eta, steps, generator)


def _split_gibbs(denoiser, y, forward, noise_sigma, x_T, sigmas, couplings: list[float], generator, name: str,
                 likelihood_steps: int, step_size: float, **loop) -> SamplerResult:
    r"""Split Gibbs sampling of :math:`\pi_\rho(x, z) \propto p(x)\, \mathcal N(z; x, \rho^2 I)\,
    p(y \mid z)` at the couplings :math:`\rho_k` in turn: the likelihood step drawn exactly by
    perturbation (by Langevin for a nonlinear forward), the prior step by the ancestral chain from
    :math:`\rho_k` (see :func:`pnp_dm`)."""
    op, y, noise_sigma, levels = posterior_inputs(denoiser, y, forward, noise_sigma, x_T, sigmas, generator, name,
                                                  nonlinear=True)
    positive_int("likelihood_steps", likelihood_steps)
    _check_step_size(step_size)

    def draw(like):
        return randn(like.shape, generator, dtype=like.dtype, device=like.device)

    def step(x, state, k):
        rho = couplings[k - 1]
        if op.linear:
            u = x + rho * draw(x)
            v = y + noise_sigma * draw(y)
            z = u + rho**2 * op.A_adjoint(op.gram_solve(v - op.A(u), rho**2, noise_sigma**2))
        else:
            z = _langevin_likelihood_step(op, y, noise_sigma, x, rho, likelihood_steps, step_size, generator)
        return _ancestral_from(denoiser, z, rho, levels, generator), state

    spec = LoopSpec(name, level_of=lambda k: couplings[k - 1], stationary=False)
    return run_chain(step, x_T, None, len(couplings), spec, **loop)


def _check_coupling_range(low_name: str, low: float, high_name: str, high: float) -> None:
    if not 0 < positive(low_name, low) <= positive(high_name, high):
        raise ValueError(f"{low_name}, {high_name}: expected 0 < {low_name} <= {high_name}, got {low!r}, {high!r}")


@torch.no_grad()
def pnp_dm(denoiser, y, forward, noise_sigma: float, x_T: torch.Tensor, sigmas, *, rho_max: float = 10.0,
           rho_min: float = 0.1, decay: float = 0.9, iterations: int = 60, likelihood_steps: int = 100,
           step_size: float = 0.5, generator: torch.Generator | None = None, progress: bool = False, record_every: int | None = None, callback: Callable | None = None,
           max_norm: float | None = None) -> SamplerResult:
    r"""Plug-and-play diffusion models (Wu et al., NeurIPS 2024, Algorithm 1): split Gibbs sampling of
    :math:`\pi_\rho(x, z) \propto p(x)\, \mathcal N(z; x, \rho^2 I)\, p(y \mid z)` with the coupling
    annealed, :math:`\rho_k = \max(\rho_{min}, \rho_{max} \cdot \text{decay}^k)`,
    :math:`k = 0..\text{iterations} - 1`. Each iteration, from ``x_T`` on:

    1. the likelihood step :math:`z \sim \pi_\rho(z \mid x) = \mathcal N\big(m, (A^\top A / \sigma_y^2 +
       I / \rho^2)^{-1}\big)`, drawn exactly by perturbation (Matheron's rule):
       :math:`u = x + \rho n_1`, :math:`v = y + \sigma_y n_2`,
       :math:`z = u + \rho^2 A^\top (\rho^2 A A^\top + \sigma_y^2 I)^{-1} (v - A u)`;
    2. the prior step :math:`x \sim p(x \mid x_\rho = z)`, the denoising posterior, by the diffusion's
       ancestral chain from level :math:`\rho` down the levels of ``sigmas`` below it.

    The :math:`x`-marginal of :math:`\pi_\rho` is the posterior with the noise inflated to
    :math:`\sigma_y^2 I + \rho^2 A A^\top`; it is the posterior as :math:`\rho \to 0`. InverseBench's
    ``algo/pnpdm.py`` takes the likelihood step by 100 Langevin steps; for a linear Gaussian
    likelihood the step is closed form, so here it is exact. For a nonlinear differentiable
    ``forward(x)`` it is ``likelihood_steps`` of unadjusted Langevin from :math:`x`, of step
    ``step_size`` over the Gauss-Newton bound :math:`\lVert J_f(x) \rVert^2 / \sigma_y^2 + 1/\rho^2`.
    Costs, per iteration, one denoiser call per level of ``sigmas`` below :math:`\rho_k`, plus one.
    """
    positive_int("iterations", iterations)
    _check_coupling_range("rho_min", rho_min, "rho_max", rho_max)
    if not 0 < positive("decay", decay) <= 1:
        raise ValueError(f"decay: expected a ratio in (0, 1], got {decay!r}")
    couplings = [max(rho_min, rho_max * decay**k) for k in range(iterations)]
    return _split_gibbs(denoiser, y, forward, noise_sigma, x_T, sigmas, couplings, generator, "PnP-DM",
                        likelihood_steps, step_size, progress=progress, record_every=record_every, callback=callback,
                        max_norm=max_norm)


@torch.no_grad()
def dpnp(denoiser, y, forward, noise_sigma: float, x_T: torch.Tensor, sigmas, *, eta_max: float = 4.0,
         eta_min: float = 1.6, hold: int = 4, iterations: int = 16, likelihood_steps: int = 1000,
         step_size: float = 0.5, generator: torch.Generator | None = None, progress: bool = False, record_every: int | None = None, callback: Callable | None = None,
         max_norm: float | None = None) -> SamplerResult:
    r"""Diffusion plug-and-play (Xu & Chi, NeurIPS 2024, Algorithm 1): alternate the proximal
    consistency sampler, a draw of :math:`p(x \mid y, x_k) \propto p(y \mid x)\,
    e^{-\lVert x - x_k \rVert^2 / 2 \eta_k^2}`, and the denoising diffusion sampler, a draw of the
    denoising posterior :math:`p(x_0 \mid x_0 + \eta_k n = x_{k+1/2})`, with the annealing of the
    authors' code (``x1xu/diffusion-plug-and-play``, ``DDPMPnP``): :math:`\eta_k = \eta_{max}` for the
    first ``hold`` iterations, then geometric from :math:`\eta_{max}` to :math:`\eta_{min}` over the
    remaining ``iterations - hold``.

    Both steps are PnP-DM's (:func:`pnp_dm`): for a linear Gaussian likelihood the proximal sampler
    is closed form (the authors run 1,000 Langevin steps, for any likelihood; so does a nonlinear
    ``forward(x)`` here, ``likelihood_steps``), and the denoising
    sampler is the stochastic (DDPM-type) one, the ancestral chain from :math:`\eta_k`; the
    deterministic (DDIM-type) sampler of the paper is not offered. The chain starts with the
    proximal step from ``x_T`` (the authors' DDPM variant starts by denoising it). What sets DPnP apart
    is the schedule: few iterations, held at the start, ending at a larger :math:`\eta_{min}`, where
    PnP-DM anneals geometrically towards a small :math:`\rho_{min}`; its target is the posterior with
    the noise inflated to :math:`\sigma_y^2 I + \eta_{min}^2 A A^\top`. The defaults are the
    authors' (0.4, 0.16, 4 held, 16 in all, for images in [-1, 1]) scaled by 10, to data of spread
    about 5 per coordinate.
    """
    positive_int("iterations", iterations)
    _check_coupling_range("eta_min", eta_min, "eta_max", eta_max)
    if not 0 <= hold < iterations:
        raise ValueError(f"hold: expected 0 <= hold < iterations ({iterations}), got {hold!r}")
    tail = iterations - hold
    ratios = [k / (tail - 1) if tail > 1 else 1.0 for k in range(tail)]
    couplings = [eta_max] * hold + [eta_max * (eta_min / eta_max) ** r for r in ratios]
    return _split_gibbs(denoiser, y, forward, noise_sigma, x_T, sigmas, couplings, generator, "DPnP",
                        likelihood_steps, step_size, progress=progress, record_every=record_every, callback=callback,
                        max_norm=max_norm)
