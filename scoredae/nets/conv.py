r"""A convolutional denoising autoencoder (Masci et al. 2011, "Stacked convolutional auto-encoders").

Encoder: 3 x 3 convolutions to ``widths`` = (16, 32, 64) channels with ReLU, max-pooling after the
first two (H -> H/2 -> H/4). Decoder: stride-2 transposed convolutions back to H x W, a 3 x 3
convolution to the image channels and a Sigmoid, so :math:`D(y) \in (0, 1)^{C \times H \times W}`.
Heights and widths must be multiples of 4.

The bias before the Sigmoid starts at :math:`\mathrm{logit}(\bar x)`, with :math:`\bar x` the mean
MNIST pixel, so the first output is the mean intensity: started at 0.5 instead, Adam drives the
pre-activations towards :math:`-\infty` within a few steps and the Sigmoid saturates at 0.
"""

from __future__ import annotations

import dataclasses
import math

import torch
from torch import nn

from .._checks import positive_int_tuple
from ..data.mnist import MNIST_PIXELS
from .base import DenoiserConfig, ImageDenoiser


def init_logit_bias_(layer: nn.Conv2d, mean: float = MNIST_PIXELS[0]) -> None:
    r"""Set ``layer``'s bias to :math:`\log(m / (1 - m))`, so ``sigmoid(layer(0)) = mean``."""
    with torch.no_grad():
        layer.bias.fill_(math.log(mean / (1 - mean)))


@dataclasses.dataclass(frozen=True, kw_only=True)
class ConvConfig(DenoiserConfig):
    """:param widths: the three encoder widths, e.g. ``(16, 32, 64)``; the decoder mirrors them."""

    widths: tuple[int, int, int] = (16, 32, 64)

    def __post_init__(self):
        super().__post_init__()
        object.__setattr__(self, "widths", positive_int_tuple("widths", self.widths, 3))


class ConvDAE(ImageDenoiser):
    """Conv encoder with max-pooling, transposed-conv decoder, Sigmoid output (see :class:`ConvConfig`)."""

    Config = ConvConfig
    size_multiple = 4

    def __init__(self, **options):
        super().__init__(**options)
        c1, c2, c3 = self.config.widths
        self.encoder = nn.Sequential(
            nn.Conv2d(self.input_channels, c1, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # -> (c1, H/2, W/2)
            nn.Conv2d(c1, c2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # -> (c2, H/4, W/4)
            nn.Conv2d(c2, c3, 3, padding=1), nn.ReLU(),  # -> (c3, H/4, W/4)
        )
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(c3, c2, 2, stride=2), nn.ReLU(),  # -> (c2, H/2, W/2)
            nn.ConvTranspose2d(c2, c1, 2, stride=2), nn.ReLU(),  # -> (c1, H, W)
            nn.Conv2d(c1, self.config.channels, 3, padding=1), nn.Sigmoid(),  # -> (C, H, W)
        )
        init_logit_bias_(self.decoder[-2])

    def denoise(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))  # (B, C, H, W)
