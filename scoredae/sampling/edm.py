r"""The diffusion-era samplers on the same MMSE denoiser: EDM's probability-flow ODE and its
stochastic variant (Karras et al. 2022, "Elucidating the design space of diffusion-based generative
models", Algorithms 1 and 2).

For data :math:`x \sim p` and :math:`x_\sigma = x + \sigma n`, the densities :math:`p_\sigma` are
transported by the probability-flow ODE (their eq. 1 with :math:`\sigma(t) = t`)

.. math::
    \frac{dx}{d\sigma} = -\sigma \nabla \log p_\sigma(x) = \frac{x - D(x, \sigma)}{\sigma},

the right-hand side by Tweedie's formula :math:`\nabla \log p_\sigma = (D - x) / \sigma^2` from the
MMSE denoiser :math:`D`. Integrating it from :math:`x_{\sigma_{\max}} \sim p_{\sigma_{\max}}` down
to :math:`\sigma = 0` gives a sample of :math:`p`: Euler's method takes one denoiser call per step,
Heun's method two (one fewer in all: the last step, to :math:`\sigma = 0`, stays Euler, and lands on
:math:`D`'s output). With ``churn`` > 0, each step first adds noise to raise the level from
:math:`t_i` to :math:`\hat t_i = (1 + \gamma_i) t_i`, :math:`\gamma_i = \min(S_{churn} / N, \sqrt 2 - 1)`
inside :math:`[S_{tmin}, S_{tmax}]` (their Algorithm 2): Langevin-like noise that corrects the errors
of earlier steps.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from .._checks import decreasing_levels, finite_number, positive, positive_int
from ..rng import randn
from ..score import require_every_level
from .loop import LoopSpec, SamplerResult, check_chain_inputs, run_chain

SOLVERS = ("heun", "euler")


def karras_sigmas(sigma_min: float, sigma_max: float, n: int, rho: float = 7.0) -> torch.Tensor:
    r"""EDM's time steps (their eq. 5), float64 of shape ``(n + 1,)``:
    :math:`t_i = \big(\sigma_{\max}^{1/\rho} + \tfrac{i}{n - 1} (\sigma_{\min}^{1/\rho} - \sigma_{\max}^{1/\rho})\big)^\rho`
    for :math:`i = 0..n-1`, then :math:`t_n = 0`. ``rho = 7`` puts more steps at small :math:`\sigma`."""
    positive("sigma_min", sigma_min)
    positive("rho", rho)
    if not (positive_int("n", n) >= 2 and positive("sigma_max", sigma_max) > sigma_min):
        raise ValueError(f"expected sigma_max > sigma_min and n >= 2, got sigma_max={sigma_max!r}, "
                         f"sigma_min={sigma_min!r}, n={n!r}")
    i = torch.arange(n, dtype=torch.float64)
    t = (sigma_max ** (1 / rho) + i / (n - 1) * (sigma_min ** (1 / rho) - sigma_max ** (1 / rho))) ** rho
    return torch.cat([t, t.new_zeros(1)])


def ode_derivative(denoiser, x: torch.Tensor, sigma: float) -> torch.Tensor:
    r"""The probability-flow ODE's :math:`dx/d\sigma = (x - D(x, \sigma)) / \sigma` (module docstring)."""
    return (x - denoiser(x, sigma)) / sigma


