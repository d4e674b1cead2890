r"""Coarse-to-fine stochastic ascent with a denoiser, after Kadkhodaie & Simoncelli 2021.

Their paper, "Stochastic solutions for linear inverse problems using the prior implicit in a
denoiser", gives two algorithms: Algorithm 1 samples the prior
(:func:`~scoredae.sampling.coarse_to_fine.kadkhodaie_simoncelli`); Algorithm 2, for linear
measurements, is :func:`~scoredae.inverse.constrained.kadkhodaie_simoncelli_constrained`. Both run
:func:`coarse_to_fine_ascent` with their own residual.

From initial states :math:`y_0`, each chain repeats, until its effective level falls below
``sigma_stop``:

.. math::
    h_t = \frac{h_0 t}{1 + h_0 (t - 1)}, \quad d_t = f(y_{t-1}, \sigma_{t-1}), \quad
    \sigma_t^2 = \frac{\lVert d_t \rVert^2}{N}, \quad
    \gamma_t^2 = \big((1 - \beta h_t)^2 - (1 - h_t)^2\big) \sigma_t^2, \quad
    y_t = y_{t-1} + h_t d_t + \gamma_t z_t,

with the residual :math:`f(y, \sigma) = D(y, \sigma) - y` in Algorithm 1. The residual
:math:`d_t = \sigma^2 \nabla \log p_\sigma(y_{t-1})` is a step up the score, and :math:`\sigma_t` the
noise level it reveals: the step removes a fraction :math:`h_t` of the noise and puts back noise so
that the level falls by :math:`1 - \beta h_t` only (:math:`\beta = 1`: no noise added,
:math:`\beta \to 0`: the most). The paper's denoiser is blind; a noise-conditional one is called at
each chain's previous effective level (``sigma_start`` at :math:`t = 1`), one level per chain. A
chain that has stopped stays put while the others go on.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import torch

from .._checks import finite_number, per_row, positive, positive_int
from ..rng import randn
from ..score import require_every_level
from .loop import LoopSpec, SamplerResult, check_chain_inputs, run_chain


class KSState(NamedTuple):
    r"""Kadkhodaie-Simoncelli's state beside ``y``: each chain's effective noise level
    :math:`\sigma_t` (B,), the level its next denoiser call is made at."""

    sigma: torch.Tensor


def start_states(y0, mean, sigma_start: float, generator) -> torch.Tensor:
    r"""``y0`` when it is a tensor; for a shape, draws of :math:`\mathcal N(\text{mean}, \sigma_{start}^2 I)`."""
    if isinstance(y0, torch.Tensor):
        return y0
    device = generator.device if generator is not None else "cpu"
    return mean + sigma_start * randn(tuple(y0), generator, device=device)


@torch.no_grad()
def coarse_to_fine_ascent(residual: Callable, y0: torch.Tensor, *, h0: float = 0.01, beta: float = 0.01,
                          sigma_start: float = 1.0, sigma_stop: float = 0.01, max_steps: int = 10_000,
                          generator: torch.Generator | None = None, progress: bool = False,
                          record_every: int | None = None, callback: Callable | None = None,
                          max_norm: float | None = None) -> SamplerResult:
    r"""The iteration of the module docstring for ``residual(y, sigma)`` :math:`= f` (``sigma`` the
    ``(B,)`` effective levels), from the states ``y0``.

    :param h0: :math:`h_0 \in (0, 1]`; :param beta: :math:`\beta \in (0, 1]`.
    :param max_steps: the cap on the steps; reaching it raises a ValueError.
    :returns: a :class:`~scoredae.sampling.loop.SamplerResult` of the final states :math:`y_T`,
        ``n_steps`` the steps the slowest chain took, its state a :class:`KSState`.
    """
    for name, value in (("h0", h0), ("beta", beta)):
        if not 0 < finite_number(name, value) <= 1:
            raise ValueError(f"{name}: expected a number in (0, 1], got {value!r}")
    positive("sigma_start", sigma_start)
    positive("sigma_stop", sigma_stop)
    if not sigma_stop < sigma_start:
        raise ValueError(f"sigma_stop: expected it below sigma_start = {sigma_start:g}, got {sigma_stop:g}")
    positive_int("max_steps", max_steps)
    check_chain_inputs(y0, generator, name="y0")

    def step(y, state: KSState, t):
        sigma = state.sigma
        h = h0 * t / (1 + h0 * (t - 1))
        d = residual(y, sigma)
        level = d.reshape(len(d), -1).square().mean(1).sqrt()  # (B,) effective sigma of y_{t-1}
        gamma = math.sqrt(max((1 - beta * h) ** 2 - (1 - h) ** 2, 0.0)) * level
        z = randn(y.shape, generator, dtype=y.dtype, device=y.device)
        moved = y + h * d + per_row(gamma, y) * z
        active = sigma >= sigma_stop  # (B,) chains still running
        return torch.where(per_row(active, y), moved, y), KSState(torch.where(active, level, sigma))

    spec = LoopSpec("Kadkhodaie-Simoncelli", until=lambda y, state: (state.sigma < sigma_stop).all(),
                    stationary=False)
    result = run_chain(step, y0, KSState(y0.new_full((y0.shape[0],), sigma_start)), max_steps, spec,
                       progress=progress, record_every=record_every, callback=callback, max_norm=max_norm)
    sigma = result.state.sigma
    if not bool((sigma < sigma_stop).all()):
        raise ValueError(f"max_steps: {max_steps} steps did not bring every chain below sigma_stop = "
                         f"{sigma_stop:g} (largest effective sigma {float(sigma.max()):.3g}); raise h0 or beta")
    return result


def kadkhodaie_simoncelli(denoiser, y0, *, h0: float = 0.01, beta: float = 0.01, sigma_start: float = 1.0,
                          sigma_stop: float = 0.01, mean: float = 0.5, max_steps: int = 10_000,
                          generator: torch.Generator | None = None, progress: bool = False,
                          record_every: int | None = None, callback: Callable | None = None,
                          max_norm: float | None = None) -> SamplerResult:
    r"""Kadkhodaie & Simoncelli's Algorithm 1: :func:`coarse_to_fine_ascent` with the residual
    :math:`D(y, \sigma) - y`, from :math:`y_0 \sim \mathcal N(\text{mean}, \sigma_{start}^2 I)` when
    ``y0`` is a shape ``(B, ...)``, or from the states ``y0``; the options are
    :func:`coarse_to_fine_ascent`'s."""
    require_every_level(denoiser, "Kadkhodaie-Simoncelli")
    return coarse_to_fine_ascent(lambda y, sigma: denoiser(y, sigma) - y, start_states(y0, mean, sigma_start, generator),
                                 h0=h0, beta=beta, sigma_start=sigma_start, sigma_stop=sigma_stop,
                                 max_steps=max_steps, generator=generator, progress=progress,
                                 record_every=record_every, callback=callback, max_norm=max_norm)
