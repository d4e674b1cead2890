r"""Posterior sampling as optimisation: RED-diff (Mardani et al., ICLR 2024), which fits one point
per chain to the observation under a denoising-diffusion regulariser; and MGPS (Moufad et al., ICLR
2025), which fits a Gaussian to each transition's posterior at a midpoint level by variational
inference."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from .._checks import positive, positive_int, unit_interval
from ..rng import randn
from ..sampling.ancestral import ancestral_step
from ..sampling.loop import LoopSpec, SamplerResult, run_chain
from .inputs import posterior_inputs

WEIGHTINGS = ("linear", "sqrt", "constant")


@dataclass
class AdamState:
    """Adam's first and second moments of the gradient and its step count, per chain."""

    first: torch.Tensor
    second: torch.Tensor
    steps: int = 0


def adam_update(x: torch.Tensor, grad: torch.Tensor, state: AdamState, lr: float, betas: tuple[float, float],
                eps: float = 1e-8) -> torch.Tensor:
    r"""One step of Adam (Kingma & Ba 2015, Algorithm 1), as ``torch.optim.Adam`` takes it:
    :math:`m \leftarrow \beta_1 m + (1 - \beta_1) g`, :math:`v \leftarrow \beta_2 v + (1 - \beta_2) g^2`,
    :math:`x \leftarrow x - \text{lr}\, \hat m / (\sqrt{\hat v} + \epsilon)` with the bias-corrected
    :math:`\hat m = m / (1 - \beta_1^k)`, :math:`\hat v = v / (1 - \beta_2^k)`."""
    state.steps += 1
    state.first.mul_(betas[0]).add_(grad, alpha=1 - betas[0])
    state.second.mul_(betas[1]).addcmul_(grad, grad, value=1 - betas[1])
    m_hat = state.first / (1 - betas[0] ** state.steps)
    v_hat = state.second / (1 - betas[1] ** state.steps)
    return x - lr * m_hat / (v_hat.sqrt() + eps)


@torch.no_grad()
def red_diff(denoiser, y, forward, noise_sigma: float, x_T: torch.Tensor, sigmas, *, lam: float = 0.25,
             weighting: str = "linear", lr: float = 0.1, betas: tuple[float, float] = (0.9, 0.99),
             generator: torch.Generator | None = None, progress: bool = False, record_every: int | None = None,
             callback: Callable | None = None, max_norm: float | None = None) -> SamplerResult:
    r"""Regularisation by denoising diffusion (Mardani et al. 2024, their eq. 11 and Algorithm 1), in the
    variance-exploding form. Each chain is one point :math:`\mu`, started at :math:`A^+ y` (as the
    authors' code; ``x_T`` gives the number of chains, its values are not used; for a nonlinear
    ``forward(x)`` :math:`f`, at :math:`D(x_T, \sigma_0)`, the misfit's gradient then
    :math:`J_f(\mu)^\top (f(\mu) - y)`), that minimises
    :math:`\lVert y - A \mu \rVert^2 / 2\sigma_y^2` plus the score-matching regulariser of the
    diffusion along the decreasing levels: at level :math:`\sigma_i`, with fresh :math:`\epsilon`,
    :math:`x = \mu + \sigma_i \epsilon` and the denoiser's noise estimate
    :math:`\hat\epsilon = (x - D(x, \sigma_i)) / \sigma_i`, Adam steps along

    .. math::
        g &= A^\top (A \mu - y) / \sigma_y^2 + \lambda_i\, (\hat\epsilon - \epsilon) \\
          &= A^\top (A \mu - y) / \sigma_y^2 + \frac{\lambda_i}{\sigma_i} \big(\mu - D(\mu + \sigma_i \epsilon, \sigma_i)\big),

    with :math:`\lambda_i = \lambda \sigma_i` (``weighting="linear"``, the paper's
    :math:`\lambda \sigma_t / \alpha_t`, inversely proportional to the square root of the
    signal-to-noise ratio), :math:`\lambda \sqrt{\sigma_i}` (``"sqrt"``) or :math:`\lambda`
    (``"constant"``, InverseBench's ``algo/reddiff.py`` default). One denoiser call a level above 0;
    ``lr`` and ``betas`` are Adam's (:func:`adam_update`); ``lr`` is in the data's units and wants
    tuning to its scale. The method is an optimiser: chains differ only by their :math:`\epsilon`
    draws and gather near the modes that fit :math:`y`, so the spread of the result is not the
    posterior's.
    """
    op, y, noise_sigma, levels = posterior_inputs(denoiser, y, forward, noise_sigma, x_T, sigmas, generator, "RED-diff",
                                                  nonlinear=True)
    positive("lam", lam)
    positive("lr", lr)
    if len(betas) != 2 or not all(0 <= float(b) < 1 for b in betas):
        raise ValueError(f"betas: expected two numbers in [0, 1), Adam's decay rates, got {betas!r}")
    if weighting not in WEIGHTINGS:
        raise ValueError(f"weighting: expected one of {WEIGHTINGS}, got {weighting!r}")
    power = {"linear": 1.0, "sqrt": 0.5, "constant": 0.0}[weighting]
    mu_0 = (op.pinv(y).to(x_T.dtype).expand_as(x_T) if op.linear else denoiser(x_T, levels[0])).clone()

    def step(mu, state, i):
        sigma = levels[i - 1]
        eps = randn(mu.shape, generator, dtype=mu.dtype, device=mu.device)
        x = mu + sigma * eps
        prior = (lam * sigma**power / sigma) * (mu - denoiser(x, sigma))
        grad = op.adjoint_at(mu, op.A(mu) - y) / noise_sigma**2 + prior
        return adam_update(mu, grad, state, lr, betas), state

    spec = LoopSpec("RED-diff", level_of=lambda i: levels[i - 1], stationary=False)
    state = AdamState(torch.zeros_like(mu_0), torch.zeros_like(mu_0))
    return run_chain(step, mu_0, state, len(levels) - 1, spec,
                     progress=progress, record_every=record_every, callback=callback, max_norm=max_norm)