@torch.no_grad()
def edm_sampler(denoiser, x_T: torch.Tensor, sigmas, *, solver: str = "heun", churn: float = 0.0,
                s_min: float = 0.0, s_max: float = math.inf, s_noise: float = 1.0,
                generator: torch.Generator | None = None,
                progress: bool = False, record_every: int | None = None,
                callback: Callable | None = None, max_norm: float | None = None) -> SamplerResult:
    r"""EDM's sampler (Karras et al. 2022, Algorithm 2; Algorithm 1 when ``churn = 0``).

    For :math:`i = 0..N-1`, with :math:`t_i` = ``sigmas[i]``: with
    :math:`\gamma_i = \min(\text{churn} / N, \sqrt 2 - 1)` when :math:`s_{\min} \le t_i \le s_{\max}`
    (else 0), :math:`\hat t = (1 + \gamma_i) t_i`,
    :math:`\hat x = x_i + \sqrt{\hat t^2 - t_i^2}\, S_{noise}\, z`; then the Euler step
    :math:`x_{i+1} = \hat x + (t_{i+1} - \hat t)\, d`, :math:`d = (\hat x - D(\hat x, \hat t)) / \hat t`,
    and, for Heun whenever :math:`t_{i+1} > 0`, the correction
    :math:`x_{i+1} = \hat x + (t_{i+1} - \hat t)(d + d') / 2`,
    :math:`d' = (x_{i+1} - D(x_{i+1}, t_{i+1})) / t_{i+1}`.

    :param denoiser: a noise-conditional ``D(x, sigma)`` (a fixed-sigma model is refused), e.g. a
        noise-conditional scoredae model, :class:`~scoredae.mixtures.MixtureDenoiser`, a deepinv
        denoiser or :func:`~scoredae.score.denoiser_from_score` of a score.
    :param x_T: initial states (B, ...), samples of :math:`p_{\sigma_0}`, e.g. ``sigmas[0] * randn``.
    :param sigmas: :math:`t_0 > t_1 > \dots > t_N \ge 0` (e.g. :func:`karras_sigmas`); ending at 0, the
        result is :math:`D`'s output; Heun then makes :math:`2N - 1` denoiser calls, Euler :math:`N`.
    :param solver: ``"heun"`` (second order) or ``"euler"``.
    :param churn: :math:`S_{churn} \ge 0`, the stochasticity.
    :param s_min: :math:`S_{tmin}`, lowest level that gets churn.
    :param s_max: :math:`S_{tmax}`, highest level that gets churn.
    :param s_noise: :math:`S_{noise} > 0`, the scale of the churn noise.
    :returns: a :class:`~scoredae.sampling.loop.SamplerResult` (``n_steps`` = N; ``trajectory`` with
        ``record_every``).
    """
    if solver not in SOLVERS:
        raise ValueError(f"solver: expected one of {SOLVERS}, got {solver!r}")
    churn = finite_number("churn", churn, allow_zero=True)
    positive("s_noise", s_noise)
    if not s_min <= s_max:
        raise ValueError(f"s_min, s_max: expected s_min <= s_max, got {s_min!r} > {s_max!r}")
    require_every_level(denoiser, "EDM's sampler")
    check_chain_inputs(x_T, generator, name="x_T")
    levels = decreasing_levels("sigmas", sigmas, final_zero=True)
    n = len(levels) - 1
    gamma_max = min(churn / n, math.sqrt(2) - 1)

    def step(x, state, k):
        t_cur, t_next = levels[k - 1], levels[k]
        gamma = gamma_max if s_min <= t_cur <= s_max else 0.0
        t_hat = t_cur * (1 + gamma)
        if gamma > 0:
            x = x + math.sqrt(t_hat**2 - t_cur**2) * s_noise * randn(x.shape, generator, dtype=x.dtype, device=x.device)
        d = ode_derivative(denoiser, x, t_hat)
        x_next = x + (t_next - t_hat) * d
        if solver == "heun" and t_next > 0:
            x_next = x + (t_next - t_hat) * 0.5 * (d + ode_derivative(denoiser, x_next, t_next))
        return x_next, state

    spec = LoopSpec(f"EDM {solver}", hint="; check that the denoiser covers the levels of sigmas",
                    level_of=lambda k: levels[k - 1], stationary=False)
    return run_chain(step, x_T, None, n, spec,
                       progress=progress, record_every=record_every, callback=callback, max_norm=max_norm)
