r"""A residual U-Net with a noise embedding and self-attention: the architecture of diffusion models.

The layout of Dhariwal & Nichol 2021 (ADM) and Karras et al. 2022 (EDM, ``DhariwalUNet`` /
``SongUNet`` in ``training/networks.py``) at a size a CPU trains: ``len(widths)`` resolution levels
(H, H/2, H/4, ... so H and W are multiples of :math:`2^{L-1}`), ``blocks`` residual blocks per level
in the encoder and ``blocks + 1`` in the decoder (each taking one skip connection), self-attention
at the levels in ``attention`` (7 x 7 for 28 x 28 digits with three levels), and two middle blocks.

The noise level enters through an embedding, not an input channel: :math:`c_{noise} = \tfrac14 \ln \sigma`
(EDM, Table 1) mapped by random Fourier features :math:`\sqrt2 \cos(2\pi f_k c_{noise} + \phi_k)`,
:math:`f_k \sim \mathcal N(0, 1)` (EDM2's ``MPFourier``), and an MLP; each residual block applies it as a
scale and shift after its first normalisation, :math:`h \leftarrow \mathrm{SiLU}(\mathrm{GN}(h)(1 + a) + b)`
(ADM's adaptive group normalisation). A class-conditional model (``num_classes`` > 0) adds a learned
embedding of the label; the extra label ``num_classes`` means "no label", which classifier-free
guidance (Ho & Salimans 2022) trains by dropping labels and samples as the unconditional model.

``denoise`` returns the raw network output :math:`F_\theta`; the preconditioning
(``precondition=True``, the default here) is applied by :class:`~scoredae.nets.base.ImageDenoiser`.
"""

from __future__ import annotations

import dataclasses
import math

import torch
from torch import nn

from .._checks import positive_int, positive_int_tuple
from .base import DenoiserConfig, ImageDenoiser


@dataclasses.dataclass(frozen=True, kw_only=True)
class ResUNetConfig(DenoiserConfig):
    r""":param widths: channels at each resolution level (H, H/2, ...).
    :param blocks: residual blocks per level in the encoder (the decoder has ``blocks + 1``).
    :param attention: the levels (0 = full resolution) whose blocks end in self-attention.
    :param head_channels: channels per attention head.
    :param num_classes: labels of a class-conditional model (0: unconditional).
    :param precondition: EDM's preconditioning (see :mod:`scoredae.nets.precond`).
    """

    widths: tuple[int, ...] = (32, 64, 128)
    blocks: int = 1
    attention: tuple[int, ...] = (2,)
    head_channels: int = 32
    num_classes: int = 0
    precondition: bool = True

    def __post_init__(self):
        super().__post_init__()
        object.__setattr__(self, "widths", positive_int_tuple("widths", self.widths))
        object.__setattr__(self, "attention", tuple(int(a) for a in self.attention))
        positive_int("blocks", self.blocks)
        positive_int("head_channels", self.head_channels)
        if any(not 0 <= a < len(self.widths) for a in self.attention):
            raise ValueError(f"attention: expected level indices in [0, {len(self.widths) - 1}], got {self.attention}")
        for a in self.attention:
            if self.widths[a] % self.head_channels:
                raise ValueError(f"head_channels: {self.head_channels} does not divide widths[{a}] = {self.widths[a]}")
        if self.num_classes < 0:
            raise ValueError(f"num_classes: expected 0 (unconditional) or a positive count, got {self.num_classes}")


