r"""One score interface, and the two conversions between a denoiser and a score.

A *score* is any callable ``s(x, sigma)`` returning :math:`\nabla_x \log p_\sigma(x)`, the shape
of ``x``, where :math:`p_\sigma = p * \mathcal N(0, \sigma^2 I)`. Tweedie's formula (Efron 2011,
"Tweedie's formula and selection bias", eq. 2.8; Robbins 1956) links it to the MMSE denoiser:

.. math::
    D^*(y, \sigma) = \mathbb E[x \mid y] = y + \sigma^2 \nabla_y \log p_\sigma(y).
"""

from __future__ import annotations

import warnings

import deepinv
import torch

from ._checks import expand_sigma


def trained_sigma(denoiser) -> float | None:
    """The one noise level a fixed-sigma denoiser was trained at, declared as its ``trained_sigma``;
    None for a noise-conditional denoiser and for one that declares nothing (e.g. deepinv's)."""
    return getattr(denoiser, "trained_sigma", None)


def require_every_level(denoiser, method: str) -> None:
    """Refuse a fixed-sigma denoiser (one with a ``trained_sigma``) for a ``method`` that needs the
    score at every level: its Tweedie score is that of :math:`p_\\sigma` at its one level only."""
    trained = trained_sigma(denoiser)
    if trained is not None:
        raise ValueError(f"{method} needs a noise-conditional denoiser (built with sigma_range); this one was "
                         f"trained at sigma = {trained:g} only, so its Tweedie score is the score of p_sigma "
                         f"at that level only")


class TweedieScore:
    r"""The score of a denoiser by Tweedie's formula:
    :math:`s(x, \sigma) = \big(D(x, \sigma) - x\big) / \sigma^2`.

    Exact when :math:`D` is the MMSE denoiser of the data at noise level :math:`\sigma`; a
    denoiser trained at one level (see :func:`trained_sigma`) gives the score of
    :math:`p_{\sigma}` only at that level, so calling it with another float ``sigma`` warns
    (a tensor ``sigma`` is not inspected: that would synchronise the device on every call).

    :param denoiser: any callable ``D(x, sigma)``, e.g. a :class:`deepinv.models.Denoiser`.
    """

    def __init__(self, denoiser):
        if not callable(denoiser):
            raise TypeError(f"denoiser: expected a callable D(x, sigma), got {type(denoiser).__name__}")
        self.denoiser = denoiser

    def __call__(self, x: torch.Tensor, sigma) -> torch.Tensor:
        s = expand_sigma(sigma, x)
        trained = trained_sigma(self.denoiser)
        if trained is not None and not isinstance(sigma, torch.Tensor) and abs(sigma - trained) > 1e-3 * trained:
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


class GuidedDenoiser(deepinv.models.Denoiser):
    r"""Classifier-free guidance (Ho & Salimans 2022, eq. 6) of a class-conditional denoiser:

    .. math::
        D_w(x, \sigma \mid c) = D(x, \sigma \mid \varnothing) + (1 + w)\,\big(D(x, \sigma \mid c) - D(x, \sigma \mid \varnothing)\big),

    with :math:`\varnothing` the "no label" of a model trained with dropped labels. By Tweedie's
    formula its score is :math:`\nabla \log p_\sigma(x) + (1 + w) \nabla \log p_\sigma(c \mid x)`,
    the score of the tilted density :math:`p_\sigma(x)\, p_\sigma(c \mid x)^{1 + w}`: :math:`w = 0`
    is the conditional model, :math:`w > 0` sharpens the class at the cost of diversity. A call
    costs two denoiser calls when :math:`w > 0`, one when :math:`w = 0`.

    :param denoiser: a class-conditional ``D(x, sigma, class_labels=...)`` that is unconditional
        when called without labels (a :class:`~scoredae.nets.base.ImageDenoiser` with ``num_classes``).
    :param class_labels: the label of every sample, an int or an int64 tensor (B,).
    :param weight: :math:`w \ge 0`.
    """

    def __init__(self, denoiser, class_labels, weight: float = 0.0):
        super().__init__()
        if not getattr(denoiser, "label_conditional", False):
            raise ValueError(f"denoiser: guidance needs a class-conditional model (trained with labels), got a "
                             f"{type(denoiser).__name__} without them")
        if not (isinstance(weight, int | float) and weight >= 0):
            raise ValueError(f"weight: expected a guidance weight w >= 0 (0: the conditional model), got {weight!r}")
        self.denoiser, self.class_labels, self.weight = denoiser, class_labels, float(weight)

    @property
    def sigma_range(self):
        """The noise levels of the guided model."""
        return self.denoiser.sigma_range

    def forward(self, x: torch.Tensor, sigma, **kwargs) -> torch.Tensor:
        conditional = self.denoiser(x, sigma, class_labels=self.class_labels)
        if self.weight == 0:
            return conditional
        unconditional = self.denoiser(x, sigma)
        return unconditional + (1 + self.weight) * (conditional - unconditional)
