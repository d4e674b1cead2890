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

import itertools
import math
from typing import NamedTuple

import torch

from .._checks import decreasing_levels, finite_number, positive, positive_int
from ..rng import rademacher, randn
from ..score import require_every_level
from ..uncertainty import jacobian_trace
from .loop import LoopSpec, SamplerResult, check_chain_inputs, run_chain
from .operators import linear_operator

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
                generator: torch.Generator | None = None, **common) -> SamplerResult:
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
    check_chain_inputs(x_T, generator)
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
    return run_chain(step, x_T, None, n, spec, **common)


def _divergence(denoiser, x: torch.Tensor, sigma: float, probes: torch.Tensor | None) -> torch.Tensor:
    r""":math:`\nabla \cdot f = (d - \operatorname{tr} J_D) / \sigma` per sample for
    :math:`f = (x - D(x, \sigma)) / \sigma`, the trace exact (``probes`` None) or by Hutchinson."""
    return (x[0].numel() - jacobian_trace(denoiser, x, sigma, probes)) / sigma


def pf_ode_log_likelihood(denoiser, x: torch.Tensor, sigmas, *, trace: str = "exact", n_probes: int = 1,
                          generator: torch.Generator | None = None, prior_log_prob=None) -> torch.Tensor:
    r"""The log-density :math:`\log p_{\sigma_{\min}}(x)` of data under the model, by the
    instantaneous change of variables along the probability-flow ODE (Song et al. 2021, eq. 39).

    Along :math:`dx/d\sigma = f(x, \sigma) = (x - D(x, \sigma)) / \sigma`,
    :math:`\frac{d}{d\sigma} \log p_\sigma(x(\sigma)) = -\nabla \cdot f`, so

    .. math::
        \log p_{\sigma_{\min}}(x) = \log p_{\sigma_{\max}}\big(x(\sigma_{\max})\big)
        + \int_{\sigma_{\min}}^{\sigma_{\max}} \frac{d - \operatorname{tr} J_D(x(\sigma), \sigma)}{\sigma}\, d\sigma,

    integrated by Heun's method over ``sigmas`` (decreasing, as for the samplers, all > 0; it runs
    them upwards), the divergence from exact Jacobian-vector products (``torch.func.jvp``): all
    ``d`` of them (``trace="exact"``), or ``n_probes`` Rademacher probes, fixed along the path
    (``trace="hutchinson"``, unbiased).

    :param prior_log_prob: :math:`\log p_{\sigma_{\max}}`; default :math:`\mathcal N(0, \sigma_{\max}^2 I)`,
        right when :math:`\sigma_{\max}` dwarfs the data.
    :returns: ``(B,)`` log-densities; see :func:`bits_per_dim` for images.
    """
    if trace not in ("exact", "hutchinson"):
        raise ValueError(f"trace: expected 'exact' or 'hutchinson', got {trace!r}")
    require_every_level(denoiser, "the ODE likelihood")
    check_chain_inputs(x, generator)
    levels = decreasing_levels("sigmas", sigmas, final_zero=True)
    if levels[-1] <= 0:
        raise ValueError("sigmas: the likelihood path starts at the smallest level, which must be > 0")
    ascending = levels[::-1]
    probes = rademacher(positive_int("n_probes", n_probes), x, generator) if trace == "hutchinson" else None
    total = x.new_zeros(x.shape[0])
    for s_a, s_b in itertools.pairwise(ascending):
        h = s_b - s_a
        with torch.no_grad():
            f_a = ode_derivative(denoiser, x, s_a)
        div_a = _divergence(denoiser, x, s_a, probes)
        x_euler = x + h * f_a
        with torch.no_grad():
            f_b = ode_derivative(denoiser, x_euler, s_b)
        div_b = _divergence(denoiser, x_euler, s_b, probes)
        x = x + 0.5 * h * (f_a + f_b)
        total += 0.5 * h * (div_a + div_b)
    s_max, d = ascending[-1], x[0].numel()
    if prior_log_prob is None:
        prior = -0.5 * (x.reshape(x.shape[0], -1) ** 2).sum(1) / s_max**2 - d * math.log(s_max * math.sqrt(2 * math.pi))
    else:
        prior = prior_log_prob(x)
    return (prior + total).detach()


def bits_per_dim(log_prob: torch.Tensor, dim: int, levels: int = 256) -> torch.Tensor:
    r"""Bits per dimension of data with ``levels`` values per pixel scaled to :math:`[0, 1]`, from the
    log-density of the dequantised data: :math:`\big(-\log p(x) / d + \log \text{levels}\big) / \log 2`
    (the density of the integer pixels is ``levels``:sup:`d` times smaller)."""
    positive_int("dim", dim)
    return (-log_prob / dim + math.log(levels)) / math.log(2)


class KSState(NamedTuple):
    r"""Kadkhodaie-Simoncelli's state beside ``y``: each chain's effective noise level
    :math:`\sigma_t` (B,), the level its next denoiser call is made at."""

    sigma: torch.Tensor


