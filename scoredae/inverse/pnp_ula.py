r"""Posterior sampling for linear inverse problems: PnP-ULA on :math:`y = A x + \sigma_y n`."""

from __future__ import annotations

from collections.abc import Callable

import torch

from .._checks import finite_number, positive
from ..sampling.loop import (
    LoopSpec,
    SamplerResult,
    check_chain_inputs,
    langevin_move,
    rms_max,
    run_chain,
)
from .operators import check_observation, linear_operator


@torch.no_grad()
def posterior_langevin(prior_score: Callable, y: torch.Tensor, forward, noise_sigma: float,
                       x0: torch.Tensor, step_size: float, n_steps: int, *, prior_sigma: float | None = None,
                       alpha: float = 1.0, clip: tuple[float, float] | None = None,
                       generator: torch.Generator | None = None,
                       burn_in: int = 0, thinning: int = 1, progress: bool = False,
                       record_every: int | None = None, callback: Callable | None = None,
                       max_norm: float | None = None) -> SamplerResult:
    r"""PnP-ULA (Laumont et al. 2022) for :math:`y = A x + \sigma_y n`:

    .. math::
        x_{k+1} = \Pi_{[a, b]}\Big(x_k + \eta\Big[\frac{A^\top (y - A x_k)}{\sigma_y^2}
        + \alpha\, s(x_k)\Big] + \sqrt{2\eta}\, z_k\Big),

    the Langevin move on :math:`\log p(y \mid x) + \alpha \log p(x)`, where :math:`s` is
    ``prior_score(x, prior_sigma)`` (the score of the smoothed prior :math:`p_{\sigma}`, e.g. a
    :class:`~scoredae.score.TweedieScore`) when ``prior_sigma`` is given, else ``prior_score(x)``.
    :math:`\Pi_{[a,b]}` clamps to the box ``clip`` (the projected variant of
    :class:`deepinv.sampling.ULA`); no projection when None.

    :param y: observations, the shape of ``A(x0)`` or broadcasting to it (one ``y`` for all chains).
    :param forward: an ``(m, d)`` matrix (``x`` flattened to ``(B, d)``), a
        :class:`deepinv.physics.LinearPhysics`, or a pair ``(A, A_adjoint)`` of callables.
    :param noise_sigma: :math:`\sigma_y > 0`.
    :param alpha: the prior's weight :math:`\alpha \ge 0`.

    With ``clip``, the divergence checks read the size of the move *before* it is clamped, so a
    chain that explodes is reported instead of sitting at the bounds: the result's ``state`` is the
    largest per-chain root-mean-square of an unclamped move (None without ``clip``).
    """
    positive("step_size", step_size)
    positive("noise_sigma", noise_sigma)
    finite_number("alpha", alpha, allow_zero=True)
    if prior_sigma is not None:
        positive("prior_sigma", prior_sigma)
    check_chain_inputs(x0, generator)
    op = linear_operator(forward, x0)
    A, A_adjoint = op.A, op.A_adjoint
    y = check_observation(y, op, x0)
    if clip is not None and not clip[0] < clip[1]:
        raise ValueError(f"clip: expected (a, b) with a < b, got {clip!r}")
    prior = (lambda x: prior_score(x)) if prior_sigma is None else (lambda x: prior_score(x, prior_sigma))

    def step(x, unclipped, t):  # the state: the largest unclamped size so far
        drift = A_adjoint(y - A(x)) / noise_sigma**2 + alpha * prior(x)
        x = langevin_move(x, drift, step_size, generator)
        if clip is None:
            return x, unclipped
        return x.clamp(*clip), torch.maximum(unclipped, rms_max(x))  # the largest unclamped size so far

    spec = LoopSpec("PnP-ULA" if prior_sigma is None else f"PnP-ULA, prior sigma {prior_sigma:.3g}", hint=f" (step_size={step_size:g})",
                    size_of=None if clip is None else (lambda x, unclipped: unclipped))
    return run_chain(step, x0, None if clip is None else rms_max(x0), n_steps, spec, burn_in=burn_in,
                     thinning=thinning, progress=progress, record_every=record_every, callback=callback,
                     max_norm=max_norm)
