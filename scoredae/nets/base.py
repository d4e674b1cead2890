r"""The base class of every image denoiser in scoredae, and the configuration they all share.

A denoiser is called ``D(x, sigma)`` with ``x`` of shape ``(B, C, H, W)`` and ``sigma`` a float or
a tensor of shape ``(B,)``. It is trained with the squared error, so it estimates the posterior
mean :math:`\mathbb{E}[x \mid x + \sigma n]`, and Tweedie's formula turns it into a score.

A model is built either *fixed-sigma* (``sigma=0.5``: trained at one noise level, declared as
``trained_sigma``; the ``sigma`` argument of ``forward`` is then validated and otherwise ignored:
the network always runs at ``trained_sigma``) or *noise-conditional* (``sigma_range=(0.01, 1.0)``:
the noise level enters the network as an extra input channel filled with :math:`\sigma`, as in
DRUNet, so one model serves every level).

Every architecture accepts any image size its layers allow: ``H`` and ``W`` multiples of its
down-sampling factor or patch size (``size_multiple``), or the one configured size of the MLP.
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import ClassVar

import deepinv
import torch

from .._checks import expand_sigma, positive, positive_int
from .precond import edm_scalings


@dataclasses.dataclass(frozen=True, kw_only=True)
class DenoiserConfig:
    """What every image denoiser is built from; each architecture adds its own fields.

    :param channels: image channels (1 for MNIST, 3 for colour photographs).
    :param sigma: the one noise level of a fixed-sigma model, or
    :param sigma_range: ``(min, max)`` noise levels of a noise-conditional model.
    :param sigma_data: :math:`\\sigma_{data}`, the data scale of the EDM preconditioning
        (Karras et al. 2022, Table 1) and of the training weight
        :math:`\\lambda(\\sigma) = 1/\\sigma^2 + 1/\\sigma_{data}^2` (their eq. 8). 0.5 is EDM's
        value, which the shipped ``unet_edm`` and colour models use; ``resunet_cfg`` uses MNIST's pixel
        standard deviation, 0.308.
    :param precondition: wrap the network :math:`F_\\theta` in EDM's preconditioning,
        :math:`D = c_{skip}\\, y + c_{out}\\, F_\\theta(c_{in}\\, y, \\sigma)`
        (:mod:`scoredae.nets.precond`), applied here for every architecture: at small
        :math:`\\sigma` the output starts from the input, at large :math:`\\sigma` from the data
        scale, and the network's input and target have unit variance at every level.
    """

    channels: int = 1
    sigma: float | None = None
    sigma_range: tuple[float, float] | None = None
    sigma_data: float = 0.5
    precondition: bool = False

    def __post_init__(self):
        positive_int("channels", self.channels)
        positive("sigma_data", self.sigma_data)
        if (self.sigma is None) == (self.sigma_range is None):
            raise ValueError("give exactly one of sigma (fixed-sigma) or sigma_range (noise-conditional)")
        if self.sigma is not None:
            object.__setattr__(self, "sigma", positive("sigma", self.sigma))
        else:
            lo, hi = (float(v) for v in self.sigma_range)
            if not 0 < lo < hi:
                raise ValueError(f"sigma_range: expected (min, max) with 0 < min < max, got {self.sigma_range}")
            object.__setattr__(self, "sigma_range", (lo, hi))


class ImageDenoiser(deepinv.models.Denoiser):
    """Shared input checks and noise conditioning; subclasses implement ``denoise(x, sigma)``.

    Subclasses set ``Config`` (their :class:`DenoiserConfig` dataclass) and ``size_multiple``, and
    are built from its fields as keywords, ``UNet(width=32, sigma=0.5)``; ``self.config`` is the
    dataclass, so ``type(m)(**dataclasses.asdict(m.config))`` rebuilds the architecture.
    """

    Config: ClassVar[type[DenoiserConfig]] = DenoiserConfig
    size_multiple: ClassVar[int] = 1

    def __init__(self, **options):
        super().__init__()
        self.config = self.Config(**options)
        self._warned_range = False  # the out-of-range warning is given once per model

    @property
    def trained_sigma(self) -> float | None:
        """The noise level of a fixed-sigma model; None when noise-conditional."""
        return self.config.sigma

    @property
    def sigma_range(self) -> tuple[float, float] | None:
        """``(min, max)`` of a noise-conditional model; None when fixed-sigma."""
        return self.config.sigma_range

    @property
    def noise_conditional(self) -> bool:
        return self.config.sigma_range is not None

    @property
    def input_channels(self) -> int:
        """The number of channels the network reads (the image's, plus the noise-level map when conditional)."""
        return self.config.channels + int(self.noise_conditional)

    def check_size(self, height: int, width: int) -> None:
        """Refuse an image size the architecture cannot take, naming the sizes it accepts."""
        m = self.size_multiple
        if height % m or width % m or height < m or width < m:
            raise ValueError(f"x: {type(self).__name__} takes heights and widths that are multiples "
                             f"of {m}, got {height} x {width}")

    @property
    def label_conditional(self) -> bool:
        """Whether the model takes ``class_labels`` (a class-conditional model)."""
        return False

    def forward(self, x: torch.Tensor, sigma=None, class_labels=None) -> torch.Tensor:
        """Denoise ``x`` (B, C, H, W) observed at noise level ``sigma`` (float or (B,)); a
        class-conditional model also takes ``class_labels``, an int or an int64 tensor (B,)
        (None: unconditional).

        A noise-conditional model called with a float ``sigma`` outside its ``sigma_range`` warns
        once (a tensor ``sigma`` is not read back: that would synchronise the device)."""
        c = self.config.channels
        if not isinstance(x, torch.Tensor) or not x.is_floating_point():
            raise TypeError(f"x: expected a floating-point tensor in [0, 1], got {getattr(x, 'dtype', type(x))}")
        if x.ndim != 4 or x.shape[1] != c:
            raise ValueError(f"x: expected shape (B, {c}, H, W), got {tuple(x.shape)}")
        weight_dtype = next(self.parameters()).dtype
        if x.dtype != weight_dtype:
            raise TypeError(f"x: expected the dtype of the model's weights, {weight_dtype}, got {x.dtype}; "
                            f"convert the input (x.to({weight_dtype})) or the model (model.to({x.dtype}))")
        self.check_size(*x.shape[2:])
        if self.noise_conditional:
            if sigma is None:
                raise ValueError("sigma is required by a noise-conditional denoiser")
            s = expand_sigma(sigma, x).expand(x.shape[0], 1, 1, 1)  # (B, 1, 1, 1)
            self._warn_outside_range(sigma)
        else:
            if sigma is not None:
                expand_sigma(sigma, x)  # validated; a fixed-sigma model runs at trained_sigma
            s = x.new_full((x.shape[0], 1, 1, 1), self.trained_sigma)
        labels = {} if class_labels is None else {"class_labels": self._labels(class_labels, x)}
        if not self.config.precondition:
            return self.denoise(self.condition(x, s), s.reshape(-1), **labels)
        c_skip, c_out, c_in = edm_scalings(s, self.config.sigma_data)  # (B, 1, 1, 1) each
        return c_skip * x + c_out * self.denoise(self.condition(c_in * x, s), s.reshape(-1), **labels)

    def _labels(self, class_labels, x: torch.Tensor) -> torch.Tensor:
        """``class_labels`` as an int64 tensor (B,) on the device of ``x``, or a clear refusal."""
        if not self.label_conditional:
            raise ValueError(f"class_labels: this {type(self).__name__} is unconditional (trained without "
                             f"labels); call it without class_labels")
        n = self.config.num_classes
        if isinstance(class_labels, int):
            if not 0 <= class_labels < n:
                raise ValueError(f"class_labels: expected a label in 0..{n - 1}, got {class_labels}")
            return torch.full((x.shape[0],), class_labels, device=x.device)
        if not isinstance(class_labels, torch.Tensor) or class_labels.dtype != torch.int64 or \
                class_labels.shape != (x.shape[0],):
            raise ValueError(f"class_labels: expected an int or an int64 tensor of shape ({x.shape[0]},), got "
                             f"{getattr(class_labels, 'dtype', type(class_labels))} of shape "
                             f"{tuple(getattr(class_labels, 'shape', ()))}")
        return class_labels

    def _warn_outside_range(self, sigma) -> None:
        lo, hi = self.sigma_range
        if isinstance(sigma, int | float) and not lo <= sigma <= hi and not self._warned_range:
            self._warned_range = True
            warnings.warn(f"sigma={sigma:g} is outside the range [{lo:g}, {hi:g}] this {type(self).__name__} "
                          f"was trained on: its output there is an extrapolation", stacklevel=2)

    def condition(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """Append the noise-level map channel (B, 1, H, W) = sigma when noise-conditional."""
        if not self.noise_conditional:
            return x
        return torch.cat([x, s.expand(-1, 1, *x.shape[2:])], dim=1)

    def denoise(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """The network :math:`F_\\theta`: ``x`` has ``self.input_channels`` channels (scaled by
        :math:`c_{in}` when preconditioned), ``sigma`` shape (B,); class-conditional models also
        take ``class_labels`` (B,)."""
        raise NotImplementedError
