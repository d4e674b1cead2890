r"""Training objectives: the MMSE denoising loss and the score-matching family.

A denoiser trained with the squared error converges to the posterior mean
:math:`D^*(y, \sigma) = \mathbb{E}[x \mid y]`, which Tweedie's formula turns into the score.
"""

from __future__ import annotations

import torch

from .utils import expand_sigma


def denoising_loss(
    denoiser, x: torch.Tensor, sigma, generator: torch.Generator | None = None
) -> torch.Tensor:
    r"""Per-sample MMSE denoising loss, shape ``(B,)``; the caller reduces.

    .. math::
        \ell_i = \frac{1}{d}\,\lVert D(x_i + \sigma_i n_i, \sigma_i) - x_i \rVert^2,
        \qquad n_i \sim \mathcal N(0, I),

    with :math:`d` the number of entries of one sample. Its minimiser over all functions is the
    posterior mean :math:`\mathbb{E}[x \mid y]` (the MMSE estimator).
    """
    s = expand_sigma(sigma, x)
    noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    y = x + s * noise
    sigma_arg = s.reshape(-1) if s.ndim else s
    err = denoiser(y, sigma_arg) - x
    return err.pow(2).flatten(1).mean(1)
