r"""DDIM's step (Song et al. 2021, "Denoising diffusion implicit models", eq. 12) in the
variance-exploding form, and the sampler it makes: from level :math:`\sigma_i` to
:math:`\sigma_{i+1}` with the denoised :math:`\hat D = D(x_i, \sigma_i)`,

.. math::
    x_{i+1} &= \hat D + \sqrt{\sigma_{i+1}^2 - c_i^2}\, \frac{x_i - \hat D}{\sigma_i} + c_i z, \\
    c_i &= \eta\, \sigma_{i+1} \sqrt{1 - \sigma_{i+1}^2 / \sigma_i^2}, \quad z \sim \mathcal N(0, I).

:math:`\eta = 0` is Euler's step of the probability-flow ODE; :math:`\eta = 1` draws
:math:`x_{i+1}` from the Gaussian :math:`p(x_{\sigma_{i+1}} \mid x_{\sigma_i}, x_0 = \hat D)`: DDPM's
ancestral sampling (Ho et al. 2020). In the variance-preserving coordinates
:math:`x_t = x / \sqrt{1 + \sigma^2}` this is diffusers' ``DDIMScheduler`` step with ``eta``, the
noise :math:`c_i z` there :math:`\sqrt{\bar\alpha_{i+1}}\, c_i z` (tested step for step).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from .._checks import decreasing_levels, unit_interval
from ..rng import randn
from ..score import require_every_level
from .loop import LoopSpec, SamplerResult, check_chain_inputs, run_chain


def ancestral_step(x: torch.Tensor, denoised: torch.Tensor, sigma: float, sigma_next: float, eta: float,
                   generator) -> torch.Tensor:
    r"""The module docstring's step from level ``sigma`` to ``sigma_next`` given :math:`\hat D`
    (``denoised``); one standard normal draw when :math:`c_i > 0`."""
    c = eta * sigma_next * math.sqrt(max(1 - sigma_next**2 / sigma**2, 0.0))
    x_next = denoised + math.sqrt(max(sigma_next**2 - c**2, 0.0)) / sigma * (x - denoised)
    if c > 0:
        x_next = x_next + c * randn(x.shape, generator, dtype=x.dtype, device=x.device)
    return x_next


@torch.no_grad()
def ddim(denoiser, x_T: torch.Tensor, sigmas, *, eta: float = 1.0, generator: torch.Generator | None = None,
         progress: bool = False, record_every: int | None = None, callback: Callable | None = None,
         max_norm: float | None = None) -> SamplerResult:
    r"""DDIM with ``eta`` in [0, 1] (module docstring): ``len(sigmas) - 1`` steps of
    :func:`ancestral_step`, one denoiser call each, from ``x_T`` at ``sigmas[0]``; the last step, to
    :math:`\sigma = 0`, lands on :math:`\hat D`. Arguments as for
    :func:`~scoredae.sampling.multistep.dpm_solver_pp`."""
    unit_interval("eta", eta)
    require_every_level(denoiser, "DDIM")
    check_chain_inputs(x_T, generator, name="x_T")
    levels = decreasing_levels("sigmas", sigmas, final_zero=True)

    def step(x, state, k):
        sigma, sigma_next = levels[k - 1], levels[k]
        return ancestral_step(x, denoiser(x, sigma), sigma, sigma_next, eta, generator), state

    spec = LoopSpec(f"DDIM, eta {eta:g}", hint="; check that the denoiser covers the levels of sigmas",
                    level_of=lambda k: levels[k - 1], stationary=False)
    return run_chain(step, x_T, None, len(levels) - 1, spec, progress=progress, record_every=record_every,
                     callback=callback, max_norm=max_norm)
