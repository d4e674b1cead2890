r"""A hybrid transformer / U-Net denoiser (in the spirit of TransUNet, Chen et al. 2021).

Two encoders read the noisy image (and the noise-level map of a noise-conditional model):

- the U-Net encoder: :func:`~scoredae.models.unet.conv_block` levels at 28 x 28 (``w`` channels)
  and 14 x 14 (``2w``), each followed by a stride-2 convolution, down to a 7 x 7 bottleneck (``4w``);
- a :class:`~scoredae.models.transformer.PatchEncoder` over 4 x 4 patches, whose 7 x 7 token grid
  is projected by a 1 x 1 convolution to ``tokens_channels`` channels.

The two 7 x 7 maps are concatenated and fused by a ``conv_block``; the U-Net decoder upsamples with
transposed convolutions and skip connections to 28 x 28, and a 1 x 1 convolution gives the image,
:math:`D(y) = \mathrm{dec}\big([\mathrm{enc}_{\rm U}(y), P\, \mathrm{enc}_{\rm T}(y)], \text{skips}\big)`.

The model is trained from scratch. :meth:`HybridTransformerUNet.load_encoder` initialises the
transformer branch from a local file (e.g. a trained :class:`PatchTransformer` checkpoint with the
same encoder configuration); nothing is downloaded.
"""

from __future__ import annotations

import os

import torch
from safetensors.torch import load_file
from torch import nn

from .base import MNISTDenoiser
from .transformer import PatchEncoder, check_positive_ints, token_grid
from .unet import add_unet_levels, conv_block, unet_pass

PATCH_SIZE = 4  # 28 / 4 = 7 tokens per side, the resolution of the U-Net bottleneck


class HybridTransformerUNet(MNISTDenoiser):
    """U-Net whose 7 x 7 bottleneck is concatenated with projected transformer features.

    :param width: U-Net channels at 28 x 28 (``2 width`` at 14 x 14, ``4 width`` at 7 x 7).
    :param d_model: token size of the transformer branch.
    :param depth: transformer encoder layers.
    :param heads: attention heads per layer.
    :param tokens_channels: channels of the projected token grid joined to the bottleneck.
    :param sigma: fixed-sigma model trained at this level, or
    :param sigma_range: ``(min, max)`` of a noise-conditional model.
    """

    def __init__(
        self,
        width: int = 16,
        d_model: int = 64,
        depth: int = 2,
        heads: int = 4,
        tokens_channels: int = 32,
        *,
        sigma=None,
        sigma_range=None,
    ):
        super().__init__(sigma=sigma, sigma_range=sigma_range)
        sizes = {"width": width, "d_model": d_model, "depth": depth, "heads": heads,
                 "tokens_channels": tokens_channels}
        check_positive_ints(**sizes)
        self.config.update(sizes)
        self.tokens = PatchEncoder(self.in_channels, PATCH_SIZE, d_model, depth, heads)
        self.project = nn.Conv2d(d_model, tokens_channels, 1)
        add_unet_levels(self, self.in_channels, width)
        self.fuse = conv_block(4 * width + tokens_channels, 4 * width)

    def denoise(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        t = self.project(token_grid(self.tokens(x)))  # (B, tokens_channels, 7, 7)
        return unet_pass(self, x, lambda b: self.fuse(torch.cat([b, t], dim=1)))  # (B, 1, 28, 28)

    def load_encoder(self, path: str | os.PathLike, prefix: str = "encoder.") -> None:
        """Initialise the transformer branch from the local safetensors file ``path``.

        The tensors named ``prefix + name`` must match this model's :class:`PatchEncoder` exactly
        (the default prefix reads a :class:`PatchTransformer` checkpoint built with patch_size=4 and
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
