r"""Networks assembled from the scratch layers, each a :class:`~scoredae.scratch.module.Sequential`."""

from __future__ import annotations

import itertools

import torch

from .activations import ReLU, Sigmoid
from .init import pytorch_default
from .layers import Conv2d, Linear, Upsampling
from .module import Sequential


def conv_autoencoder(in_ch: int = 1, channels: tuple[int, ...] = (32, 64), kernel_size: int = 3, *,
                     init=pytorch_default, generator: torch.Generator | None = None,
                     dtype: torch.dtype | None = None, device=None) -> Sequential:
    r"""A convolutional denoising autoencoder for images in :math:`[0, 1]`.

    Encoder: per entry :math:`c` of ``channels``, a stride-2 ``Conv2d`` to :math:`c` channels
    (padding :math:`k // 2`, halving the height and width) and a ReLU. Decoder: the mirror image,
    ``Upsampling`` blocks (nearest x2 then a 'same' convolution) with ReLUs, back to ``in_ch``
    channels, and a final Sigmoid. On 28 x 28 MNIST with ``channels=(32, 64)``:
    (B,1,28,28) -> (B,32,14,14) -> (B,64,7,7) -> (B,32,14,14) -> (B,1,28,28).
    The height and width must be divisible by :math:`2^{\text{len(channels)}}`.
    """
    if not channels:
        raise ValueError("channels: expected at least one encoder width, got an empty tuple")
    kw = {"init": init, "generator": generator, "dtype": dtype, "device": device}
    widths = (in_ch, *channels)
    layers = []
    for c_in, c_out in itertools.pairwise(widths):
        layers += [Conv2d(c_in, c_out, kernel_size, stride=2, padding=kernel_size // 2, **kw), ReLU()]
    decoder_widths = widths[::-1]
    for c_in, c_out in itertools.pairwise(decoder_widths):
        layers += [Upsampling(c_in, c_out, kernel_size, **kw), ReLU()]
    layers[-1] = Sigmoid()  # the last block ends in a Sigmoid instead of a ReLU
    return Sequential(*layers)


def mlp(in_features: int, hidden: int = 64, depth: int = 2, out_features: int | None = None, *,
        init=pytorch_default, generator: torch.Generator | None = None,
        dtype: torch.dtype | None = None, device=None) -> Sequential:
    """A ReLU multilayer perceptron for points (N, d): ``depth`` hidden layers of width ``hidden``
    and a linear output of ``out_features`` (default ``in_features``)."""
    if depth < 1:
        raise ValueError(f"depth must be >= 1, got {depth}")
    kw = {"init": init, "generator": generator, "dtype": dtype, "device": device}
    widths = [in_features] + [hidden] * depth
    layers = []
    for f_in, f_out in itertools.pairwise(widths):
        layers += [Linear(f_in, f_out, **kw), ReLU()]
    layers.append(Linear(hidden, out_features or in_features, **kw))
    return Sequential(*layers)
