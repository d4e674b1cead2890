r"""One score interface, and the two conversions between a denoiser and a score.

A *score* is any callable ``s(x, sigma)`` returning :math:`\nabla_x \log p_\sigma(x)`, the shape
of ``x``, where :math:`p_\sigma = p * \mathcal N(0, \sigma^2 I)`. Tweedie's formula (Efron 2011,
"Tweedie's formula and selection bias", eq. 2.8; Robbins 1956) links it to the MMSE denoiser:

.. math::
    D^*(y, \sigma) = \mathbb E[x \mid y] = y + \sigma^2 \nabla_y \log p_\sigma(y).
"""

from __future__ import annotations

import math
import warnings
from typing import Protocol, runtime_checkable

import deepinv
import torch

from .mixtures import GaussianMixture
from .utils import expand_sigma


@runtime_checkable
class Score(Protocol):
    """``s(x, sigma) -> grad_x log p_sigma(x)``, a tensor with the shape of ``x``."""

    def __call__(self, x: torch.Tensor, sigma) -> torch.Tensor: ...


class TweedieScore:
    r"""The score of a denoiser by Tweedie's formula:
    :math:`s(x, \sigma) = \big(D(x, \sigma) - x\big) / \sigma^2`.

    Exact when :math:`D` is the MMSE denoiser of the data at noise level :math:`\sigma`; a
    denoiser trained at one level (attribute ``trained_sigma``) gives the score of
    :math:`p_{\sigma}` only at that level, so using it elsewhere warns.

    :param denoiser: any callable ``D(x, sigma)``, e.g. a :class:`deepinv.models.Denoiser`.
    """

    def __init__(self, denoiser):
        if not callable(denoiser):
            raise TypeError(f"denoiser: expected a callable D(x, sigma), got {type(denoiser).__name__}")
        self.denoiser = denoiser

    def __call__(self, x: torch.Tensor, sigma) -> torch.Tensor:
        s = expand_sigma(sigma, x)
        trained = getattr(self.denoiser, "trained_sigma", None)
        if trained is not None and not torch.allclose(s, torch.full_like(s, trained), rtol=1e-3):
            warnings.warn(
                f"the denoiser was trained at sigma={trained}; its Tweedie score at other "
                f"noise levels is not the score of p_sigma",
                stacklevel=2,
            )
        return (self.denoiser(x, sigma) - x) / s**2


class _ScoreDenoiser(deepinv.models.Denoiser):
    r""":math:`D(x, \sigma) = x + \sigma^2 s(x, \sigma)`."""

    def __init__(self, score):
        super().__init__()
        self.score = score

    def forward(self, x: torch.Tensor, sigma, **kwargs) -> torch.Tensor:
        return x + expand_sigma(sigma, x) ** 2 * self.score(x, sigma)


def denoiser_from_score(score) -> deepinv.models.Denoiser:
    r"""The MMSE denoiser of a score by Tweedie's formula, :math:`D(x, \sigma) = x + \sigma^2 s(x, \sigma)`,
    as a :class:`deepinv.models.Denoiser`; the inverse of :class:`TweedieScore`."""
    if not callable(score):
        raise TypeError(f"score: expected a callable s(x, sigma), got {type(score).__name__}")
    return _ScoreDenoiser(score)


class MixtureDenoiser(deepinv.models.Denoiser):
    r"""The exact MMSE denoiser :math:`D(y, \sigma) = \mathbb E[x \mid y = x + \sigma n]` of a
    :class:`~scoredae.mixtures.GaussianMixture` prior, as a :class:`deepinv.models.Denoiser`.

    Accepts ``x`` of shape ``(B, *S)`` with :math:`\prod S = d` (points, or images flattened to
    ``d`` pixels), so ``deepinv.optim.ScorePrior(MixtureDenoiser(gm))`` works unchanged. ``sigma``
    may differ per sample (shape ``(B,)``).
    """

    def __init__(self, mixture: GaussianMixture):
        super().__init__()
        if not isinstance(mixture, GaussianMixture):
            raise TypeError(f"mixture: expected a GaussianMixture, got {type(mixture).__name__}")
        self.mixture = mixture

    def forward(self, x: torch.Tensor, sigma, **kwargs) -> torch.Tensor:
        d = self.mixture.dim
        if x.ndim < 2 or math.prod(x.shape[1:]) != d:
            raise ValueError(f"x: expected shape (B, *S) with prod(S) = {d}, got {tuple(x.shape)}")
        points = x.reshape(x.shape[0], d).to(self.mixture.means.dtype)  # (B, d)
        s = expand_sigma(sigma, points).reshape(-1).expand(x.shape[0])  # (B,)
        out = torch.empty_like(points)
        for level in torch.unique(s):
            rows = s == level
            out[rows] = self.mixture.mmse(points[rows], float(level))
        return out.reshape(x.shape).to(x.dtype)
