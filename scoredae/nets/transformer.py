r"""A patch transformer denoiser (an encoder-only ViT, Dosovitskiy et al. 2021) with three heads.

The image is cut into non-overlapping :math:`p \times p` patches (:func:`patchify`), each patch is
embedded linearly, the sinusoidal positional encoding of Vaswani et al. 2017 (section 3.5),

.. math::
    PE(pos, 2i) = \sin\big(pos / 10000^{2i/d}\big), \qquad
    PE(pos, 2i + 1) = \cos\big(pos / 10000^{2i/d}\big),

is added (:func:`sinusoidal_encoding`), and ``depth`` pre-norm ``nn.TransformerEncoder`` layers mix
the tokens. The encoding is computed for the patch grid of each input (positions numbered
row-major), so a model trained on 28 x 28 images also runs on 56 x 56 ones; heights and widths
must be multiples of the patch size. A head maps the tokens back to the image:

- ``"linear"``: a two-layer MLP from each token to its patch's pixels, then :func:`unpatchify`;
- ``"conv"``: the token grid upsampled by a transposed convolution and refined by convolutions,
  plus a residual projection (a linear map from each token to its patch, unpatchified);
- ``"hybrid"``: the MLP head's image :math:`u`, then a residual convolutional refinement and a
  Sigmoid, :math:`\mathrm{sigmoid}(u + \mathrm{refine}(u))`, which smooths the patch borders.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from .._checks import positive_ints
from .base import DenoiserConfig, ImageDenoiser
from .conv import init_logit_bias_


def patchify(x: torch.Tensor, patch_size: int) -> torch.Tensor:
    """Split ``x`` (B, C, H, W) into patches (B, (H/p)(W/p), C p p), row-major over the grid."""
    b, c, h, w = x.shape
    p = patch_size
    if h % p or w % p:
        raise ValueError(f"patch_size: expected a divisor of the image size {h} x {w}, got {p}")
    x = x.reshape(b, c, h // p, p, w // p, p)  # (B, C, gh, p, gw, p)
    x = x.permute(0, 2, 4, 1, 3, 5)  # (B, gh, gw, C, p, p)
    return x.reshape(b, (h // p) * (w // p), c * p * p)  # (B, N, C p p)


def unpatchify(tokens: torch.Tensor, patch_size: int, image_size: tuple[int, int]) -> torch.Tensor:
    """The inverse of :func:`patchify`: tokens (B, N, C p p) -> image (B, C, H, W)."""
    b, n, dim = tokens.shape
    p = patch_size
    gh, gw = image_size[0] // p, image_size[1] // p
    c = dim // (p * p)
    if gh * gw != n or c * p * p != dim:
        raise ValueError(
            f"tokens: expected shape (B, {gh * gw}, C*{p * p}) for {image_size} images, got {tuple(tokens.shape)}"
        )
    x = tokens.reshape(b, gh, gw, c, p, p)  # (B, gh, gw, C, p, p)
    x = x.permute(0, 3, 1, 4, 2, 5)  # (B, C, gh, p, gw, p)
    return x.reshape(b, c, gh * p, gw * p)  # (B, C, H, W)


def sinusoidal_encoding(n_positions: int, dim: int) -> torch.Tensor:
    r"""(n_positions, dim): :math:`PE(pos, 2i) = \sin(pos / 10000^{2i/d})`, :math:`PE(pos, 2i+1) = \cos(\cdot)`."""
    if dim % 2:
        raise ValueError(f"dim: expected an even embedding size, got {dim}")
    pos = torch.arange(n_positions, dtype=torch.float64)[:, None]  # (N, 1)
    two_i = torch.arange(0, dim, 2, dtype=torch.float64)  # (d/2,)
    angle = pos / 10000 ** (two_i / dim)  # (N, d/2)
    pe = torch.empty(n_positions, dim, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(angle)
    pe[:, 1::2] = torch.cos(angle)
    return pe.to(torch.get_default_dtype())


class PatchEncoder(nn.Module):
    """Patchify, linear embedding, sinusoidal positions, ``depth`` transformer encoder layers.

    Maps images (B, C, H, W) to tokens (B, (H/p)(W/p), d_model); the positional encoding of each
    grid size is computed once and kept.
    """

    def __init__(self, in_channels: int, patch_size: int, d_model: int, depth: int, heads: int):
        super().__init__()
        if d_model % heads:
            raise ValueError(f"d_model: expected a multiple of heads={heads}, got {d_model}")
        self.patch_size = patch_size
        self.embed = nn.Linear(in_channels * patch_size**2, d_model)
        self._positions: dict[tuple, torch.Tensor] = {}
        layer = nn.TransformerEncoderLayer(
            d_model, heads, dim_feedforward=2 * d_model, dropout=0.0, activation="gelu",
            batch_first=True, norm_first=True,
        )
        self.layers = nn.TransformerEncoder(layer, depth, norm=nn.LayerNorm(d_model), enable_nested_tensor=False)

    def position(self, n_tokens: int, like: torch.Tensor) -> torch.Tensor:
        """The (n_tokens, d_model) encoding in the dtype and on the device of ``like``."""
        key = (n_tokens, like.dtype, like.device)
        if key not in self._positions:
            self._positions[key] = sinusoidal_encoding(n_tokens, self.embed.out_features).to(like)
        return self._positions[key]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.embed(patchify(x, self.patch_size))  # (B, N, d)
        return self.layers(tokens + self.position(tokens.shape[1], tokens))  # (B, N, d)


def token_grid(tokens: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """Tokens (B, gh*gw, d) of a ``grid = (gh, gw)`` as a feature map (B, d, gh, gw)."""
    b, _, d = tokens.shape
    return tokens.transpose(1, 2).reshape(b, d, *grid)  # (B, d, gh, gw)


def conv_refiner(c_in: int, width: int, c_out: int) -> nn.Sequential:
    """3 x 3 conv (c_in -> width), GELU, 3 x 3 conv (width -> c_out); spatial size kept."""
    return nn.Sequential(nn.Conv2d(c_in, width, 3, padding=1), nn.GELU(), nn.Conv2d(width, c_out, 3, padding=1))


class MLPHead(nn.Module):
    """Token -> Linear(d, d) -> GELU -> Linear(d, C p p) -> unpatchify: tokens (B, N, d) -> (B, C, H, W)."""

    def __init__(self, d_model: int, patch_size: int, channels: int):
        super().__init__()
        self.patch_size = patch_size
        self.mlp = nn.Sequential(nn.Linear(d_model, d_model), nn.GELU(), nn.Linear(d_model, channels * patch_size**2))

    def forward(self, tokens: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        return unpatchify(self.mlp(tokens), self.patch_size, size)  # (B, C, H, W)


class ConvHead(nn.Module):
    """Upsampling conv path plus a residual linear projection of each token to its patch.

    ``out = refine(GELU(ConvTranspose_{stride p}(grid))) + unpatchify(W tokens)``.
    """

    def __init__(self, d_model: int, patch_size: int, channels: int, width: int = 32):
        super().__init__()
        self.patch_size = patch_size
        self.up = nn.ConvTranspose2d(d_model, width, patch_size, stride=patch_size)  # grid -> H x W
        self.refine = conv_refiner(width, width, channels)
        self.project = nn.Linear(d_model, channels * patch_size**2)

    def forward(self, tokens: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        grid = (size[0] // self.patch_size, size[1] // self.patch_size)
        up = nn.functional.gelu(self.up(token_grid(tokens, grid)))  # (B, width, H, W)
        shortcut = unpatchify(self.project(tokens), self.patch_size, size)  # (B, C, H, W)
        return self.refine(up) + shortcut


class HybridHead(nn.Module):
    """The MLP head, then ``sigmoid(refine(image) + image)`` with a small conv refiner: (B, N, d) -> (B, C, H, W)."""

    def __init__(self, d_model: int, patch_size: int, channels: int, width: int = 16):
        super().__init__()
        self.mlp_head = MLPHead(d_model, patch_size, channels)
        self.refine = conv_refiner(channels, width, channels)
        init_logit_bias_(self.refine[-1])  # start at the mean pixel, away from saturation (see conv.py)

    def forward(self, tokens: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        image = self.mlp_head(tokens, size)  # (B, C, H, W)
        return torch.sigmoid(self.refine(image) + image)


# the ``head`` argument of PatchTransformer -> head class
HEADS = {"linear": MLPHead, "conv": ConvHead, "hybrid": HybridHead}


@dataclasses.dataclass(frozen=True, kw_only=True)
class TransformerConfig(DenoiserConfig):
    """:param patch_size: side of the square patches (4 on 28 x 28: 7 x 7 tokens; 8 on photographs).
    :param d_model: token size.
    :param depth: number of transformer encoder layers.
    :param heads: attention heads per layer.
    :param head: ``"linear"``, ``"conv"`` or ``"hybrid"`` (see the module docstring)."""

    patch_size: int = 4
    d_model: int = 64
    depth: int = 2
    heads: int = 4
    head: str = "linear"

    def __post_init__(self):
        super().__post_init__()
        positive_ints(patch_size=self.patch_size, d_model=self.d_model, depth=self.depth, heads=self.heads)
        if self.head not in HEADS:
            raise ValueError(f"head: expected one of {tuple(HEADS)}, got {self.head!r}")


class PatchTransformer(ImageDenoiser):
    """Encoder-only patch transformer denoiser ``D(y) = head(encoder(y))`` (see :class:`TransformerConfig`).

    A noise-conditional model patchifies the noise-level map with the image.
    """

    Config = TransformerConfig

    def __init__(self, **options):
        super().__init__(**options)
        c = self.config
        self.size_multiple = c.patch_size
        self.encoder = PatchEncoder(self.input_channels, c.patch_size, c.d_model, c.depth, c.heads)
        self.head = HEADS[c.head](c.d_model, c.patch_size, c.channels)

    def denoise(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x), tuple(x.shape[2:]))  # (B, C, H, W)
