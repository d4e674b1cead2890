r"""deepinv's DRUNet (Zhang et al. 2021, "Plug-and-play image restoration with deep denoiser prior"),
small widths, trained from scratch, for any image size.

DRUNet is a residual U-Net with four scales (three stride-2 downsamplings) that builds its own
noise-level-map input channel from ``sigma``. Its input sides must be multiples of 8, so the image
is reflection-padded (:func:`~scoredae.nets.tiling.pad_to_multiple`, e.g. 28 -> 32) and the output cropped back
(:func:`~scoredae.nets.tiling.crop_center`). Pretrained weights are never loaded (``pretrained=None``).
"""

from __future__ import annotations

import dataclasses

import deepinv
import torch

from .._checks import positive_int, positive_int_tuple
from .base import DenoiserConfig, ImageDenoiser
from .tiling import crop_center, pad_to_multiple

DOWNSAMPLING = 8  # 2 ** (number of stride-2 downsamplings in DRUNet)


@dataclasses.dataclass(frozen=True, kw_only=True)
class DRUNetConfig(DenoiserConfig):
    r""":param nc: channels of the four scales, e.g. ``(16, 32, 64, 64)``.
    :param nb: residual blocks per scale."""

    nc: tuple[int, int, int, int] = (16, 32, 64, 64)
    nb: int = 1

    def __post_init__(self):
        super().__post_init__()
        object.__setattr__(self, "nc", positive_int_tuple("nc", self.nc, 4))
        positive_int("nb", self.nb)


class DRUNetDenoiser(ImageDenoiser):
    """A deepinv DRUNet held as ``self.net``; ``sigma`` is passed through to it.

    A noise-conditional model passes each image's ``sigma``; a fixed-sigma model always its
    ``trained_sigma`` (its noise-level map is then a constant channel). DRUNet appends the map
    itself, so :meth:`condition` leaves the input alone. Any image of at least 8 x 8 pixels.
    """

    Config = DRUNetConfig

    def __init__(self, **options):
        super().__init__(**options)
        c = self.config
        self.net = deepinv.models.DRUNet(in_channels=c.channels, out_channels=c.channels, nc=list(c.nc),
                                         nb=c.nb, pretrained=None)

    def check_size(self, height: int, width: int) -> None:
        if height < DOWNSAMPLING or width < DOWNSAMPLING:  # the reflection padding needs that much
            raise ValueError(f"x: DRUNetDenoiser takes images of at least {DOWNSAMPLING} x {DOWNSAMPLING} "
                             f"pixels, got {height} x {width}")

    def condition(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """DRUNet builds the noise-level map itself."""
        return x

    def denoise(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """DRUNet itself on (B, C, H, W), padded to multiples of 8 and cropped back."""
        padded, pad = pad_to_multiple(x, DOWNSAMPLING)  # (B, C, H', W'), multiples of 8
        return crop_center(self.net(padded, sigma), pad)  # (B, C, H, W)
