r"""The base class of every MNIST denoiser in scoredae.

A denoiser is called ``D(x, sigma)`` with ``x`` of shape ``(B, 1, 28, 28)`` and ``sigma`` a float
or a tensor of shape ``(B,)``. It is trained with the squared error, so it estimates the posterior
mean :math:`\mathbb{E}[x \mid x + \sigma n]`, and Tweedie's formula turns it into a score.

A model is built either *fixed-sigma* (``sigma=0.5``: trained at one noise level, recorded as
``trained_sigma``; the ``sigma`` argument of ``forward`` is then only checked, not used) or
*noise-conditional* (``sigma_range=(0.01, 1.0)``: the noise level enters the network as an extra
input channel filled with :math:`\sigma`, as in DRUNet, so one model serves every level).
"""

from __future__ import annotations

import deepinv
import torch

from ..utils import expand_sigma

IMAGE_SHAPE = (1, 28, 28)


def _all_finite(x: torch.Tensor) -> bool:
    """No NaN or inf in ``x``, from its min and max alone (NaN propagates through both)."""
    if x.numel() == 0:
        return True
    lo, hi = torch.aminmax(x)
    return bool(torch.isfinite(lo) & torch.isfinite(hi))


class MNISTDenoiser(deepinv.models.Denoiser):
    """Shared input checks and noise conditioning; subclasses implement :meth:`denoise`.

    :param sigma: the one noise level of a fixed-sigma model.
    :param sigma_range: ``(min, max)`` noise levels of a noise-conditional model.

    ``self.config`` holds the constructor's keyword arguments, so ``type(m)(**m.config)``
    rebuilds the architecture; subclasses add their own keys to it.
    """

    def __init__(self, *, sigma: float | None = None, sigma_range=None):
        super().__init__()
        if (sigma is None) == (sigma_range is None):
            raise ValueError("give exactly one of sigma (fixed-sigma) or sigma_range (conditional)")
        if sigma is not None and not sigma > 0:
            raise ValueError(f"sigma must be > 0, got {sigma}")
        if sigma_range is not None:
            lo, hi = (float(v) for v in sigma_range)
            if not 0 < lo < hi:
                raise ValueError(f"sigma_range must satisfy 0 < min < max, got {sigma_range}")
            sigma_range = (lo, hi)
        self.trained_sigma = None if sigma is None else float(sigma)
        self.sigma_range = sigma_range
        self.config = {"sigma": self.trained_sigma, "sigma_range": sigma_range}

    @property
    def noise_conditional(self) -> bool:
        return self.sigma_range is not None

    @property
    def in_channels(self) -> int:
        """1 image channel, plus the noise-level map for a noise-conditional model."""
        return 2 if self.noise_conditional else 1

    def forward(self, x: torch.Tensor, sigma=None, **kwargs) -> torch.Tensor:
        """Denoise ``x`` (B, 1, 28, 28) observed at noise level ``sigma`` (float or (B,))."""
        if x.ndim != 4 or tuple(x.shape[1:]) != IMAGE_SHAPE:
            raise ValueError(f"x: expected shape (B, 1, 28, 28), got {tuple(x.shape)}")
        if not _all_finite(x):
            raise ValueError("x contains NaN or inf")
        if sigma is None:
            if self.noise_conditional:
                raise ValueError("sigma is required by a noise-conditional denoiser")
            sigma = self.trained_sigma
        s = expand_sigma(sigma, x).expand(x.shape[0], 1, 1, 1)  # (B, 1, 1, 1)
        return self.denoise(self.condition(x, s), s.reshape(-1))

    def condition(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """Append the noise-level map channel (B, 1, H, W) = sigma when noise-conditional."""
        if not self.noise_conditional:
            return x
        return torch.cat([x, s.expand(-1, 1, *x.shape[2:])], dim=1)

    def denoise(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """The network: ``x`` has ``self.in_channels`` channels, ``sigma`` shape (B,)."""
        raise NotImplementedError