def _norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(math.gcd(32, channels // 4), channels)  # groups of at least 4 channels


class FourierEmbedding(nn.Module):
    r""":math:`\sqrt2 \cos(2\pi f c + \phi)` with fixed :math:`f \sim \mathcal N(0, 1)`,
    :math:`\phi \sim \mathcal U(0, 2\pi)` (EDM2, ``MPFourier``); (B,) -> (B, channels)."""

    def __init__(self, channels: int, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.register_buffer("freqs", 2 * math.pi * torch.randn(channels, generator=g))
        self.register_buffer("phases", 2 * math.pi * torch.rand(channels, generator=g))

    def forward(self, c: torch.Tensor) -> torch.Tensor:
        return math.sqrt(2) * torch.cos(torch.outer(c.to(self.freqs.dtype), self.freqs) + self.phases)


class ResBlock(nn.Module):
    """GN-SiLU-conv, embedding scale and shift, GN-SiLU-conv, plus the (1 x 1) skip, scaled by
    :math:`1/\\sqrt2`; then, optionally, multi-head self-attention with its own residual."""

    def __init__(self, c_in: int, c_out: int, emb: int, attention: bool, head_channels: int):
        super().__init__()
        self.norm0, self.conv0 = _norm(c_in), nn.Conv2d(c_in, c_out, 3, padding=1)
        self.affine = nn.Linear(emb, 2 * c_out)
        self.norm1, self.conv1 = _norm(c_out), nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()
        nn.init.zeros_(self.conv1.weight)  # each block starts as its skip (EDM's init_zero)
        nn.init.zeros_(self.conv1.bias)
        self.heads = c_out // head_channels if attention else 0
        if attention:
            self.norm2, self.qkv = _norm(c_out), nn.Conv2d(c_out, 3 * c_out, 1)
            self.proj = nn.Conv2d(c_out, c_out, 1)
            nn.init.zeros_(self.proj.weight)
            nn.init.zeros_(self.proj.bias)

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv0(nn.functional.silu(self.norm0(x)))
        scale, shift = self.affine(emb)[:, :, None, None].chunk(2, dim=1)  # (B, c_out, 1, 1) each
        h = nn.functional.silu(torch.addcmul(shift, self.norm1(h), scale + 1))
        x = (self.conv1(h) + self.skip(x)) / math.sqrt(2)
        if not self.heads:
            return x
        b, c, height, width = x.shape
        q, k, v = self.qkv(self.norm2(x)).reshape(b, 3, self.heads, c // self.heads, height * width).unbind(1)
        # (B, heads, c / heads, HW) -> (B, heads, HW, c / heads) for attention over the HW positions
        a = nn.functional.scaled_dot_product_attention(q.transpose(-1, -2), k.transpose(-1, -2), v.transpose(-1, -2))
        a = a.transpose(-1, -2).reshape(b, c, height, width)
        return (self.proj(a) + x) / math.sqrt(2)


class ResUNet(ImageDenoiser):
    """The residual U-Net of the module docstring (see :class:`ResUNetConfig`)."""

    Config = ResUNetConfig

    def __init__(self, **options):
        super().__init__(**options)
        cfg = self.config
        widths, emb = cfg.widths, 4 * cfg.widths[0]
        self.noise_embedding = FourierEmbedding(widths[0])
        self.embedding = nn.Sequential(nn.Linear(widths[0], emb), nn.SiLU(), nn.Linear(emb, emb), nn.SiLU())
        if cfg.num_classes:
            self.label_embedding = nn.Embedding(cfg.num_classes + 1, emb)  # the last label: none
        self.conv_in = nn.Conv2d(cfg.channels, widths[0], 3, padding=1)

        def block(c_in, c_out, level):
            return ResBlock(c_in, c_out, emb, level in cfg.attention, cfg.head_channels)

        self.encoder, self.downs, skips, c = nn.ModuleList(), nn.ModuleList(), [widths[0]], widths[0]
        for level, w in enumerate(widths):
            if level:
                self.downs.append(nn.Conv2d(c, c, 3, stride=2, padding=1))
                skips.append(c)
            self.encoder.append(nn.ModuleList())
            for _ in range(cfg.blocks):
                self.encoder[-1].append(block(c, w, level))
                c = w
                skips.append(c)
        last = len(widths) - 1
        self.middle = nn.ModuleList([block(c, c, last), ResBlock(c, c, emb, False, cfg.head_channels)])
        self.decoder, self.ups = nn.ModuleList(), nn.ModuleList()
        for level in reversed(range(len(widths))):
            self.decoder.append(nn.ModuleList())
            for _ in range(cfg.blocks + 1):
                self.decoder[-1].append(block(c + skips.pop(), widths[level], level))
                c = widths[level]
            if level:
                self.ups.append(nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c, c, 3, padding=1)))
        self.norm_out, self.conv_out = _norm(c), nn.Conv2d(c, cfg.channels, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    @property
    def size_multiple(self) -> int:
        return 2 ** (len(self.config.widths) - 1)

    @property
    def input_channels(self) -> int:
        return self.config.channels  # the noise level enters through the embedding

    @property
    def label_conditional(self) -> bool:
        return self.config.num_classes > 0

    def condition(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        return x

    def denoise(self, x: torch.Tensor, sigma: torch.Tensor, class_labels: torch.Tensor | None = None) -> torch.Tensor:
        emb = self.embedding(self.noise_embedding(sigma.log() / 4))  # (B, 4 widths[0])
        if self.label_conditional:
            if class_labels is None:
                class_labels = torch.full(sigma.shape, self.config.num_classes, device=x.device)
            emb = emb + self.label_embedding(class_labels)
        h = self.conv_in(x)
        skips = [h]
        for level, blocks in enumerate(self.encoder):
            if level:
                h = self.downs[level - 1](h)
                skips.append(h)
            for blk in blocks:
                h = blk(h, emb)
                skips.append(h)
        for blk in self.middle:
            h = blk(h, emb)
        for i, blocks in enumerate(self.decoder):
            for blk in blocks:
                h = blk(torch.cat([h, skips.pop()], dim=1), emb)
            if i < len(self.ups):
                h = self.ups[i](h)
        return self.conv_out(nn.functional.silu(self.norm_out(h)))