def _gaussian_kl(mean, log_std, prior_mean, prior_var) -> torch.Tensor:
    r""":math:`\mathrm{KL}\big(\mathcal N(\mu, \operatorname{diag} e^{2\lambda}) \,\|\, \mathcal N(m, v I)\big)`
    summed over every coordinate of every chain, less its constant :math:`\tfrac12 (\log v - 1)` each."""
    return 0.5 * (((mean - prior_mean).square() + (2 * log_std).exp()) / prior_var - 2 * log_std).sum()


def _fit_gaussian(objective, mean, log_std, steps: int, update):
    r"""``steps`` gradient steps on ``objective(mean, log_std)`` (summed over the chains, so each
    chain's gradient is its own), ``update(params, grads)`` giving the new pair."""
    for _ in range(steps):
        with torch.enable_grad():
            params = [mean.detach().requires_grad_(), log_std.detach().requires_grad_()]
            grads = torch.autograd.grad(objective(*params), params)
        mean, log_std = update([p.detach() for p in params], grads)
    return mean, log_std


def _midpoint_loss(denoiser, op, y, noise_sigma, mean, log_std, prior_mean, prior_var, sigma_mid, generator):
    r"""MGPS's objective per chain, summed: :math:`\lVert y - A D(\mu + e^{\lambda} z, \sigma_\ell)
    \rVert^2 / 2\sigma_y^2 + \mathrm{KL}\big(\mathcal N(\mu, e^{2\lambda}) \,\|\,
    \mathcal N(m, s^2 I)\big)` up to a constant, with one fresh :math:`z`."""
    z = randn(mean.shape, generator, dtype=mean.dtype, device=mean.device)
    denoised = denoiser(mean + log_std.exp() * z, sigma_mid)
    misfit = (op.A(denoised) - y).square().sum() / (2 * noise_sigma**2)
    return misfit + _gaussian_kl(mean, log_std, prior_mean, prior_var)


def _gradient_steps(i: int, n: int, few: int, many: int) -> int:
    """The authors' rule for their Gaussian-mixture runs, by levels from the start (1..n): ``many``
    in the first ten and every tenth before the last twenty, ``few`` elsewhere."""
    if n - i < 20:
        return few
    return many if i <= 10 or (n - i) % 10 == 0 else few


