r"""A noise-conditional MLP for toy data: one network, usable as a score and as a denoiser.

The network :math:`F_\theta` sees the scaled point :math:`c_{in} x` and an embedding of
:math:`c_{noise} = \frac14 \log \sigma`, with :math:`c_{in} = 1 / \sqrt{\sigma^2 + \sigma_{data}^2}`
(Karras et al. 2022, "Elucidating the design space...", Table 1). Its output is read as

* ``parametrization="score"``: :math:`s_\theta(x, \sigma) = F_\theta / \sigma` (Song & Ermon 2020,
  "Improved techniques...", technique 3), the denoiser then by Tweedie's formula;
* ``parametrization="denoiser"``: :math:`D_\theta(x, \sigma) = c_{skip} x + c_{out} F_\theta` with
  :math:`c_{skip} = \sigma_{data}^2 / (\sigma^2 + \sigma_{data}^2)`,
  :math:`c_{out} = \sigma \sigma_{data} / \sqrt{\sigma^2 + \sigma_{data}^2}` (Karras et al. 2022),
  the score then by Tweedie's formula.

Both conversions are those of :mod:`scoredae.score` (:class:`~scoredae.score.TweedieScore` and
:func:`~scoredae.score.denoiser_from_score`), so ``model(x, sigma)`` and ``model.score(x, sigma)``
always satisfy :math:`D = x + \sigma^2 s`.
"""

from __future__ import annotations

import itertools
import math
from typing import Literal

import deepinv
import torch
from torch import nn

from ..score import TweedieScore, denoiser_from_score
from ..utils import expand_sigma


class ToyScoreNet(deepinv.models.Denoiser):
    r"""MLP score / denoiser for points of dimension ``dim``.

    :param dim: the data dimension :math:`d`; inputs have shape ``(B, *S)`` with :math:`\prod S = d`.
    :param hidden: width of the hidden layers.
    :param depth: number of hidden layers (SiLU activations).
    :param parametrization: what the network's output is, ``"score"`` or ``"denoiser"`` (see above).
    :param sigma_data: the data scale :math:`\sigma_{data}` in the preconditioning.
    :param n_freqs: the noise embedding is :math:`[c, \sin(2^k c), \cos(2^k c)]_{k < n_{freqs}}`.

    ``forward(x, sigma)`` is the denoiser, :meth:`score` the score; both compute in the dtype of the
    parameters and return the dtype of ``x``. ``sigma`` is a float or a tensor of shape ``(B,)``.
    """

    def __init__(
        self,
        dim: int,
        hidden: int = 128,
        depth: int = 3,
        parametrization: Literal["score", "denoiser"] = "score",
        sigma_data: float = 1.0,
        n_freqs: int = 6,
    ):
        super().__init__()
        for name, value in (("dim", dim), ("hidden", hidden), ("depth", depth), ("n_freqs", n_freqs)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: expected a positive int, got {value!r}")
        if not sigma_data > 0:
            raise ValueError(f"sigma_data must be > 0, got {sigma_data}")
        self.dim, self.sigma_data = dim, float(sigma_data)
        self.register_buffer("freqs", 2.0 ** torch.arange(n_freqs, dtype=torch.get_default_dtype()))
        widths = [dim + 1 + 2 * n_freqs] + [hidden] * depth
        layers: list[nn.Module] = []
        for w_in, w_out in itertools.pairwise(widths):
            layers += [nn.Linear(w_in, w_out), nn.SiLU()]
        self.net = nn.Sequential(*layers, nn.Linear(hidden, dim))
        if parametrization == "score":
            self._score = self._network_score
            self._denoiser = denoiser_from_score(self._network_score)
        elif parametrization == "denoiser":
            self._score = TweedieScore(self._network_denoiser)
            self._denoiser = self._network_denoiser
        else:
            raise ValueError(f"parametrization: expected 'score' or 'denoiser', got {parametrization!r}")
        self.parametrization = parametrization
        self.config = {"dim": dim, "hidden": hidden, "depth": depth, "parametrization": parametrization,
                       "sigma_data": self.sigma_data, "n_freqs": n_freqs}

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
        c_in = torch.rsqrt(s**2 + self.sigma_data**2)
        features = torch.cat([c_in * points, c, angles.sin(), angles.cos()], dim=1)
        return points, s, self.net(features)

    def _network_score(self, x: torch.Tensor, sigma) -> torch.Tensor:
        _, s, out = self._run(x, sigma)
        return (out / s).reshape(x.shape).to(x.dtype)

    def _network_denoiser(self, x: torch.Tensor, sigma) -> torch.Tensor:
        points, s, out = self._run(x, sigma)
        var = s**2 + self.sigma_data**2
        denoised = self.sigma_data**2 / var * points + s * self.sigma_data * torch.rsqrt(var) * out
        return denoised.reshape(x.shape).to(x.dtype)
