r"""The classic fully connected denoising autoencoder (Vincent et al. 2008): 784-128-64-10 with ELU.

The encoder maps the flattened noisy image (and the noise-level map of a noise-conditional model)
through ``widths`` to a ``latent``-dimensional code; the decoder mirrors it back to the
:math:`C H W` pixels and a Sigmoid, so :math:`D(y) = \mathrm{sigmoid}(\mathrm{dec}(\mathrm{enc}(y)))
\in (0, 1)^{C H W}`. Being fully connected, it takes the one image size it was built for.
"""

from __future__ import annotations

import dataclasses
import itertools
import math

import torch
from torch import nn

from .._checks import positive_int, positive_int_tuple
from .base import DenoiserConfig, ImageDenoiser


@dataclasses.dataclass(frozen=True, kw_only=True)
class MLPConfig(DenoiserConfig):
    """:param widths: hidden widths of the encoder, e.g. ``(128, 64)``.
    :param latent: size of the code.
    :param image_size: ``(H, W)``, the one image size the model takes."""

    widths: tuple[int, ...] = (128, 64)
    latent: int = 10
    image_size: tuple[int, int] = (28, 28)

    def __post_init__(self):
        super().__post_init__()
        object.__setattr__(self, "widths", positive_int_tuple("widths", self.widths))
        object.__setattr__(self, "image_size", positive_int_tuple("image_size", self.image_size, 2))
        positive_int("latent", self.latent)


def elu_mlp(sizes: list[int]) -> nn.Sequential:
    """Linear layers between consecutive ``sizes``, with ELU after each."""
    layers = []
    for a, b in itertools.pairwise(sizes):
        layers += [nn.Linear(a, b), nn.ELU()]
    return nn.Sequential(*layers)


class MLPDAE(ImageDenoiser):
    """MLP autoencoder ``C H W - widths - latent - reversed(widths) - C H W``, ELU, Sigmoid output.

    Built from the fields of :class:`MLPConfig` (and :class:`~scoredae.nets.base.DenoiserConfig`).
    """

    Config = MLPConfig

    def __init__(self, **options):
        super().__init__(**options)
        c = self.config
        pixels = math.prod(c.image_size)
        self.encoder = elu_mlp([self.input_channels * pixels, *c.widths, c.latent])
        decoder = elu_mlp([c.latent, *reversed(c.widths)])
        self.decoder = nn.Sequential(*decoder, nn.Linear(c.widths[0], c.channels * pixels), nn.Sigmoid())

    def check_size(self, height: int, width: int) -> None:
        if (height, width) != self.config.image_size:
            h, w = self.config.image_size
            raise ValueError(f"x: this MLPDAE takes {h} x {w} images only, got {height} x {width}")

    def denoise(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        code = self.encoder(x.flatten(1))  # (B, latent)
        return self.decoder(code).reshape(-1, self.config.channels, *x.shape[2:])  # (B, C, H, W)
