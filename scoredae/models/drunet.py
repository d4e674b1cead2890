r"""deepinv's DRUNet (Zhang et al. 2021, "Plug-and-play image restoration with deep denoiser prior")
for one-channel 28 x 28 images, small widths, trained from scratch.

DRUNet is a residual U-Net with four scales (three stride-2 downsamplings) that builds its own
noise-level-map input channel from ``sigma``. Its input side must be a multiple of 8, so the image
is reflection-padded from 28 to 32 (:func:`pad_to_multiple`) and the output cropped back
(:func:`crop_center`). Pretrained weights are never loaded (``pretrained=None``).
"""

from __future__ import annotations

import deepinv
import torch
from torch import nn

from .base import MNISTDenoiser

DOWNSAMPLING = 8  # 2 ** (number of stride-2 downsamplings in DRUNet)


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int, int, int]]:
    """Reflection-pad (B, C, H, W) to sides divisible by ``multiple``, split evenly (extra on the right/bottom).

    :returns: the padded tensor and the padding ``(left, right, top, bottom)``.
    """
    h, w = x.shape[-2:]
    ph, pw = -h % multiple, -w % multiple
    pad = (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2)
    return nn.functional.pad(x, pad, mode="reflect"), pad


def crop_center(x: torch.Tensor, pad: tuple[int, int, int, int]) -> torch.Tensor:
    """Undo :func:`pad_to_multiple`: remove ``pad = (left, right, top, bottom)`` from (B, C, H, W)."""
    left, right, top, bottom = pad
    h, w = x.shape[-2:]
    return x[..., top : h - bottom, left : w - right]


class DRUNetDenoiser(MNISTDenoiser):
    """A one-channel deepinv DRUNet held as ``self.net``; ``sigma`` is passed through to it.

    A noise-conditional model passes each image's ``sigma``; a fixed-sigma model always passes its
    ``trained_sigma`` (its noise-level map is then a constant channel). DRUNet appends the map
    itself, so :meth:`condition` leaves the input alone; the network's first convolution always
    sees two channels.

    :param nc: channels of the four scales, e.g. ``(16, 32, 64, 64)``.
    :param nb: residual blocks per scale.
    :param sigma: fixed-sigma model trained at this level, or
    :param sigma_range: ``(min, max)`` of a noise-conditional model.
    """

    def __init__(self, nc=(16, 32, 64, 64), nb: int = 1, *, sigma=None, sigma_range=None):
        super().__init__(sigma=sigma, sigma_range=sigma_range)
        nc = [int(c) for c in nc]
        if len(nc) != 4 or min(nc) < 1 or not isinstance(nb, int) or nb < 1:
            raise ValueError(f"nc and nb: expected four positive ints and a positive int, got {nc}, {nb!r}")
        self.config.update(nc=nc, nb=nb)
        self.net = deepinv.models.DRUNet(in_channels=1, out_channels=1, nc=nc, nb=nb, pretrained=None)

    def condition(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """DRUNet builds the noise-level map itself."""
        return x

    def denoise(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        if not self.noise_conditional:
            sigma = torch.full_like(sigma, self.trained_sigma)  # (B,)
        padded, pad = pad_to_multiple(x, DOWNSAMPLING)  # (B, 1, 32, 32)
        return crop_center(self.net(padded, sigma), pad)  # (B, 1, 28, 28)
