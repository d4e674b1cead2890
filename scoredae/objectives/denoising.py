r"""Denoising losses: what a denoiser trained with each estimates, per sample ``(B,)``. The squared
error makes the posterior mean (the MMSE denoiser), the absolute error the posterior median."""

from __future__ import annotations

import torch

from .._checks import positive
from .noise import model_sigma, perturb


def _residual(denoiser, x: torch.Tensor, sigma, generator) -> torch.Tensor:
    r""":math:`D(x + \sigma n, \sigma) - x` for noise drawn by :func:`~scoredae.objectives.noise.perturb`."""
    y, s, _ = perturb(x, sigma, generator)
    return denoiser(y, model_sigma(s)) - x


def denoising_loss(
    denoiser, x: torch.Tensor, sigma, generator: torch.Generator | None = None
) -> torch.Tensor:
    r"""Per-sample MMSE denoising loss, shape ``(B,)``; the caller reduces.

    .. math::
        \ell_i = \frac{1}{d}\,\lVert D(x_i + \sigma_i n_i, \sigma_i) - x_i \rVert^2,
        \qquad n_i \sim \mathcal N(0, I),

    with :math:`d` the number of entries of one sample. Its minimiser over all functions is the
    posterior mean :math:`\mathbb{E}[x \mid y]` (the MMSE estimator). ``sigma`` as in :func:`~scoredae.objectives.noise.perturb`.
    """
    return _residual(denoiser, x, sigma, generator).square().flatten(1).mean(1)


def l1_denoising_loss(
    denoiser, x: torch.Tensor, sigma, generator: torch.Generator | None = None
) -> torch.Tensor:
    r"""Per-sample absolute-error denoising loss, shape ``(B,)``:
    :math:`\ell_i = \frac1d \lVert D(x_i + \sigma_i n_i, \sigma_i) - x_i \rVert_1`.

    Its minimiser is the coordinate-wise posterior *median* of :math:`x \mid y`, not the mean, so
    Tweedie's formula does not turn it into a score.
    """
    return _residual(denoiser, x, sigma, generator).abs().flatten(1).mean(1)


def charbonnier_denoising_loss(
    denoiser, x: torch.Tensor, sigma, generator: torch.Generator | None = None, eps: float = 0.01
) -> torch.Tensor:
    r"""Per-sample Charbonnier loss, shape ``(B,)``, with :math:`r = D(x_i + \sigma_i n_i, \sigma_i) - x_i`:
    :math:`\ell_i = \frac1d \sum_j \big(\sqrt{r_j^2 + \varepsilon^2} - \varepsilon\big)`.

    Quadratic for :math:`|r| \ll \varepsilon` and absolute for :math:`|r| \gg \varepsilon`, so its
    minimiser, a smooth M-estimate of location of :math:`x_j \mid y`, lies between the posterior
    median and mean and is neither (unless the posterior is symmetric): not a Tweedie score.
    """
    positive("eps", eps)
    r = _residual(denoiser, x, sigma, generator)
    return (r.square() + eps**2).sqrt().sub(eps).flatten(1).mean(1)


def _differences(r: torch.Tensor) -> list[torch.Tensor]:
    """Forward differences of ``r`` along its spatial axes: the last one of points (B, d), the
    last two of images (B, C, H, W)."""
    axes = (-1,) if r.ndim < 4 else (-2, -1)
    return [r.diff(dim=axis) for axis in axes]


def edge_aware_denoising_loss(
    denoiser, x: torch.Tensor, sigma, generator: torch.Generator | None = None, lam: float = 1.0
) -> torch.Tensor:
    r"""Per-sample squared error plus ``lam`` times the squared error of the image gradients
    (forward differences :math:`\nabla` along the spatial axes), shape ``(B,)``:

    .. math::
        \ell_i = \frac1d \Big(\lVert r \rVert^2 + \lambda \lVert \nabla r \rVert^2\Big)
        = \frac1d\, r^\top (I + \lambda \nabla^\top \nabla)\, r,
        \qquad r = D(x_i + \sigma_i n_i, \sigma_i) - x_i.

    A positive-definite quadratic form of the error: its expected value given :math:`y` is
    :math:`(D - \mathbb E[x|y])^\top A (D - \mathbb E[x|y])` plus a constant, so its minimiser is the
    posterior mean again, whatever :math:`\lambda \ge 0`; the weight on edges changes what a
    network of limited capacity trades off, not the target.
    """
    if not lam >= 0:
        raise ValueError(f"lam: expected a weight >= 0, got {lam}")
    r = _residual(denoiser, x, sigma, generator)
    edges = sum(g.square().flatten(1).sum(1) for g in _differences(r))
    return (r.square().flatten(1).sum(1) + lam * edges) / r[0].numel()
