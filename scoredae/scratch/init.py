r"""Weight initialisers: fill a layer's ``weight`` and ``bias`` in place.

Each takes ``(weight, bias, fan_in, fan_out, generator)``, where for a convolution
:math:`\text{fan\_in} = C_\text{in} k^2` and :math:`\text{fan\_out} = C_\text{out} k^2`
(for a linear layer, the input and output sizes), as in ``torch.nn.init``.

* :func:`pytorch_default`: :math:`W, b \sim \mathcal U(-1/\sqrt{\text{fan\_in}},\,
  1/\sqrt{\text{fan\_in}})`, what ``torch.nn.Conv2d`` and ``torch.nn.Linear`` do
  (their ``kaiming_uniform_(a=sqrt(5))`` has exactly this bound).
* :func:`xavier_uniform`: :math:`W \sim \mathcal U(-a, a)`,
  :math:`a = \sqrt{6 / (\text{fan\_in} + \text{fan\_out})}`, :math:`b = 0`
  (Glorot & Bengio 2010, eq. 16): keeps the variance of activations and gradients for
  linear / tanh units.
* :func:`he_normal`: :math:`W \sim \mathcal N(0, 2 / \text{fan\_in})`, :math:`b = 0`
  (He et al. 2015, eq. 10): keeps the variance of activations through ReLU units.
"""

from __future__ import annotations

import math

import torch


def _uniform_(t: torch.Tensor, bound: float, generator: torch.Generator | None) -> None:
    t.uniform_(-bound, bound, generator=generator)


def pytorch_default(weight, bias, fan_in: int, fan_out: int, generator: torch.Generator | None = None):
    bound = 1.0 / math.sqrt(fan_in)
    _uniform_(weight, bound, generator)
    _uniform_(bias, bound, generator)


def xavier_uniform(weight, bias, fan_in: int, fan_out: int, generator: torch.Generator | None = None):
    _uniform_(weight, math.sqrt(6.0 / (fan_in + fan_out)), generator)
    bias.zero_()


def he_normal(weight, bias, fan_in: int, fan_out: int, generator: torch.Generator | None = None):
    weight.normal_(0.0, math.sqrt(2.0 / fan_in), generator=generator)
    bias.zero_()
