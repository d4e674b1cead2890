r"""A convolutional denoising autoencoder (Masci et al. 2011, "Stacked convolutional auto-encoders").

Encoder: 3 x 3 convolutions 1 -> 16 -> 32 -> 64 channels with ReLU, max-pooling after the first
two (28 -> 14 -> 7). Decoder: stride-2 transposed convolutions 64 -> 32 -> 16 back to 28 x 28,
a 3 x 3 convolution to one channel and a Sigmoid, so :math:`D(y) \in (0, 1)^{28 \times 28}`.

The bias before the Sigmoid starts at :math:`\mathrm{logit}(\bar x)`, with :math:`\bar x` the mean
MNIST pixel, so the first output is the mean intensity: started at 0.5 instead, Adam drives the
pre-activations towards :math:`-\infty` within a few steps and the Sigmoid saturates at 0.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .base import MNISTDenoiser

MNIST_PIXEL_MEAN = 0.1307  # mean of the 60,000 training images' pixels (in [0, 1])


def init_logit_bias_(layer: nn.Conv2d, mean: float = MNIST_PIXEL_MEAN) -> None:
    r"""Set ``layer``'s bias to :math:`\log(m / (1 - m))`, so ``sigmoid(layer(0)) = mean``."""
    with torch.no_grad():
        layer.bias.fill_(math.log(mean / (1 - mean)))


class ConvDAE(MNISTDenoiser):
    """Conv encoder with max-pooling, transposed-conv decoder, Sigmoid output.

    :param channels: the three encoder widths, e.g. ``(16, 32, 64)``; the decoder mirrors them.
    :param sigma: fixed-sigma model trained at this level, or
    :param sigma_range: ``(min, max)`` of a noise-conditional model.
    """

    def __init__(self, channels=(16, 32, 64), *, sigma=None, sigma_range=None):
        super().__init__(sigma=sigma, sigma_range=sigma_range)
        channels = [int(c) for c in channels]
        if len(channels) != 3 or min(channels) < 1:
            raise ValueError(f"channels: expected three positive ints, got {channels}")
        self.config.update(channels=channels)
        c1, c2, c3 = channels
        self.encoder = nn.Sequential(
            nn.Conv2d(self.in_channels, c1, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # -> (c1, 14, 14)
            nn.Conv2d(c1, c2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # -> (c2, 7, 7)
            nn.Conv2d(c2, c3, 3, padding=1), nn.ReLU(),  # -> (c3, 7, 7)
        )
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(c3, c2, 2, stride=2), nn.ReLU(),  # -> (c2, 14, 14)
            nn.ConvTranspose2d(c2, c1, 2, stride=2), nn.ReLU(),  # -> (c1, 28, 28)
            nn.Conv2d(c1, 1, 3, padding=1), nn.Sigmoid(),  # -> (1, 28, 28)
        )
        init_logit_bias_(self.decoder[-2])

    def denoise(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))  # (B, 1, 28, 28)
