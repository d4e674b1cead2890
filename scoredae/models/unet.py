r"""A small convolutional U-Net denoiser for 28 x 28 images (Ronneberger et al. 2015).

Two resolution levels below the input (28 -> 14 -> 7), each a pair of 3 x 3 convolutions with
GroupNorm and SiLU, skip connections by concatenation, and a residual output with the
preconditioning of Karras et al. 2022 ("Elucidating the design space...", Table 1):

.. math::
    D(y, \sigma) = c_{skip}(\sigma)\, y + c_{out}(\sigma)\, F_\theta\big(c_{in}(\sigma)\, y, \sigma\big),
    \quad c_{skip} = \frac{\sigma_{data}^2}{\sigma^2 + \sigma_{data}^2},\;
    c_{out} = \frac{\sigma \sigma_{data}}{\sqrt{\sigma^2 + \sigma_{data}^2}},\;
    c_{in} = \frac{1}{\sqrt{\sigma^2 + \sigma_{data}^2}},

so the network's target :math:`(x - c_{skip} y) / c_{out}` has unit variance at every noise level.
A noise-conditional model also receives the noise-level map (see :class:`MNISTDenoiser`).
"""

from __future__ import annotations

import torch
from torch import nn

from .base import MNISTDenoiser


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


def add_unet_levels(module: nn.Module, in_channels: int, w: int) -> None:
    """Register the U-Net's encoder (28 -> 14 -> 7) and decoder (7 -> 14 -> 28) layers on ``module``;
    the 7 x 7 middle block is the caller's."""
    module.enc1 = conv_block(in_channels, w)  # 28 x 28
    module.down1 = nn.Conv2d(w, 2 * w, 3, stride=2, padding=1)  # -> 14 x 14
    module.enc2 = conv_block(2 * w, 2 * w)
    module.down2 = nn.Conv2d(2 * w, 4 * w, 3, stride=2, padding=1)  # -> 7 x 7
    module.up2 = nn.ConvTranspose2d(4 * w, 2 * w, 2, stride=2)  # -> 14 x 14
    module.dec2 = conv_block(4 * w, 2 * w)
    module.up1 = nn.ConvTranspose2d(2 * w, w, 2, stride=2)  # -> 28 x 28
    module.dec1 = conv_block(2 * w, w)
    module.out = nn.Conv2d(w, 1, 1)


def unet_pass(module: nn.Module, h: torch.Tensor, middle) -> torch.Tensor:
    """Encoder, ``middle`` on the (B, 4w, 7, 7) bottleneck, decoder with skips; (B, 1, 28, 28)."""
    e1 = module.enc1(h)  # (B, w, 28, 28)
    e2 = module.enc2(module.down1(e1))  # (B, 2w, 14, 14)
    m = middle(module.down2(e2))  # (B, 4w, 7, 7)
    d2 = module.dec2(torch.cat([module.up2(m), e2], dim=1))  # (B, 2w, 14, 14)
    d1 = module.dec1(torch.cat([module.up1(d2), e1], dim=1))  # (B, w, 28, 28)
    return module.out(d1)


class UNet(MNISTDenoiser):
    """U-Net with ``width`` channels at 28 x 28, ``2 width`` at 14 x 14 and ``4 width`` at 7 x 7.

    :param width: channels of the first level (e.g. 32).
    :param sigma_data: the data scale in the preconditioning (MNIST pixels have std ~0.3).
    :param sigma: fixed-sigma model trained at this level, or
    :param sigma_range: ``(min, max)`` of a noise-conditional model.
    """

    def __init__(self, width: int = 32, sigma_data: float = 0.5, *, sigma=None, sigma_range=None):
        super().__init__(sigma=sigma, sigma_range=sigma_range)
        if not isinstance(width, int) or width < 1:
            raise ValueError(f"width: expected a positive int, got {width!r}")
        if not sigma_data > 0:
            raise ValueError(f"sigma_data must be > 0, got {sigma_data}")
        self.config.update(width=width, sigma_data=float(sigma_data))
        self.sigma_data = float(sigma_data)
        add_unet_levels(self, self.in_channels, width)
        self.mid = conv_block(4 * width, 4 * width)

    def denoise(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        s = sigma.reshape(-1, 1, 1, 1)  # (B, 1, 1, 1)
        var = s**2 + self.sigma_data**2
        y = x[:, :1]  # the noisy image; x[:, 1:] is the noise-level map when conditional
        h = torch.cat([y * var.rsqrt(), x[:, 1:]], dim=1)
        out = unet_pass(self, h, self.mid)  # (B, 1, 28, 28)
        c_skip = self.sigma_data**2 / var
        c_out = s * self.sigma_data * var.rsqrt()
        return c_skip * y + c_out * out