@torch.no_grad()
def kadkhodaie_simoncelli(denoiser, y0, *, h0: float = 0.01, beta: float = 0.01, sigma_start: float = 1.0,
                          sigma_stop: float = 0.01, mean: float = 0.5, max_steps: int = 10_000,
                          forward=None, measurements: torch.Tensor | None = None,
                          generator: torch.Generator | None = None, **common) -> SamplerResult:
    r"""Coarse-to-fine stochastic ascent (Kadkhodaie & Simoncelli 2021, Algorithms 1 and 2).

    From :math:`y_0 \sim \mathcal N(\text{mean}, \sigma_{start}^2 I)` (``y0`` a shape), or the given
    states ``y0``, each chain repeats, until its effective level falls below ``sigma_stop``:

    .. math::
        h_t = \frac{h_0 t}{1 + h_0 (t - 1)}, \quad d_t = D(y_{t-1}, \sigma_{t-1}) - y_{t-1}, \quad
        \sigma_t^2 = \frac{\lVert d_t \rVert^2}{N}, \quad
        \gamma_t^2 = \big((1 - \beta h_t)^2 - (1 - h_t)^2\big) \sigma_t^2, \quad
        y_t = y_{t-1} + h_t d_t + \gamma_t z_t.

    With ``forward`` :math:`A` and noiseless ``measurements`` :math:`x^c = A x` (their Algorithm 2,
    for an :math:`A` with orthonormal rows; here with the pseudo-inverse :math:`A^+`), the step keeps
    the prior's direction off the measured subspace and pulls onto the measurements,
    :math:`d_t = (I - A^+ A)\,(D(y_{t-1}) - y_{t-1}) + A^+ (x^c - A y_{t-1})`, from
    :math:`y_0 \sim \mathcal N\big((I - A^+ A)\,\text{mean} + A^+ x^c, \sigma_{start}^2 I\big)`:
    samples of the posterior :math:`p(x \mid A x = x^c)`. ``forward`` is what
    :func:`~scoredae.sampling.posterior.posterior_langevin` accepts: an ``(m, d)`` matrix, a
    deepinv LinearPhysics or a pair ``(A, A_adjoint)`` (then :math:`A A^\top = I` is assumed).

    The residual :math:`d_t = \sigma^2 \nabla \log p_\sigma(y_{t-1})` is a step up the score, and
    :math:`\sigma_t` the noise level it reveals: the step removes a fraction :math:`h_t` of the noise
    and puts back noise so that the level falls by :math:`1 - \beta h_t` only (:math:`\beta = 1`:
    no noise added, :math:`\beta \to 0`: the most). The paper's denoiser is blind; a
    noise-conditional one is called at each chain's previous effective level (``sigma_start`` at
    :math:`t = 1`), one level per chain. A chain that has stopped stays put while the others go on.

    :param y0: a shape ``(B, ...)`` or initial states.
    :param h0: :math:`h_0 \in (0, 1]`; :param beta: :math:`\beta \in (0, 1]`.
    :param max_steps: the cap on the steps; reaching it raises a ValueError.
    :returns: a :class:`~scoredae.sampling.loop.SamplerResult` of the final states :math:`y_T`,
        ``n_steps`` the steps the slowest chain took.
    """
    for name, value in (("h0", h0), ("beta", beta)):
        if not 0 < finite_number(name, value) <= 1:
            raise ValueError(f"{name}: expected a number in (0, 1], got {value!r}")
    positive("sigma_start", sigma_start)
    positive("sigma_stop", sigma_stop)
    if not sigma_stop < sigma_start:
        raise ValueError(f"sigma_stop: expected it below sigma_start = {sigma_start:g}, got {sigma_stop:g}")
    positive_int("max_steps", max_steps)
    require_every_level(denoiser, "Kadkhodaie-Simoncelli")
    if (forward is None) != (measurements is None):
        raise ValueError("forward and measurements: give both (Algorithm 2) or neither (Algorithm 1)")
    if not isinstance(y0, torch.Tensor):
        device = generator.device if generator is not None else "cpu"
        y0 = mean + sigma_start * randn(tuple(y0), generator, device=device)
    check_chain_inputs(y0, generator)
    residual = lambda y, sigma: denoiser(y, sigma) - y
    if forward is not None:
        op = linear_operator(forward, y0)
        A, pinv = op.A, op.pinv
        xc = measurements.to(y0)
        y0 = y0 - pinv(A(y0) - xc)  # the start's mean moved onto the measurements

        def residual(y, sigma):  # Algorithm 2
            f = denoiser(y, sigma) - y
            return f - pinv(A(f)) + pinv(xc - A(y))

    def step(y, state: KSState, t):
        sigma = state.sigma
        h = h0 * t / (1 + h0 * (t - 1))
        d = residual(y, sigma)
        level = d.reshape(len(d), -1).square().mean(1).sqrt()  # (B,) effective sigma of y_{t-1}
        gamma = math.sqrt(max((1 - beta * h) ** 2 - (1 - h) ** 2, 0.0)) * level
        z = randn(y.shape, generator, dtype=y.dtype, device=y.device)
        moved = y + h * d + gamma.reshape(-1, *[1] * (y.ndim - 1)) * z
        active = sigma >= sigma_stop  # (B,) chains still running
        y = torch.where(active.reshape(-1, *[1] * (y.ndim - 1)), moved, y)
        return y, KSState(torch.where(active, level, sigma))

    spec = LoopSpec("Kadkhodaie-Simoncelli", until=lambda y, state: (state.sigma < sigma_stop).all(), stationary=False)
    result = run_chain(step, y0, KSState(y0.new_full((y0.shape[0],), sigma_start)), max_steps, spec, **common)
    sigma = result.state.sigma
    if not bool((sigma < sigma_stop).all()):
        raise ValueError(f"max_steps: {max_steps} steps did not bring every chain below sigma_stop = "
                         f"{sigma_stop:g} (largest effective sigma {float(sigma.max()):.3g}); raise h0 or beta")
    return result
