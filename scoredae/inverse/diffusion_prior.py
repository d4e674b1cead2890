r"""Posterior sampling for :math:`y = A x + \sigma_y n` with a diffusion prior: DPS, PiGDM, TMPD (the
likelihood scores of :mod:`scoredae.inverse.likelihood_scores` on one ancestral step), DDRM and DiffPIR.

All share one signature, ``name(denoiser, y, forward, noise_sigma, x_T, sigmas, *, generator, ...)``:
``forward`` an ``(m, d)`` matrix, a deepinv ``LinearPhysics`` or a pair ``(A, A_adjoint)``
(:func:`~scoredae.inverse.operators.linear_operator`), ``y`` one observation per chain or one for
all, ``x_T`` the initial states at ``sigmas[0]`` (e.g. ``sigmas[0] * randn``), ``sigmas`` the
decreasing levels :math:`\sigma_0 > \dots > \sigma_N \ge 0` of the variance-exploding diffusion
:math:`x_\sigma = x_0 + \sigma n` (e.g. :func:`~scoredae.sampling.edm.karras_sigmas`); one
denoiser call per level, the result a :class:`~scoredae.sampling.loop.SamplerResult` (no mean or
variance: the chains are transported, not stationary).

The likelihood-score methods move each chain with the ancestral step (DDIM's, Song et al. 2021, eq. 12, in the
variance-exploding form) of the posterior denoiser :math:`\hat D = D + \sigma_i^2 g`,
:math:`g \approx \nabla \log p(y \mid x_{\sigma_i})`:

.. math::
    x_{i+1} = \hat D + \sqrt{\sigma_{i+1}^2 - c_i^2}\, \frac{x_i - \hat D}{\sigma_i} + c_i z, \qquad
    c_i = \eta\, \sigma_{i+1} \sqrt{1 - \sigma_{i+1}^2 / \sigma_i^2},

which for :math:`\eta = 1` is :math:`x_i + (\sigma_i^2 - \sigma_{i+1}^2)\,(\nabla \log p_{\sigma_i}
+ g) + c_i z`, the reverse SDE of the posterior (DDPM's ancestral sampling), and for
:math:`\eta = 0` the Euler step of its probability-flow ODE.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from .._checks import decreasing_levels, per_row, positive, unit_interval
from ..rng import randn
from ..sampling.ancestral import ancestral_step
from ..sampling.loop import LoopSpec, SamplerResult, check_chain_inputs, run_chain
from ..score import require_every_level
from .inputs import posterior_inputs
from .likelihood_scores import dps_likelihood_score, pigdm_likelihood_score, tmpd_likelihood_score
from .operators import LinearOperator, spectral_observation


def _ancestral(score_y, x_T, levels, eta, generator, desc, loop: dict, kick=None) -> SamplerResult:
    r"""The ancestral chain of the posterior denoiser :math:`D + \sigma^2 g`, ``score_y(x, sigma) -> (D, g)``;
    ``kick(x_next, denoised, grad)``, applied after the prior's ancestral step, replaces that form for
    samplers that add their own gradient step (DPS's normalised one)."""

    def step(x, state, i):
        sigma, sigma_next = levels[i - 1], levels[i]
        denoised, grad = score_y(x, sigma)
        if kick is not None:
            return kick(ancestral_step(x, denoised, sigma, sigma_next, eta, generator), denoised, grad), state
        return ancestral_step(x, denoised + sigma**2 * grad, sigma, sigma_next, eta, generator), state

    spec = LoopSpec(desc, hint="; check the likelihood score and that the denoiser covers the levels",
                    level_of=lambda i: levels[i - 1], stationary=False)
    return run_chain(step, x_T, None, len(levels) - 1, spec, **loop)


@torch.no_grad()
def ancestral_posterior(denoiser, likelihood_score, x_T: torch.Tensor, sigmas, *, eta: float = 1.0,
                        generator: torch.Generator | None = None, progress: bool = False,
                        record_every: int | None = None, callback: Callable | None = None,
                        max_norm: float | None = None) -> SamplerResult:
    r"""The ancestral chain of :math:`\hat D = D + \sigma^2 g` for a given likelihood score
    ``likelihood_score(x, sigma)`` :math:`= g \approx \nabla \log p(y \mid x_\sigma)` (module
    docstring). With the exact :math:`g` of a Gaussian mixture
    (:meth:`~scoredae.mixtures.GaussianMixture.noised_likelihood`, the "oracle") and its
    exact denoiser, the chain samples the posterior up to the discretisation of the levels."""
    require_every_level(denoiser, "the ancestral posterior chain")
    check_chain_inputs(x_T, generator, name="x_T")
    levels = decreasing_levels("sigmas", sigmas, final_zero=True)
    return _ancestral(lambda x, s: (denoiser(x, s), likelihood_score(x, s)), x_T, levels, unit_interval("eta", eta),
                      generator, "ancestral posterior chain",
                        {"progress": progress, "record_every": record_every, "callback": callback, "max_norm": max_norm})


@torch.no_grad()
def dps(denoiser, y, forward, noise_sigma: float, x_T: torch.Tensor, sigmas, *, zeta: float | None = None,
        eta: float = 1.0, generator: torch.Generator | None = None,
        progress: bool = False, record_every: int | None = None, callback: Callable | None = None,
        max_norm: float | None = None) -> SamplerResult:
    r"""Diffusion posterior sampling (Chung et al. 2023): :math:`p(x_0 \mid x_t) \approx
    \delta(x_0 - D(x_t))`, so :math:`p(y \mid x_t) \approx \mathcal N(y; A D(x_t), \sigma_y^2 I)`
    (their eq. 11-16), :math:`g = J_D^\top A^\top (y - A D) / \sigma_y^2`. ``forward`` may also be any
    differentiable ``forward(x)``, a nonlinear :math:`f` (their section 3.2): then
    :math:`g = J_D^\top J_f(D)^\top (y - f(D)) / \sigma_y^2`.

    With ``zeta`` None, :math:`g` enters the posterior denoiser of the module docstring (the step
    of the Gaussian approximation itself). With ``zeta`` :math:`\zeta'`, the step of their
    Algorithm 1: the prior's ancestral step, then
    :math:`x_{i+1} \mathrel{-}= \zeta_i \nabla_{x_i} \lVert y - A D(x_i) \rVert^2`,
    :math:`\zeta_i = \zeta' / \lVert y - A D(x_i) \rVert`, that is
    :math:`x_{i+1} \mathrel{+}= 2 \zeta' \sigma_y^2 g / \lVert y - A D \rVert` per chain.

    deepinv's :class:`deepinv.sampling.DPS` (variance-exploding schedule, ancestral solver) is a
    third form: the guidance :math:`g = -w \nabla \lVert A D - y \rVert` (its ``weight`` :math:`w`)
    inside the reverse SDE, that is :func:`ancestral_posterior` with that likelihood score on its levels
    halved ([-1, 1] images), then a last denoiser call; the step of Algorithm 1 with the
    level-dependent :math:`\zeta'_i = w (\sigma_i^2 - \sigma_{i+1}^2) / 2`.
    """
    op, y, noise_sigma, levels = posterior_inputs(denoiser, y, forward, noise_sigma, x_T, sigmas, generator, "DPS",
                                                  nonlinear=True)
    score_y = dps_likelihood_score(denoiser, y, op, noise_sigma)
    kick = None
    if zeta is not None:
        positive("zeta", zeta)

        def kick(x_next, denoised, grad):
            norm = (y - op.A(denoised)).reshape(len(x_next), -1).norm(dim=1).clamp(min=1e-12)
            return x_next + per_row(2 * zeta * noise_sigma**2 / norm, x_next) * grad

    return _ancestral(score_y, x_T, levels, unit_interval("eta", eta), generator, "DPS",
                      {"progress": progress, "record_every": record_every, "callback": callback, "max_norm": max_norm}, kick)


@torch.no_grad()
def pigdm(denoiser, y, forward, noise_sigma: float, x_T: torch.Tensor, sigmas, *, data_variance: float = 1.0,
          eta: float = 1.0, generator: torch.Generator | None = None,
          progress: bool = False, record_every: int | None = None, callback: Callable | None = None,
          max_norm: float | None = None) -> SamplerResult:
    r"""Pseudoinverse-guided diffusion (Song et al. 2023): :math:`p(x_0 \mid x_t) \approx
    \mathcal N(D(x_t), r_t^2 I)`, :math:`r_t^2 = \sigma_t^2 \sigma_{data}^2 / (\sigma_t^2 + \sigma_{data}^2)`
    (their eq. 7 in the variance-exploding form; ``data_variance`` :math:`\sigma_{data}^2`, 1 in the
    paper), so :math:`g = J_D^\top A^\top (r_t^2 A A^\top + \sigma_y^2 I)^{-1} (y - A D)` (their eq. 8)."""
    op, y, noise_sigma, levels = posterior_inputs(denoiser, y, forward, noise_sigma, x_T, sigmas, generator, "PiGDM")
    score_y = pigdm_likelihood_score(denoiser, y, op, noise_sigma, positive("data_variance", data_variance))
    return _ancestral(score_y, x_T, levels, unit_interval("eta", eta), generator, "PiGDM",
                      {"progress": progress, "record_every": record_every, "callback": callback, "max_norm": max_norm})


@torch.no_grad()
def tmpd(denoiser, y, forward, noise_sigma: float, x_T: torch.Tensor, sigmas, *, covariance: str = "full",
         eta: float = 1.0, generator: torch.Generator | None = None,
         progress: bool = False, record_every: int | None = None, callback: Callable | None = None,
         max_norm: float | None = None) -> SamplerResult:
    r"""Tweedie moment projected diffusion (Boys et al. 2023): :math:`p(x_0 \mid x_t)` replaced by the
    Gaussian of its first two moments, :math:`\mathcal N(D, \sigma_t^2 J_D)` (second-order Tweedie),
    so :math:`p(y \mid x_t) \approx \mathcal N(y; A D, \sigma_y^2 I + \sigma_t^2 A J_D A^\top)` and
    :math:`g = J_D^\top A^\top (\sigma_y^2 I + \sigma_t^2 A J_D A^\top)^{-1} (y - A D)` (their eq. 9-11);
    ``covariance`` ``"full"`` or ``"row_sum"`` (:func:`~scoredae.inverse.likelihood_scores.tmpd_likelihood_score`)."""
    op, y, noise_sigma, levels = posterior_inputs(denoiser, y, forward, noise_sigma, x_T, sigmas, generator, "TMPD")
    score_y = tmpd_likelihood_score(denoiser, y, op, noise_sigma, covariance)
    return _ancestral(score_y, x_T, levels, unit_interval("eta", eta), generator, "TMPD",
                      {"progress": progress, "record_every": record_every, "callback": callback, "max_norm": max_norm})


@torch.no_grad()
def ddrm(denoiser, y, forward, noise_sigma: float, x_T: torch.Tensor, sigmas, *, eta: float = 0.85,
         eta_b: float = 1.0, generator: torch.Generator | None = None,
         progress: bool = False, record_every: int | None = None, callback: Callable | None = None,
         max_norm: float | None = None) -> SamplerResult:
    r"""Denoising diffusion restoration models (Kawar et al. 2022, eq. 7-8), in the spectral domain of
    :math:`A = U \operatorname{diag}(s) V^\top`: with :math:`\bar x = V^\top x`,
    :math:`\bar y = \operatorname{diag}(s)^{-1} U^\top y` where :math:`s_j > 0`, the denoised
    :math:`\bar x_\theta = V^\top D(x_i, \sigma_i)` and :math:`t = \sigma_{i+1}`, coordinate by coordinate

    .. math::
        \bar x_{i+1} = \begin{cases}
        \bar x_\theta + \sqrt{1 - \eta^2}\, t\, (\bar x_i - \bar x_\theta) / \sigma_i + \eta t z & s_j = 0 \\
        \bar x_\theta + \sqrt{1 - \eta^2}\, t\, (\bar y - \bar x_\theta) / (\sigma_y / s_j) + \eta t z
            & t < \sigma_y / s_j \\
        (1 - \eta_b)\, \bar x_\theta + \eta_b \bar y + \sqrt{t^2 - \eta_b^2 \sigma_y^2 / s_j^2}\, z
            & t \ge \sigma_y / s_j,
        \end{cases}

    then :math:`x_{i+1} = V \bar x_{i+1}`; :math:`\sigma_y = 0` (noiseless) is allowed. ``forward``
    must have an SVD: a matrix or a :class:`deepinv.physics.DecomposablePhysics`.
    """
    op, y, noise_sigma, levels = posterior_inputs(denoiser, y, forward, noise_sigma, x_T, sigmas, generator, "DDRM", noiseless=True)
    unit_interval("eta", eta)
    unit_interval("eta_b", eta_b)
    v_adjoint, v, seen, y_bar, nsr = spectral_observation(op, y, noise_sigma, x_T)
    keep = math.sqrt(1 - eta**2)
    # each case is theta + a (x_bar - theta) + c (y_bar - theta) + d z, with per-coordinate a, c, d
    hidden = ~seen
    hidden_ones = hidden.to(x_T.dtype)
    seen_nsr = torch.where(seen, nsr, -math.inf)  # t < seen_nsr: the second case
    nsr_floor, above_c, above_var = nsr.clamp(min=1e-30), eta_b * seen.to(x_T.dtype), (eta_b * nsr) ** 2

    def step(x, state, i):
        sigma, t = levels[i - 1], levels[i]
        x_bar, theta = v_adjoint(x), v_adjoint(denoiser(x, sigma))
        z = randn(x_bar.shape, generator, dtype=x_bar.dtype, device=x_bar.device)
        below = t < seen_nsr
        a = hidden_ones * (keep * t / sigma)
        c = torch.where(below, (keep * t) / nsr_floor, above_c)
        d = torch.where(below | hidden, eta * t, (t * t - above_var).clamp_(min=0).sqrt_())
        return v(torch.addcmul(theta, a, x_bar - theta).addcmul_(c, y_bar - theta).addcmul_(d, z)), state

    spec = LoopSpec("DDRM", level_of=lambda i: levels[i - 1], stationary=False)
    return run_chain(step, x_T, None, len(levels) - 1, spec,
                     progress=progress, record_every=record_every, callback=callback, max_norm=max_norm)


def data_proximal(op: LinearOperator, x0: torch.Tensor, y: torch.Tensor, rho) -> torch.Tensor:
    r""":math:`\arg\min_z \lVert y - A z \rVert^2 + \rho \lVert z - x_0 \rVert^2
    = x_0 + A^\top (A A^\top + \rho I)^{-1} (y - A x_0)` (Woodbury)."""
    return x0 + op.A_adjoint(op.gram_solve(y - op.A(x0), 1.0, rho))


@torch.no_grad()
def diffpir(denoiser, y, forward, noise_sigma: float, x_T: torch.Tensor, sigmas, *, lam: float = 7.0,
            zeta: float = 0.1, generator: torch.Generator | None = None,
            progress: bool = False, record_every: int | None = None, callback: Callable | None = None,
            max_norm: float | None = None) -> SamplerResult:
    r"""Denoising diffusion models for plug-and-play image restoration (Zhu et al. 2023, Algorithm 1),
    in the variance-exploding form (their :math:`\bar\sigma_t` is our level :math:`\sigma_i`):

    .. math::
        \hat x_0 = \arg\min_z \lVert y - A z \rVert^2 + \rho_i \lVert z - D(x_i, \sigma_i) \rVert^2,
        \quad \rho_i = \lambda \sigma_y^2 / \sigma_i^2, \qquad
        x_{i+1} = \hat x_0 + \sigma_{i+1} \Big(\sqrt{1 - \zeta}\, \frac{x_i - \hat x_0}{\sigma_i}
        + \sqrt{\zeta}\, z\Big),

    the proximal step of :func:`data_proximal` (closed form with an SVD, conjugate gradients
    otherwise); ``lam`` :math:`\lambda > 0`, ``zeta`` :math:`\zeta \in [0, 1]`. deepinv's
    :class:`deepinv.sampling.DiffPIR` runs the same chain in the variance-preserving form, its
    ``lambda_`` twice this ``lam`` (its proximal step weighs :math:`\tfrac12 \lVert y - A z \rVert^2`),
    and returns the state at its last level instead of a final data step.
    """
    op, y, noise_sigma, levels = posterior_inputs(denoiser, y, forward, noise_sigma, x_T, sigmas, generator, "DiffPIR")
    positive("lam", lam)
    unit_interval("zeta", zeta)

    def step(x, state, i):
        sigma, sigma_next = levels[i - 1], levels[i]
        x0 = data_proximal(op, denoiser(x, sigma), y, lam * noise_sigma**2 / sigma**2)
        noise = randn(x.shape, generator, dtype=x.dtype, device=x.device)
        return x0 + sigma_next * (math.sqrt(1 - zeta) * (x - x0) / sigma + math.sqrt(zeta) * noise), state

    spec = LoopSpec("DiffPIR", level_of=lambda i: levels[i - 1], stationary=False)
    return run_chain(step, x_T, None, len(levels) - 1, spec,
                     progress=progress, record_every=record_every, callback=callback, max_norm=max_norm)
