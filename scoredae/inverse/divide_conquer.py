r"""DCPS (Janati et al., NeurIPS 2024, "Divide-and-conquer posterior sampling for denoising diffusion
priors"): the levels split into blocks, each ending at an intermediate posterior whose potential is
the likelihood of the observation at the block's lowest level; within a block, Langevin dynamics at
its top and then one Gaussian fitted per transition, as in the authors' ``posterior_samplers/dcps.py``
(``YazidJanati/dcps``), in the variance-exploding form."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from .._checks import per_row, positive, positive_int
from ..rng import randn
from ..sampling.ancestral import ancestral_step
from ..sampling.loop import LoopSpec, SamplerResult, run_chain
from .inputs import posterior_inputs
from .variational import _fit_gaussian, _gaussian_kl


def _per_chain_norm(g: torch.Tensor) -> torch.Tensor:
    return per_row(g.flatten(1).norm(dim=1), g)


def _bridge_draw(denoiser, x, sigma: float, sigma_low: float, generator) -> torch.Tensor:
    r"""A draw of :math:`x_{\sigma_{low}}` from the bridge between :math:`x` at ``sigma`` and
    :math:`D(x, \sigma)` at 0, the ancestral step (:math:`\eta = 1`) of
    :func:`~scoredae.sampling.ancestral.ancestral_step`; :math:`x` itself when the levels agree."""
    if sigma_low >= sigma:
        return x
    return ancestral_step(x, denoiser(x, sigma), sigma, sigma_low, 1.0, generator)


def _langevin_at_block_top(denoiser, x, sigma, potential, sigma_low, steps, gamma, generator):
    r"""The authors' tamed unadjusted Langevin on :math:`p_\sigma(x)\, g(m(x))`, :math:`m(x)` the bridge
    mean at ``sigma_low``, with the step :math:`\gamma / (1 + \gamma \lVert \nabla \rVert)` in their
    variance-preserving units (:math:`s = \sqrt{1 + \sigma^2}` per unit here)."""
    s = math.sqrt(1 + sigma**2)
    ratio = sigma_low**2 / sigma**2
    for _ in range(steps):
        with torch.enable_grad():
            x = x.detach().requires_grad_()
            d = denoiser(x, sigma)
            grad = torch.autograd.grad(potential(d + ratio * (x - d)), x)[0]
        grad = grad + (d.detach() - x.detach()) / sigma**2
        h = gamma / (1 + gamma * s * _per_chain_norm(grad))
        x = x.detach() + s**2 * h * grad + s * math.sqrt(2 * gamma) * randn(x.shape, generator, dtype=x.dtype,
                                                                            device=x.device)
    return x


def _blocks(n: int, blocks: int) -> list[int]:
    """The first level of each block and the last level: ``blocks`` equal spans of the n steps."""
    return [round(k * n / blocks) for k in range(blocks + 1)]


@torch.no_grad()
def dcps(denoiser, y, forward, noise_sigma: float, x_T: torch.Tensor, sigmas, *, blocks: int = 3,
         langevin_steps: int = 5, gamma: float = 1e-3, gradient_steps: int = 2, lr: float = 0.5,
         generator: torch.Generator | None = None, progress: bool = False, record_every: int | None = None,
         callback: Callable | None = None, max_norm: float | None = None) -> SamplerResult:
    r"""Divide-and-conquer posterior sampling (Janati et al. 2024, Algorithm 1), variance exploding.

    The steps split into ``blocks`` equal spans (at most one per step); block :math:`k` runs from level :math:`\sigma_{a}` to
    :math:`\sigma_{b}` and targets the intermediate posterior of potential
    :math:`g_k(x_b) = \mathcal N\big(y; A x_b, \sigma_y^2 (1 + \sigma_b^2)\big)` (the authors'
    :math:`\mathcal N(\sqrt{\bar\alpha_b}\, y; A x_b, \sigma_y^2)` in variance-preserving units; the
    likelihood itself in the last block, :math:`\sigma_b = 0`). In each block:

    1. ``langevin_steps`` of tamed Langevin at :math:`\sigma_a` on :math:`p_{\sigma_a}(x)\, g_k(m(x))`,
       :math:`m(x)` the bridge mean from :math:`x` towards :math:`D(x, \sigma_a)` at :math:`\sigma_b`;
    2. for each transition :math:`\sigma_t \to \sigma_p` of the block, a diagonal Gaussian
       :math:`q = \mathcal N(\mu, \operatorname{diag} e^{2\lambda})` fitted by ``gradient_steps``
       normalised gradient steps on

       .. math::
           \mathrm{KL}\big(q \,\|\, \mathcal N(m_t, v_t I)\big) - \mathbb E\, \log g_k(x_b),
           \quad x_p \sim q,\ x_b \sim \text{bridge}(x_p \to D(x_p, \sigma_p)) \text{ at } \sigma_b,

       from the prior transition's bridge :math:`m_t = D + (\sigma_p^2/\sigma_t^2)(x_t - D)`,
       :math:`v_t = \sigma_p^2 (1 - \sigma_p^2 / \sigma_t^2)`; then :math:`x_p \sim q`.

    A step of length ``lr`` per chain is the authors' normalised SGD in their units
    (:math:`\text{lr} \sqrt{1 + \sigma_p^2}` for :math:`\mu` here). The authors take 0.05 for
    trajectories and 1.5 for images; on the benchmark's 8-dimensional mixture (one observation,
    512 chains, 100 levels) the mode total variation was 0.59 at 0.05, 0.17 at the default 0.5 and
    0.20 at 1.5. The last transition to level 0 returns :math:`D(x, \sigma)`
    (the authors stop one level above 0). Costs per transition one denoiser call and, per gradient
    step, one call and one vector-Jacobian product; per block, per Langevin step, the same.
    """
    op, y, noise_sigma, levels = posterior_inputs(denoiser, y, forward, noise_sigma, x_T, sigmas, generator, "DCPS")
    n = len(levels) - 1
    blocks = min(positive_int("blocks", blocks), n)
    positive_int("gradient_steps", gradient_steps)
    positive("gamma", gamma)
    positive("lr", lr)
    if langevin_steps < 0:
        raise ValueError(f"langevin_steps: expected an integer >= 0, got {langevin_steps!r}")
    bounds = _blocks(n, blocks)

    def potential_at(sigma_low):
        return lambda x_b: -(op.A(x_b) - y).square().sum() / (2 * noise_sigma**2 * (1 + sigma_low**2))

    def step(x, state, i):
        sigma, sigma_next = levels[i - 1], levels[i]
        sigma_low = levels[min(b for b in bounds if b >= i)]
        potential = potential_at(sigma_low)
        if i - 1 in bounds:
            x = _langevin_at_block_top(denoiser, x, sigma, potential, sigma_low, langevin_steps, gamma, generator)
        d = denoiser(x, sigma)
        if sigma_next == 0:
            return d, state
        ratio = sigma_next**2 / sigma**2
        prior_mean, prior_var = d + ratio * (x - d), sigma_next**2 * (1 - ratio)

        def objective(mean, log_std):
            x_p = mean + log_std.exp() * randn(mean.shape, generator, dtype=mean.dtype, device=mean.device)
            x_b = _bridge_draw(denoiser, x_p, sigma_next, sigma_low, generator)
            return _gaussian_kl(mean, log_std, prior_mean, prior_var) - potential(x_b)

        rates = (lr * math.sqrt(1 + sigma_next**2), lr)
        mean, log_std = _fit_gaussian(
            objective, prior_mean, torch.full_like(x, 0.5 * math.log(prior_var)), gradient_steps,
            lambda params, grads: [p - r * g / (_per_chain_norm(g) + 1e-8) for p, g, r in zip(params, grads, rates)])
        return mean + log_std.exp() * randn(x.shape, generator, dtype=x.dtype, device=x.device), state

    spec = LoopSpec("DCPS", level_of=lambda i: levels[i - 1], stationary=False)
    return run_chain(step, x_T, None, n, spec, progress=progress, record_every=record_every, callback=callback,
                     max_norm=max_norm)
