r"""Posterior sampling by projection: DDNM (Wang et al., ICLR 2023), which replaces the range-space
part of each denoised estimate by the observation's and keeps the denoiser's null-space part."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from .._checks import unit_interval
from ..rng import randn
from ..sampling.loop import LoopSpec, SamplerResult, run_chain
from .inputs import posterior_inputs


@torch.no_grad()
def ddnm(denoiser, y, forward, noise_sigma: float, x_T: torch.Tensor, sigmas, *, eta: float = 0.85,
         generator: torch.Generator | None = None, progress: bool = False, record_every: int | None = None,
         callback: Callable | None = None, max_norm: float | None = None) -> SamplerResult:
    r"""Denoising diffusion null-space model (Wang et al. 2023), DDNM+ for :math:`\sigma_y > 0`, in the
    variance-exploding form. From level :math:`\sigma_i` to :math:`t = \sigma_{i+1}`, with
    :math:`D = D(x_i, \sigma_i)`:

    .. math::
        \hat x_0 &= D - \lambda_i A^+ (A D - y), \\
        \lambda_i &= \min(1, t / \sigma_y), \qquad \gamma_i = \sqrt{\max(0, t^2 - \lambda_i^2 \sigma_y^2)},

    .. math::
        x_{i+1} = \hat x_0 + \sqrt{1 - \eta^2}\, \frac{t}{\sigma_i} (x_i - \hat x_0) + \eta\, \gamma_i z.

    With :math:`\sigma_y = 0` (noiseless DDNM) :math:`\lambda_i = 1`: the range-space
    part of :math:`\hat x_0` is :math:`A^+ y` exactly and the null-space part the denoiser's,
    :math:`(I - A^+ A) D`. With noise (their DDNM+) the correction is scaled so that the
    noise it carries, :math:`\lambda_i \sigma_y`, fits in the level :math:`t` still to be removed,
    and the fresh noise :math:`\gamma_i` tops it up to :math:`t`; at the last level (:math:`t = 0`)
    the correction vanishes. :math:`\lambda_i` and :math:`\gamma_i` are the schedule of InverseBench's
    DDNM (``algo/ddnm.py``, per level rather than the paper's per-coordinate :math:`\Sigma_t`), and
    without the paper's time travel (their Algorithm 2, :math:`L = 0`). ``forward`` needs
    :math:`A^+`: a matrix, a deepinv decomposable physics, or a pair of callables with
    :math:`A A^\top = I` (the adjoint is then :math:`A^+`); ``eta`` :math:`\eta \in [0, 1]`.
    """
    op, y, noise_sigma, levels = posterior_inputs(denoiser, y, forward, noise_sigma, x_T, sigmas, generator, "DDNM",
                                                  noiseless=True)
    unit_interval("eta", eta)
    keep = math.sqrt(1 - eta**2)

    def step(x, state, i):
        sigma, t = levels[i - 1], levels[i]
        lam = 1.0 if noise_sigma == 0 else min(1.0, t / noise_sigma)
        gamma = math.sqrt(max(0.0, t * t - (lam * noise_sigma) ** 2))
        denoised = denoiser(x, sigma)
        x0 = denoised - lam * op.pinv(op.A(denoised) - y)
        x_next = x0 + (keep * t / sigma) * (x - x0)
        if eta * gamma > 0:
            x_next = x_next + eta * gamma * randn(x.shape, generator, dtype=x.dtype, device=x.device)
        return x_next, state

    spec = LoopSpec("DDNM", level_of=lambda i: levels[i - 1], stationary=False)
    return run_chain(step, x_T, None, len(levels) - 1, spec,
                     progress=progress, record_every=record_every, callback=callback, max_norm=max_norm)
