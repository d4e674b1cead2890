r"""Conditional flow matching (Lipman et al. 2023, eq. 23; Liu et al. 2023's rectified flow) is a
weighted denoising loss.

On the linear interpolant :math:`x_t = (1 - t) x + t n` the regression target is :math:`n - x`,
and a velocity model built on a denoiser (:class:`~scoredae.sampling.parametrisations.DenoiserPrediction`
with the :class:`~scoredae.sampling.parametrisations.LinearInterpolant`) is
:math:`u(x_t, t) = (x_t - D(x_t / (1 - t), \sigma)) / t`, :math:`\sigma = t / (1 - t)`. Then
:math:`x_t - t(n - x) = x`, so

.. math::
    \lVert u(x_t, t) - (n - x) \rVert^2 = \frac{\lVert D(x + \sigma n, \sigma) - x \rVert^2}{t^2},

the denoising loss at level :math:`\sigma` weighted by :math:`1 / t^2 = (1 + \sigma)^2 / \sigma^2`,
with the levels drawn as :math:`t` is. Its minimiser is the posterior mean, as for every weighting.
"""

from __future__ import annotations

import torch

from .._checks import expand_sigma


def flow_matching_loss(denoiser, x: torch.Tensor, t, generator: torch.Generator | None = None) -> torch.Tensor:
    r"""Per-sample conditional flow-matching loss, shape ``(B,)``, in the velocity form
    :math:`\tfrac1d \lVert u(x_t, t) - (n - x) \rVert^2` (module docstring) at times ``t`` (a float or
    (B,), in (0, 1)); equal to :func:`~scoredae.objectives.denoising_loss` at :math:`\sigma = t / (1 - t)`
    times :math:`1 / t^2` with the same noise."""
    t_b = expand_sigma(t, x, name="t")
    if not isinstance(t, torch.Tensor) and not t < 1:
        raise ValueError(f"t: expected a time in (0, 1), got {t!r}")
    noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    x_t = (1 - t_b) * x + t_b * noise
    sigma = t_b / (1 - t_b)
    velocity = (x_t - denoiser(x_t / (1 - t_b), sigma.reshape(-1) if sigma.ndim else sigma)) / t_b
    return (velocity - (noise - x)).square().flatten(1).mean(1)
