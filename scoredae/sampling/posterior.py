r"""Posterior sampling for linear inverse problems: PnP-ULA on :math:`y = A x + \sigma_y n`."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from .._checks import finite, finite_number, positive
from .loop import LoopSpec, SamplerResult, check_chain_inputs, langevin_move, rms_max, run_chain


def linear_operator(forward, x0: torch.Tensor) -> tuple[Callable, Callable]:
    """(A, A_adjoint) from an (m, d) matrix, a deepinv LinearPhysics, or a pair of callables."""
    if isinstance(forward, torch.Tensor):
        d = math.prod(x0.shape[1:])
        if forward.ndim != 2 or forward.shape[1] != d:
            raise ValueError(f"forward: expected an (m, {d}) matrix for x0 of shape {tuple(x0.shape)}, "
                             f"got shape {tuple(forward.shape)}")
        A = forward.to(dtype=x0.dtype, device=x0.device)
        return (lambda x: x.reshape(x.shape[0], d) @ A.T,  # (B, d) @ (d, m) -> (B, m)
                lambda r: (r @ A).reshape(r.shape[0], *x0.shape[1:]))
    if isinstance(forward, (tuple, list)) and len(forward) == 2 and all(map(callable, forward)):
        return tuple(forward)
    if callable(getattr(forward, "A", None)) and callable(getattr(forward, "A_adjoint", None)):
        return forward.A, forward.A_adjoint
    raise TypeError("forward: expected an (m, d) tensor, a deepinv.physics.LinearPhysics or a pair "
                    f"(A, A_adjoint) of callables, got {type(forward).__name__}")


def pseudo_inverse(forward, x0: torch.Tensor) -> Callable:
    r""":math:`A^+` for :func:`linear_operator`'s ``forward``: ``torch.linalg.pinv`` of a matrix, a
    deepinv physics' ``A_dagger``, and for a pair of callables the adjoint, which is :math:`A^+`
    when :math:`A A^\top = I` (masks, subsampling, orthonormal measurements)."""
    linear_operator(forward, x0)  # the same checks
    if isinstance(forward, torch.Tensor):
        pinv = torch.linalg.pinv(forward.to(dtype=x0.dtype, device=x0.device))  # (d, m)
        return lambda r: (r @ pinv.T).reshape(r.shape[0], *x0.shape[1:])
    if isinstance(forward, (tuple, list)):
        return forward[1]
    return forward.A_dagger


@torch.no_grad()
def posterior_langevin(prior_score: Callable, y: torch.Tensor, forward, noise_sigma: float,
                       x0: torch.Tensor, step_size: float, n_steps: int, *, prior_sigma: float | None = None,
                       alpha: float = 1.0, clip: tuple[float, float] | None = None,
                       generator: torch.Generator | None = None, **common) -> SamplerResult:
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
    chain that explodes is reported instead of sitting at the bounds.
    """
    positive("step_size", step_size)
    positive("noise_sigma", noise_sigma)
    finite_number("alpha", alpha, allow_zero=True)
    if prior_sigma is not None:
        positive("prior_sigma", prior_sigma)
    check_chain_inputs(x0, generator)
    A, A_adjoint = linear_operator(forward, x0)
    ax0 = A(x0)
    try:
        broadcasts = torch.broadcast_shapes(y.shape, ax0.shape) == ax0.shape
    except RuntimeError:
        broadcasts = False
    if not broadcasts:
        raise ValueError(f"y: expected the shape of forward(x0), {tuple(ax0.shape)} (or one broadcasting "
                         f"to it), got {tuple(y.shape)}")
    if clip is not None and not clip[0] < clip[1]:
        raise ValueError(f"clip: expected (a, b) with a < b, got {clip!r}")
    finite("y", y)
    prior = (lambda x: prior_score(x)) if prior_sigma is None else (lambda x: prior_score(x, prior_sigma))
    y = y.to(x0)

    def step(x, unclipped, t):  # the state: the largest unclamped size so far
        drift = A_adjoint(y - A(x)) / noise_sigma**2 + alpha * prior(x)
        x = langevin_move(x, drift, step_size, generator)
        if clip is None:
            return x, unclipped
        return x.clamp(*clip), torch.maximum(unclipped, rms_max(x))  # the largest unclamped size so far

    spec = LoopSpec("PnP-ULA" if prior_sigma is None else f"PnP-ULA, prior sigma {prior_sigma:.3g}", hint=f" (step_size={step_size:g})",
                    size_of=None if clip is None else (lambda x, unclipped: unclipped))
    result = run_chain(step, x0, rms_max(x0), n_steps, spec, **common)
    result.state = None  # a size used by the checks alone
    return result
