r"""Kadkhodaie & Simoncelli's Algorithm 2 (2021): coarse-to-fine ascent onto noiseless linear
measurements :math:`x^c = A x`, sampling :math:`p(x \mid A x = x^c)`."""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..sampling.coarse_to_fine import coarse_to_fine_ascent, start_states
from ..sampling.loop import SamplerResult, check_chain_inputs
from ..score import require_every_level
from .operators import linear_operator


def kadkhodaie_simoncelli_constrained(denoiser, measurements: torch.Tensor, forward, y0, *, h0: float = 0.01,
                                      beta: float = 0.01, sigma_start: float = 1.0, sigma_stop: float = 0.01,
                                      mean: float = 0.5, max_steps: int = 10_000,
                                      generator: torch.Generator | None = None, progress: bool = False,
                                      record_every: int | None = None, callback: Callable | None = None,
                                      max_norm: float | None = None) -> SamplerResult:
    r"""Their Algorithm 2 (for an :math:`A` with orthonormal rows; here with the pseudo-inverse
    :math:`A^+`): :func:`~scoredae.sampling.coarse_to_fine.coarse_to_fine_ascent` with the residual
    that keeps the prior's direction off the measured subspace and pulls onto the measurements,

    .. math::
        f(y, \sigma) = (I - A^+ A)\,\big(D(y, \sigma) - y\big) + A^+ (x^c - A y),

    from :math:`y_0 \sim \mathcal N\big((I - A^+ A)\,\text{mean} + A^+ x^c, \sigma_{start}^2 I\big)`
    (``y0`` a shape), or from the given states moved onto the measurements,
    :math:`y_0 - A^+ (A y_0 - x^c)`. ``forward`` is an ``(m, d)`` matrix, a deepinv LinearPhysics or
    a pair ``(A, A_adjoint)`` (then :math:`A A^\top = I` is assumed, :math:`A^+ = A^\top`); the
    options are those of :func:`~scoredae.sampling.coarse_to_fine.kadkhodaie_simoncelli`.
    """
    require_every_level(denoiser, "Kadkhodaie-Simoncelli")
    y0 = start_states(y0, mean, sigma_start, generator)
    check_chain_inputs(y0, generator, name="y0")
    op = linear_operator(forward, y0)
    A, pinv = op.A, op.pinv
    xc = measurements.to(y0)

    def residual(y, sigma):
        f = denoiser(y, sigma) - y
        return f - pinv(A(f)) + pinv(xc - A(y))

    return coarse_to_fine_ascent(residual, y0 - pinv(A(y0) - xc), h0=h0, beta=beta, sigma_start=sigma_start,
                                 sigma_stop=sigma_stop, max_steps=max_steps, generator=generator,
                                 progress=progress, record_every=record_every, callback=callback,
                                 max_norm=max_norm)
