r"""A small CNN classifier of MNIST digits, the judge of generated digits' quality
(see :mod:`scoredae.eval.sample_quality`); trained by :func:`scoredae.train.trainers.train_classifier`."""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from .._checks import positive_ints


@dataclasses.dataclass(frozen=True)
class ClassifierConfig:
    """:param width: channels of the first convolution (``2 width`` in the second).
    :param feature_dim: size of the penultimate (feature) layer."""

    width: int = 32
    feature_dim: int = 128

    def __post_init__(self):
        positive_ints(width=self.width, feature_dim=self.feature_dim)


class MNISTClassifier(nn.Module):
    """conv(32) - pool - conv(64) - pool - fc(128) - fc(10); ``features`` is the 128-d layer
    (built from :class:`ClassifierConfig`'s fields)."""

    def __init__(self, **options):
        super().__init__()
        self.config = ClassifierConfig(**options)
        width, feature_dim = self.config.width, self.config.feature_dim
        self.body = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # (B, w, 14, 14)
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # (B, 2w, 7, 7)
            nn.Flatten(), nn.Linear(2 * width * 49, feature_dim), nn.ReLU(),
        )
        self.head = nn.Sequential(nn.Dropout(0.3), nn.Linear(feature_dim, 10))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features, (B, feature_dim), for x (B, 1, 28, 28) in [0, 1]."""
        if x.ndim != 4 or tuple(x.shape[1:]) != (1, 28, 28):
            raise ValueError(f"x: expected shape (B, 1, 28, 28), got {tuple(x.shape)}")
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits (B, 10)."""
        return self.head(self.features(x))
