r"""The model's log-density by the instantaneous change of variables along the probability-flow ODE
(Song et al. 2021, "Score-based generative modeling through stochastic differential equations",
eq. 39), and its bits per dimension."""

from __future__ import annotations

import itertools
import math

import torch

from .._checks import decreasing_levels, positive_int
from ..rng import rademacher
from ..score import require_every_level
from ..uncertainty import jacobian_trace
from .edm import ode_derivative
from .loop import check_chain_inputs


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
