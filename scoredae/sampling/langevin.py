r"""The Langevin family: ULA, MALA and annealed Langevin, each a step on the shared loop.

Common keyword arguments (``burn_in``, ``thinning``, ``record_every``, ``callback``, ``progress``,
``max_norm``) are those of :func:`~scoredae.sampling.loop.run_chain`; ``generator`` is a
:class:`torch.Generator` on the device of ``x0``, or :class:`~scoredae.rng.RowGenerators`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import NamedTuple

import torch

from .._checks import decreasing_levels, per_row, positive, positive_int
from ..rng import rand
from .loop import LoopSpec, SamplerResult, check_chain_inputs, langevin_move, run_chain


@torch.no_grad()
def ula(score: Callable, x0: torch.Tensor, step_size: float, n_steps: int, *,
        generator: torch.Generator | None = None,
        burn_in: int = 0, thinning: int = 1, progress: bool = False, record_every: int | None = None,
        callback: Callable | None = None, max_norm: float | None = None) -> SamplerResult:
    r"""Unadjusted Langevin algorithm (Roberts & Tweedie 1996; Durmus & Moulines 2017):

    .. math::
        x_{k+1} = x_k + \eta\, \nabla \log \pi(x_k) + \sqrt{2\eta}\, z_k, \qquad z_k \sim \mathcal N(0, I),

    the Euler-Maruyama discretisation of :math:`dX_t = \nabla \log \pi(X_t)\,dt + \sqrt 2\, dW_t`,
    whose stationary law is :math:`\pi`. The noise must be :math:`\sqrt{2\eta}`: with
    :math:`\sqrt{\eta}` the same iteration discretises :math:`dX = \nabla \log \pi\,dt + dW`, whose
    stationary law is :math:`\propto \pi^2` (for a Gaussian: half the variance). The chain itself is
    biased by :math:`O(\eta)`: on :math:`\mathcal N(0, s^2)` its stationary variance is
    :math:`s^2 / (1 - \eta / (2 s^2))`.

    :param score: ``score(x) -> grad log pi(x)``, the shape of ``x``.
    :param x0: initial states ``(B, *S)``, one chain per row.
    :param step_size: :math:`\eta > 0`.
    :param n_steps: number of steps.
    """
    positive("step_size", step_size)
    check_chain_inputs(x0, generator)

    def step(x, state, t):
        return langevin_move(x, score(x), step_size, generator), state

    return run_chain(step, x0, None, n_steps, LoopSpec("ULA", hint=f" (step_size={step_size:g})"),
                     burn_in=burn_in, thinning=thinning, progress=progress, record_every=record_every, callback=callback, max_norm=max_norm)


def _log_q(to: torch.Tensor, frm: torch.Tensor, grad: torch.Tensor, eta: float) -> torch.Tensor:
    r"""Log proposal density up to a constant, :math:`-\lVert x' - x - \eta \nabla \log \pi(x)\rVert^2 / (4\eta)`, (B,)."""
    return -(to - frm - eta * grad).reshape(to.shape[0], -1).square().sum(1) / (4 * eta)


class MALAState(NamedTuple):
    r"""MALA's state beside ``x``: :math:`\log \pi(x)` (B,), :math:`\nabla \log \pi(x)` (the shape
    of ``x``), the number of accepted proposals of each chain (B,) and the number of proposals made
    to each."""

    log_prob: torch.Tensor
    grad: torch.Tensor
    accepted: torch.Tensor
    proposals: int = 0

    @property
    def acceptance_rate(self) -> float:
        """The fraction of accepted proposals over all chains and steps (read on the host)."""
        return float(self.accepted.sum()) / (len(self.accepted) * max(self.proposals, 1))


@torch.no_grad()
def mala(log_prob: Callable, score: Callable, x0: torch.Tensor, step_size: float, n_steps: int, *,
         generator: torch.Generator | None = None,
         burn_in: int = 0, thinning: int = 1, progress: bool = False, record_every: int | None = None,
         callback: Callable | None = None, max_norm: float | None = None) -> SamplerResult:
    r"""Metropolis-adjusted Langevin algorithm (Roberts & Tweedie 1996), per chain.

    Propose the Langevin move :math:`x' = x + \eta \nabla \log \pi(x) + \sqrt{2\eta}\, z` and accept
    it with probability

    .. math::
        \min\Big(1, \frac{\pi(x')\, q(x \mid x')}{\pi(x)\, q(x' \mid x)}\Big), \qquad
        q(x' \mid x) = \mathcal N\big(x'; x + \eta \nabla \log \pi(x), 2\eta I\big),

    so that :math:`\pi` is exactly stationary for every :math:`\eta`. The result's ``state`` is a
    :class:`MALAState`; ``state.acceptance_rate`` the fraction of accepted proposals over all chains
    and steps.

    :param log_prob: ``log_prob(x) -> log pi(x)`` up to a constant, shape ``(B,)``.
    :param score: ``score(x) -> grad log pi(x)``, the shape of ``x``.
    """
    positive("step_size", step_size)
    check_chain_inputs(x0, generator)
    log_p0 = log_prob(x0)
    if log_p0.shape != x0.shape[:1]:
        raise ValueError(f"log_prob: expected one value per chain, shape {tuple(x0.shape[:1])}, "
                         f"got {tuple(log_p0.shape)}")
    if not bool(torch.isfinite(log_p0).all()):  # every proposal would be rejected: the chain would freeze
        raise ValueError("log_prob: expected finite values at x0, got NaN or inf")

    def step(x, state: MALAState, t):
        prop = langevin_move(x, state.grad, step_size, generator)
        log_p_prop, grad_prop = log_prob(prop), score(prop)
        log_ratio = (log_p_prop - state.log_prob + _log_q(x, prop, grad_prop, step_size)
                     - _log_q(prop, x, state.grad, step_size))
        u = rand(x.shape[:1], generator, dtype=x.dtype, device=x.device)
        accept = torch.log(u) < log_ratio  # (B,); a NaN ratio rejects
        rows = per_row(accept, x)  # (B, 1, ..., 1)
        return torch.where(rows, prop, x), MALAState(
            torch.where(accept, log_p_prop, state.log_prob), torch.where(rows, grad_prop, state.grad),
            state.accepted + accept, state.proposals + 1)

    start = MALAState(log_p0, score(x0), torch.zeros(x0.shape[0], dtype=torch.long, device=x0.device))
    return run_chain(step, x0, start, n_steps, LoopSpec("MALA", hint=f" (step_size={step_size:g})"),
                     burn_in=burn_in, thinning=thinning, progress=progress, record_every=record_every,
                     callback=callback, max_norm=max_norm)


def geometric_sigmas(sigma_max: float, sigma_min: float, n: int) -> torch.Tensor:
    r"""The decreasing ladder :math:`\sigma_i = \sigma_\max (\sigma_\min / \sigma_\max)^{(i-1)/(n-1)}`,
    :math:`i = 1..n` (Song & Ermon 2019), float64 of shape ``(n,)``."""
    positive_int("n", n)
    positive("sigma_min", sigma_min)
    positive("sigma_max", sigma_max)
    if not (isinstance(sigma_max, (int, float)) and sigma_max > sigma_min and n >= 2):
        raise ValueError(f"expected sigma_max > sigma_min and n >= 2, got sigma_max={sigma_max!r}, "
                         f"sigma_min={sigma_min!r}, n={n!r}")
    return torch.logspace(math.log10(sigma_max), math.log10(sigma_min), n, dtype=torch.float64)


@torch.no_grad()
def annealed_langevin(score: Callable, x0: torch.Tensor, sigmas: Sequence[float], n_steps_each: int,
                      eps: float, *, final_denoise: bool = False, generator: torch.Generator | None = None,
                      burn_in: int = 0, thinning: int = 1, progress: bool = False,
                      record_every: int | None = None, callback: Callable | None = None,
                      max_norm: float | None = None) -> SamplerResult:
    r"""Annealed Langevin dynamics (Song & Ermon 2019, Algorithm 1).

    For each level :math:`i = 1..L` of the decreasing ``sigmas``, with
    :math:`\alpha_i = \epsilon\, \sigma_i^2 / \sigma_L^2`, run ``n_steps_each`` steps of

    .. math::
        x_t = x_{t-1} + \frac{\alpha_i}{2}\, s(x_{t-1}, \sigma_i) + \sqrt{\alpha_i}\, z_t,

    i.e. the Langevin move with :math:`\eta = \alpha_i / 2`. With ``final_denoise`` the returned
    ``samples`` are Tweedie's denoised :math:`x + \sigma_L^2 s(x, \sigma_L)` (the final denoising
    step of Jolicoeur-Martineau et al. 2021); ``mean``, ``var`` and ``trajectory`` are over
    the Langevin states, whose steps are numbered ``1 .. L * n_steps_each``.

    :param score: noise-conditional ``score(x, sigma) -> grad log p_sigma(x)``, sigma a float.
    """
    levels = decreasing_levels("sigmas", sigmas)
    positive_int("n_steps_each", n_steps_each)
    positive("eps", eps)
    check_chain_inputs(x0, generator)
    etas = [eps * s**2 / levels[-1] ** 2 / 2 for s in levels]  # alpha_i / 2

    def step(x, state, t):
        i = (t - 1) // n_steps_each
        return langevin_move(x, score(x, levels[i]), etas[i], generator), state

    spec = LoopSpec("annealed Langevin", hint=f" (eps={eps:g})", level_of=lambda t: levels[(t - 1) // n_steps_each])
    result = run_chain(step, x0, None, len(levels) * n_steps_each, spec,
                     burn_in=burn_in, thinning=thinning, progress=progress, record_every=record_every, callback=callback, max_norm=max_norm)
    if final_denoise:
        result.samples = result.samples + levels[-1] ** 2 * score(result.samples, levels[-1])
    return result
