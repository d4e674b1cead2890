r"""Posterior sampling as optimisation: RED-diff (Mardani et al., ICLR 2024), which fits one point
per chain to the observation under a denoising-diffusion regulariser."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from .._checks import positive
from ..rng import randn
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
    authors' code; ``x_T`` gives the number of chains, its values are not used), that minimises
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
    op, y, noise_sigma, levels = posterior_inputs(denoiser, y, forward, noise_sigma, x_T, sigmas, generator, "RED-diff")
    positive("lam", lam)
    positive("lr", lr)
    if len(betas) != 2 or not all(0 <= float(b) < 1 for b in betas):
        raise ValueError(f"betas: expected two numbers in [0, 1), Adam's decay rates, got {betas!r}")
    if weighting not in WEIGHTINGS:
        raise ValueError(f"weighting: expected one of {WEIGHTINGS}, got {weighting!r}")
    power = {"linear": 1.0, "sqrt": 0.5, "constant": 0.0}[weighting]
    mu_0 = op.pinv(y).to(x_T.dtype).expand_as(x_T).clone()

    def step(mu, state, i):
        sigma = levels[i - 1]
        eps = randn(mu.shape, generator, dtype=mu.dtype, device=mu.device)
        x = mu + sigma * eps
        prior = (lam * sigma**power / sigma) * (mu - denoiser(x, sigma))
        grad = op.A_adjoint(op.A(mu) - y) / noise_sigma**2 + prior
        return adam_update(mu, grad, state, lr, betas), state

    spec = LoopSpec("RED-diff", level_of=lambda i: levels[i - 1], stationary=False)
    state = AdamState(torch.zeros_like(mu_0), torch.zeros_like(mu_0))
    return run_chain(step, mu_0, state, len(levels) - 1, spec,
                     progress=progress, record_every=record_every, callback=callback, max_norm=max_norm)