@torch.no_grad()
def mgps(denoiser, y, forward, noise_sigma: float, x_T: torch.Tensor, sigmas, *, midpoint: float = 0.5,
         lr: float = 0.1, gradient_steps: int = 2, boosted_steps: int = 20, betas: tuple[float, float] = (0.9, 0.999),
         generator: torch.Generator | None = None, progress: bool = False, record_every: int | None = None,
         callback: Callable | None = None, max_norm: float | None = None) -> SamplerResult:
    r"""Midpoint guidance posterior sampling (Moufad et al. 2025, Algorithm 1 without its warm start),
    variance exploding. The transition from :math:`\sigma_i` to :math:`\sigma_{i+1}` goes through a
    midpoint level :math:`\sigma_\ell < \sigma_{i+1}`: the posterior of :math:`x_\ell` given
    :math:`x_i` and :math:`y` is approximated by a diagonal Gaussian
    :math:`q = \mathcal N(\mu, \operatorname{diag} e^{2\lambda})` fitted by Adam on the
    negative evidence lower bound

    .. math::
        \frac{\lVert y - A D(x_\ell, \sigma_\ell) \rVert^2}{2 \sigma_y^2}
        + \mathrm{KL}\big(q \,\|\, \mathcal N(m_i, s_i^2 I)\big), \quad x_\ell \sim q,

    the prior transition :math:`p(x_\ell \mid x_i)` replaced by the bridge from :math:`x_i` to
    :math:`\hat x_0 = D(x_i, \sigma_i)`, :math:`m_i = \hat x_0 + (\sigma_\ell^2 / \sigma_i^2)(x_i - \hat x_0)`,
    :math:`s_i^2 = \sigma_\ell^2 (1 - \sigma_\ell^2 / \sigma_i^2)`; then :math:`x_\ell \sim q` and
    :math:`x_{i+1}` is drawn from the Brownian bridge between :math:`x_i` at :math:`\sigma_i` and
    :math:`x_\ell` at :math:`\sigma_\ell`. As in the authors' code (``YazidJanati/mgps``,
    ``posterior_samplers/mgps.py``) :math:`\mu` starts at the bridge towards the previous
    step's :math:`D(x_\ell, \sigma_\ell)`, :math:`\lambda` at :math:`\log s_i`, and a last step to
    level 0 returns :math:`D(x, \sigma_{N-1})`.

    The midpoint is the authors' :math:`\ell = \lfloor \alpha\, t_{i+1} \rfloor` (at least 1),
    ``midpoint`` :math:`= \alpha`, with the time :math:`t` of a level its count of levels to 0 on
    ``sigmas`` (theirs count DDPM steps). ``lr`` is Adam's rate in the variance-preserving units of
    the authors' code: :math:`\text{lr} \sqrt{1 + \sigma_\ell^2}` for :math:`\mu` here,
    ``lr`` for :math:`\lambda`; the gradient steps per level follow the authors' rule for Gaussian
    mixtures (``boosted_steps`` in the first ten levels and every tenth before the last twenty,
    ``gradient_steps`` elsewhere). Costs per level two denoiser calls and, per gradient step, one
    call and one vector-Jacobian product.
    """
    op, y, noise_sigma, levels = posterior_inputs(denoiser, y, forward, noise_sigma, x_T, sigmas, generator, "MGPS")
    unit_interval("midpoint", midpoint)
    positive("lr", lr)
    few, many = positive_int("gradient_steps", gradient_steps), positive_int("boosted_steps", boosted_steps)
    n = len(levels) - 1
    carry = {"previous": denoiser(x_T, levels[0])}  # D at the last midpoint, where the next fit starts

    def step(x, state, i):
        sigma, sigma_next = levels[i - 1], levels[i]
        if sigma_next == 0:
            return denoiser(x, sigma), state
        sigma_mid = levels[n - min(max(1, math.floor(midpoint * (n - i))), n - i)]
        prior_var = sigma_mid**2 * (1 - sigma_mid**2 / sigma**2)
        shrink = sigma_mid**2 / sigma**2  # the bridge's mean from x_i towards a clean estimate
        denoised = denoiser(x, sigma)
        prior_mean = denoised + shrink * (x - denoised)
        mean = carry["previous"] + shrink * (x - carry["previous"])
        log_std = torch.full_like(x, 0.5 * math.log(prior_var))
        rates = (lr * math.sqrt(1 + sigma_mid**2), lr)
        moments = [AdamState(torch.zeros_like(x), torch.zeros_like(x)) for _ in range(2)]
        mean, log_std = _fit_gaussian(
            lambda m, s: _midpoint_loss(denoiser, op, y, noise_sigma, m, s, prior_mean, prior_var, sigma_mid, generator),
            mean, log_std, _gradient_steps(i, n, few, many),
            lambda params, grads: [adam_update(*a, betas) for a in zip(params, grads, moments, rates)])
        x_mid = mean + log_std.exp() * randn(x.shape, generator, dtype=x.dtype, device=x.device)
        carry["previous"] = denoiser(x_mid, sigma_mid)
        span, rest = math.sqrt(sigma**2 - sigma_mid**2), math.sqrt(sigma_next**2 - sigma_mid**2)
        return ancestral_step(x, x_mid, span, rest, 1.0, generator), state

    spec = LoopSpec("MGPS", level_of=lambda i: levels[i - 1], stationary=False)
    return run_chain(step, x_T, None, n, spec, progress=progress, record_every=record_every, callback=callback,
                     max_norm=max_norm)
