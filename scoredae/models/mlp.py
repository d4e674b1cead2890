r"""The classic fully connected denoising autoencoder (Vincent et al. 2008): 784-128-64-10 with ELU.

The encoder maps the flattened noisy image (and the noise-level map of a noise-conditional model)
through ``widths`` to a ``latent``-dimensional code; the decoder mirrors it back to 784 pixels
and a Sigmoid, so :math:`D(y) = \mathrm{sigmoid}(\mathrm{dec}(\mathrm{enc}(y))) \in (0, 1)^{784}`.
"""

from __future__ import annotations

import itertools

import torch
from torch import nn

from .base import IMAGE_SHAPE, MNISTDenoiser

N_PIXELS = IMAGE_SHAPE[0] * IMAGE_SHAPE[1] * IMAGE_SHAPE[2]


def elu_mlp(sizes: list[int]) -> nn.Sequential:
    """Linear layers between consecutive ``sizes``, with ELU after each."""
    layers = []
    for a, b in itertools.pairwise(sizes):
        layers += [nn.Linear(a, b), nn.ELU()]
    return nn.Sequential(*layers)


class MLPDAE(MNISTDenoiser):
    """MLP autoencoder ``784 - widths - latent - reversed(widths) - 784``, ELU, Sigmoid output.

    :param widths: hidden widths of the encoder, e.g. ``(128, 64)``.
    :param latent: size of the code.
    :param sigma: fixed-sigma model trained at this level, or
    :param sigma_range: ``(min, max)`` of a noise-conditional model.
    """

    def __init__(self, widths=(128, 64), latent: int = 10, *, sigma=None, sigma_range=None):
        super().__init__(sigma=sigma, sigma_range=sigma_range)
        widths = [int(w) for w in widths]
        if not widths or min(widths) < 1 or not isinstance(latent, int) or latent < 1:
            raise ValueError(f"widths and latent: expected positive ints, got {widths}, {latent!r}")
        self.config.update(widths=widths, latent=latent)
        self.encoder = elu_mlp([self.in_channels * N_PIXELS, *widths, latent])
        decoder = elu_mlp([latent, *reversed(widths)])
        self.decoder = nn.Sequential(*decoder, nn.Linear(widths[0], N_PIXELS), nn.Sigmoid())

    def denoise(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        code = self.encoder(x.flatten(1))  # (B, latent)
        return self.decoder(code).reshape(-1, *IMAGE_SHAPE)  # (B, 1, 28, 28)
