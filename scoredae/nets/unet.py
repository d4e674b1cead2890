r"""A small convolutional U-Net denoiser (Ronneberger et al. 2015).

Two resolution levels below the input (H -> H/2 -> H/4, so H and W are multiples of 4), each a
pair of 3 x 3 convolutions with GroupNorm and SiLU, skip connections by concatenation, and a
residual output: by default (``precondition=True``) the base class wraps it in the preconditioning
of :mod:`scoredae.nets.precond`, :math:`D(y, \sigma) = c_{skip}\, y + c_{out}\, F_\theta(c_{in}\, y, \sigma)`,
whose :math:`\sigma_{data}` is the model's ``config.sigma_data``. A noise-conditional model also receives
the noise-level map (see :class:`~scoredae.nets.base.ImageDenoiser`).
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from .._checks import positive_int
from .base import DenoiserConfig, ImageDenoiser


def conv_block(c_in: int, c_out: int) -> nn.Sequential:
    """Two 3 x 3 convolutions, each followed by GroupNorm and SiLU; spatial size kept."""
    groups = min(8, c_out)
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1),
        nn.GroupNorm(groups, c_out),
        nn.SiLU(),
        nn.Conv2d(c_out, c_out, 3, padding=1),
        nn.GroupNorm(groups, c_out),
        nn.SiLU(),
    )


def add_unet_levels(module: nn.Module, in_channels: int, out_channels: int, w: int) -> None:
    """Register the U-Net's encoder (H -> H/2 -> H/4) and decoder (H/4 -> H/2 -> H) layers on
    ``module``; the H/4 middle block is the caller's."""
    module.enc1 = conv_block(in_channels, w)  # H x W
    module.down1 = nn.Conv2d(w, 2 * w, 3, stride=2, padding=1)  # -> H/2
    module.enc2 = conv_block(2 * w, 2 * w)
    module.down2 = nn.Conv2d(2 * w, 4 * w, 3, stride=2, padding=1)  # -> H/4
    module.up2 = nn.ConvTranspose2d(4 * w, 2 * w, 2, stride=2)  # -> H/2
    module.dec2 = conv_block(4 * w, 2 * w)
    module.up1 = nn.ConvTranspose2d(2 * w, w, 2, stride=2)  # -> H
    module.dec1 = conv_block(2 * w, w)
    module.out = nn.Conv2d(w, out_channels, 1)


def unet_pass(module: nn.Module, h: torch.Tensor, middle) -> torch.Tensor:
    """Encoder, ``middle`` on the (B, 4w, H/4, W/4) bottleneck, decoder with skips; (B, C, H, W)."""
    e1 = module.enc1(h)  # (B, w, H, W)
    e2 = module.enc2(module.down1(e1))  # (B, 2w, H/2, W/2)
    m = middle(module.down2(e2))  # (B, 4w, H/4, W/4)
    d2 = module.dec2(torch.cat([module.up2(m), e2], dim=1))  # (B, 2w, H/2, W/2)
    d1 = module.dec1(torch.cat([module.up1(d2), e1], dim=1))  # (B, w, H, W)
    return module.out(d1)


@dataclasses.dataclass(frozen=True, kw_only=True)
class UNetConfig(DenoiserConfig):
    r""":param width: channels of the first level (``2 width`` at H/2, ``4 width`` at H/4).
    :param noise_map: what fills the noise-level channel of a noise-conditional model: ``"sigma"``
        itself (DRUNet's map, for ranges within [0, 1]), or ``"log"``, EDM's
        :math:`c_{noise} = \tfrac14 \ln \sigma` (Karras et al. 2022, Table 1), which stays of order
        one over a range such as [0.002, 80].
    """

    width: int = 32
    noise_map: str = "sigma"
    precondition: bool = True

    def __post_init__(self):
        super().__post_init__()
        positive_int("width", self.width)
        if self.noise_map not in ("sigma", "log"):
            raise ValueError(f"noise_map: expected 'sigma' or 'log', got {self.noise_map!r}")


class UNet(ImageDenoiser):
    """U-Net with ``width`` channels at H x W, ``2 width`` at H/2 and ``4 width`` at H/4 (see :class:`UNetConfig`)."""

    Config = UNetConfig
    size_multiple = 4

    def __init__(self, **options):
        super().__init__(**options)
        width = self.config.width
        add_unet_levels(self, self.input_channels, self.config.channels, width)
        self.mid = conv_block(4 * width, 4 * width)

    def condition(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """Append the noise-level map (B, 1, H, W) of ``config.noise_map`` when noise-conditional."""
        if self.noise_conditional and self.config.noise_map == "log":
            s = s.log() / 4
        return super().condition(x, s)

    def denoise(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        return unet_pass(self, x, self.mid)
