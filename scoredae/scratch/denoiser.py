r"""A trained scratch network as a :class:`deepinv.models.Denoiser`, so that
:class:`~scoredae.score.TweedieScore` and deepinv's samplers can use it."""

from __future__ import annotations

import deepinv
import torch

from .._checks import expand_sigma, positive_int
from .module import Module


class ScratchDenoiser(deepinv.models.Denoiser):
    r"""``D(x, sigma) = net(x)`` for a scratch network trained at one noise level.

    The network estimates :math:`\mathbb E[x \mid x + \sigma n]` only at the level it was trained
    at, recorded as ``trained_sigma``; ``sigma`` is validated but not fed to the network
    (:class:`~scoredae.score.TweedieScore` warns when it differs from ``trained_sigma``).

    A forward pass keeps every layer's input for its backward pass (and a convolution its im2col
    columns), so the images are denoised ``batch_size`` at a time: memory stays bounded whatever
    the number of images.

    :param net: a scratch :class:`~scoredae.scratch.module.Module`.
    :param sigma: the training noise level.
    :param batch_size: images per forward pass.
    """

    def __init__(self, net: Module, sigma: float, batch_size: int = 100):
        super().__init__()
        if not isinstance(net, Module):
            raise TypeError(f"net: expected a scratch Module, got {type(net).__name__}")
        if not float(sigma) > 0:
            raise ValueError(f"sigma must be > 0, got {sigma}")
        self.net = net
        self.trained_sigma = float(sigma)
        self.batch_size = positive_int("batch_size", batch_size)

    def forward(self, x: torch.Tensor, sigma=None, **kwargs) -> torch.Tensor:
        expand_sigma(self.trained_sigma if sigma is None else sigma, x)  # validates sigma
        return torch.cat([self.net(part) for part in x.split(self.batch_size)])
