r"""A noise-conditional MLP for toy data: a denoiser whose network parametrises a score or a denoiser.

The network :math:`F_\theta` sees the scaled point :math:`c_{in} x` and an embedding of
:math:`c_{noise} = \frac14 \log \sigma`, with :math:`c_{in}` of :mod:`scoredae.nets.precond`
(Karras et al. 2022, Table 1). Its output is read as

* ``parametrization="score"``: :math:`s_\theta(x, \sigma) = F_\theta / \sigma` (Song & Ermon 2020,
  "Improved techniques...", technique 3), the denoiser then by Tweedie's formula;
* ``parametrization="denoiser"``: :math:`D_\theta(x, \sigma) = c_{skip} x + c_{out} F_\theta`
  (:func:`~scoredae.nets.precond.edm_scalings`), the score then by Tweedie's formula.

Both conversions are those of :mod:`scoredae.score` (:class:`~scoredae.score.TweedieScore` and
:func:`~scoredae.score.denoiser_from_score`), so ``model(x, sigma)`` and ``model.score(x, sigma)``
always satisfy :math:`D = x + \sigma^2 s`. As every denoiser of scoredae, the model *is* the
denoiser (a :class:`deepinv.models.Denoiser`, ``model(x, sigma)``); its score is ``model.score``.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from typing import Literal

import deepinv
import torch
from torch import nn

from .._checks import expand_sigma, positive, positive_ints
from ..score import TweedieScore, denoiser_from_score
from .precond import edm_scalings


@dataclasses.dataclass(frozen=True)
class ToyConfig:
    r"""What a :class:`ToyDenoiser` is built from.

    :param dim: the data dimension :math:`d`; inputs have shape ``(B, *S)`` with :math:`\prod S = d`.
    :param hidden: width of the hidden layers.
    :param depth: number of hidden layers (SiLU activations).
    :param parametrization: what the network's output is, ``"score"`` or ``"denoiser"`` (module docstring).
    :param sigma_data: the data scale :math:`\sigma_{data}` in the preconditioning.
    :param n_freqs: the noise embedding is :math:`[c, \sin(2^k c), \cos(2^k c)]_{k < n_{freqs}}`.
    """

    dim: int
    hidden: int = 128
    depth: int = 3
    parametrization: Literal["score", "denoiser"] = "score"
    sigma_data: float = 1.0
    n_freqs: int = 6

    def __post_init__(self):
        positive_ints(dim=self.dim, hidden=self.hidden, depth=self.depth, n_freqs=self.n_freqs)
        positive("sigma_data", self.sigma_data)
        if self.parametrization not in ("score", "denoiser"):
            raise ValueError(f"parametrization: expected 'score' or 'denoiser', got {self.parametrization!r}")


class ToyDenoiser(deepinv.models.Denoiser):
    r"""MLP denoiser (and score) for points of dimension ``dim``, built from :class:`ToyConfig`'s
    fields, ``ToyDenoiser(2, hidden=64)``.

    ``forward(x, sigma)`` is the denoiser, :meth:`score` the score; both compute in the dtype of the
    parameters and return the dtype of ``x``. ``sigma`` is a float or a tensor of shape ``(B,)``.
    """

    def __init__(self, dim: int, **options):
        super().__init__()
        c = self.config = ToyConfig(dim, **options)
        self.dim, self.sigma_data = c.dim, float(c.sigma_data)
        self.register_buffer("freqs", 2.0 ** torch.arange(c.n_freqs, dtype=torch.get_default_dtype()))
        widths = [c.dim + 1 + 2 * c.n_freqs] + [c.hidden] * c.depth
        layers: list[nn.Module] = []
        for w_in, w_out in itertools.pairwise(widths):
            layers += [nn.Linear(w_in, w_out), nn.SiLU()]
        self.net = nn.Sequential(*layers, nn.Linear(c.hidden, c.dim))
        if c.parametrization == "score":
            self._score = self._network_score
            self._denoiser = denoiser_from_score(self._network_score)
        else:
            self._score = TweedieScore(self._network_denoiser)
            self._denoiser = self._network_denoiser

    def forward(self, x: torch.Tensor, sigma, **kwargs) -> torch.Tensor:
        r"""The denoiser :math:`D_\theta(x, \sigma)`, shape of ``x``."""
        return self._denoiser(x, sigma)

    def score(self, x: torch.Tensor, sigma) -> torch.Tensor:
        r"""The score :math:`s_\theta(x, \sigma) \approx \nabla_x \log p_\sigma(x)`, shape of ``x``."""
        return self._score(x, sigma)

    def _run(self, x: torch.Tensor, sigma):
        """Points (B, d), levels (B, 1), and the network output F (B, d), all in the parameters' dtype."""
        if x.ndim < 2 or math.prod(x.shape[1:]) != self.dim:
            raise ValueError(f"x: expected shape (B, *S) with prod(S) = {self.dim}, got {tuple(x.shape)}")
        points = x.reshape(x.shape[0], self.dim).to(self.freqs.dtype)  # (B, d)
        s = expand_sigma(sigma, points).expand(points.shape[0], 1)  # (B, 1)
        c = 0.25 * torch.log(s)  # c_noise, (B, 1)
        angles = c * self.freqs  # (B, n_freqs)
        _, _, c_in = edm_scalings(s, self.sigma_data)
        features = torch.cat([c_in * points, c, angles.sin(), angles.cos()], dim=1)
        return points, s, self.net(features)

    def _network_score(self, x: torch.Tensor, sigma) -> torch.Tensor:
        _, s, out = self._run(x, sigma)
        return (out / s).reshape(x.shape).to(x.dtype)

    def _network_denoiser(self, x: torch.Tensor, sigma) -> torch.Tensor:
        points, s, out = self._run(x, sigma)
        c_skip, c_out, _ = edm_scalings(s, self.sigma_data)
        denoised = c_skip * points + c_out * out
        return denoised.reshape(x.shape).to(x.dtype)
