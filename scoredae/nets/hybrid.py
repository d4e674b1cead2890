r"""A hybrid transformer / U-Net denoiser (in the spirit of TransUNet, Chen et al. 2021).

Two encoders read the noisy image (and the noise-level map of a noise-conditional model):

- the U-Net encoder: :func:`~scoredae.nets.unet.conv_block` levels at H x W (``w`` channels)
  and H/2 x W/2 (``2w``), each followed by a stride-2 convolution, down to an H/4 x W/4 bottleneck
  (``4w``);
- a :class:`~scoredae.nets.transformer.PatchEncoder` over 4 x 4 patches, whose H/4 x W/4 token
  grid is projected by a 1 x 1 convolution to ``tokens_channels`` channels.

The two H/4 x W/4 maps are concatenated and fused by a ``conv_block``; the U-Net decoder upsamples
with transposed convolutions and skip connections to H x W (multiples of 4), and a 1 x 1
convolution gives the image,
:math:`D(y) = \mathrm{dec}\big([\mathrm{enc}_{\rm U}(y), P\, \mathrm{enc}_{\rm T}(y)], \text{skips}\big)`.

The model is trained from scratch. :meth:`HybridTransformerUNet.load_encoder` initialises the
transformer branch from a local file (e.g. a trained :class:`~scoredae.nets.transformer.PatchTransformer` checkpoint with the
same encoder configuration); nothing is downloaded.
"""

from __future__ import annotations

import dataclasses
import os

import torch
from safetensors.torch import load_file
from torch import nn

from .._checks import positive_ints
from .base import DenoiserConfig, ImageDenoiser
from .transformer import PatchEncoder, token_grid
from .unet import add_unet_levels, conv_block, unet_pass

PATCH_SIZE = 4  # H / 4 tokens per side, the resolution of the U-Net bottleneck


@dataclasses.dataclass(frozen=True, kw_only=True)
class HybridConfig(DenoiserConfig):
    """:param width: U-Net channels at H x W (``2 width`` at H/2, ``4 width`` at H/4).
    :param d_model: token size of the transformer branch.
    :param depth: transformer encoder layers.
    :param heads: attention heads per layer.
    :param tokens_channels: channels of the projected token grid joined to the bottleneck."""

    width: int = 16
    d_model: int = 64
    depth: int = 2
    heads: int = 4
    tokens_channels: int = 32

    def __post_init__(self):
        super().__post_init__()
        positive_ints(width=self.width, d_model=self.d_model, depth=self.depth, heads=self.heads,
                      tokens_channels=self.tokens_channels)


class HybridTransformerUNet(ImageDenoiser):
    """U-Net whose H/4 x W/4 bottleneck is concatenated with projected transformer features
    (see :class:`HybridConfig`)."""

    Config = HybridConfig
    size_multiple = PATCH_SIZE

    def __init__(self, **options):
        super().__init__(**options)
        c = self.config
        self.tokens = PatchEncoder(self.input_channels, PATCH_SIZE, c.d_model, c.depth, c.heads)
        self.project = nn.Conv2d(c.d_model, c.tokens_channels, 1)
        add_unet_levels(self, self.input_channels, c.channels, c.width)
        self.fuse = conv_block(4 * c.width + c.tokens_channels, 4 * c.width)

    def denoise(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """The two branches on (B, C + K, H, W), the image and the noise-level map: (B, C, H, W)."""
        grid = (x.shape[2] // PATCH_SIZE, x.shape[3] // PATCH_SIZE)
        t = self.project(token_grid(self.tokens(x), grid))  # (B, tokens_channels, H/4, W/4)
        return unet_pass(self, x, lambda b: self.fuse(torch.cat([b, t], dim=1)))  # (B, C, H, W)

    def load_encoder(self, path: str | os.PathLike, prefix: str = "encoder.") -> None:
        """Initialise the transformer branch from the local safetensors file ``path``.

        The tensors named ``prefix + name`` must match this model's :class:`~scoredae.nets.transformer.PatchEncoder` exactly
        (the default prefix reads a :class:`~scoredae.nets.transformer.PatchTransformer` checkpoint built with patch_size=4 and
        the same d_model, depth, heads and noise conditioning).
        """
        if not os.path.isfile(path):
            raise FileNotFoundError(f"path: no local encoder weights at {path}")
        tensors = load_file(os.fspath(path))
        weights = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
        expected = self.tokens.state_dict()
        wrong = sorted(k for k in expected if k not in weights or weights[k].shape != expected[k].shape)
        if wrong:
            raise ValueError(f"path: {path} holds no matching '{prefix}*' tensors for {wrong[:5]}")
        self.tokens.load_state_dict({k: weights[k] for k in expected})
