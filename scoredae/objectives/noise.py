r"""The noise of every noisy loss: levels drawn log-uniformly or log-normally in a range, and
:func:`~scoredae.objectives.noise.perturb`, which draws the levels first and the noise second (common random numbers)."""

from __future__ import annotations

import math

import torch

from .._checks import expand_sigma


def _level_range(sigma_range) -> tuple[float, float]:
    if len(sigma_range) != 2 or not 0 < sigma_range[0] <= sigma_range[1]:
        raise ValueError(f"sigma: expected a range (lo, hi) with 0 < lo <= hi, got {sigma_range}")
    return float(sigma_range[0]), float(sigma_range[1])


def log_uniform_sigmas(n: int, sigma_range, generator: torch.Generator | None = None, *,
                       like: torch.Tensor) -> torch.Tensor:
    r"""``n`` noise levels with :math:`\log \sigma_i \sim \mathcal U(\log lo, \log hi)`, shape ``(n,)``, in the
    dtype and on the device of ``like`` (the continuous version of the geometric levels of Song & Ermon 2019)."""
    lo, hi = _level_range(sigma_range)
    u = torch.rand(n, generator=generator, device=like.device, dtype=like.dtype)
    return torch.exp(math.log(lo) + u * math.log(hi / lo))


def log_normal_sigmas(n: int, mean: float, std: float, sigma_range, generator: torch.Generator | None = None, *,
                      like: torch.Tensor) -> torch.Tensor:
    r"""``n`` noise levels with :math:`\ln \sigma_i \sim \mathcal N(\text{mean}, \text{std}^2)`, clipped to
    ``sigma_range``, shape ``(n,)``: EDM's training distribution (Karras et al. 2022, Table 1:
    :math:`P_{mean} = -1.2`, :math:`P_{std} = 1.2` for images in [-1, 1]), which spends the training on the
    middle levels, where the denoiser's error matters most to a sampler."""
    if not std > 0:
        raise ValueError(f"std: expected a positive standard deviation of ln sigma, got {std}")
    z = torch.randn(n, generator=generator, device=like.device, dtype=like.dtype)
    return torch.exp(mean + std * z).clamp(*_level_range(sigma_range))


def perturb(x: torch.Tensor, sigma, generator: torch.Generator | None = None):
    r"""Noisy points :math:`y = x + \sigma n`, :math:`n \sim \mathcal N(0, I)`, never clamped.

    :param sigma: a float, a tensor of shape ``(B,)``, or a range ``(lo, hi)`` from which one level
        per sample is drawn log-uniformly, :math:`\log \sigma_i \sim \mathcal U(\log lo, \log hi)`
        (the continuous version of the geometric noise levels of Song & Ermon 2019).
    :returns: ``(y, s, n)``: noisy points and noise (shape of ``x``), and the level ``s``
        broadcasting against ``x`` (0-d, or ``(B, 1, ..., 1)``).
    """
    if isinstance(sigma, tuple | list):
        sigma = log_uniform_sigmas(x.shape[0], sigma, generator, like=x)  # (B,)
    s = expand_sigma(sigma, x)
    noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    return torch.addcmul(x, s, noise), s, noise  # x + s * noise in one pass


def model_sigma(s: torch.Tensor) -> torch.Tensor:
    """The level as a model receives it: 0-d, or (B,)."""
    return s.reshape(-1) if s.ndim else s
