r"""Sources of training batches for :func:`scoredae.train.loop.train`, all on the training device.

A source is called ``batches(step, generator, rank, world)`` and returns the batch of that step
for that process. :class:`TensorBatches` indexes rows of tensors held once on the device (no
per-sample Python work); :class:`SampledBatches` draws a fresh batch every step (toy data).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .._checks import positive_int
from ..mixtures import GaussianMixture
from ..rng import seeded


class TensorBatches:
    """Batches of the rows of ``tensors`` (same length, on one device), epoch by epoch.

    Each epoch's order is a permutation drawn from ``(seed, epoch)`` alone; step ``k`` of an epoch
    takes rows ``perm[k B : (k + 1) B]``, split between the ``world`` processes. Returns one
    tensor, or a tuple when several are given (e.g. images and labels).
    """

    def __init__(self, *tensors: torch.Tensor, batch_size: int, seed: int = 0):
        if not tensors or any(len(t) != len(tensors[0]) for t in tensors):
            raise ValueError(f"tensors: expected one or more tensors of the same length, got "
                             f"{[tuple(t.shape) for t in tensors]}")
        if len(tensors[0]) == 0:
            raise ValueError("tensors: expected at least one row, got none")
        self.tensors, self.batch_size, self.seed = tensors, positive_int("batch_size", batch_size), seed
        self.steps_per_epoch = max(1, len(tensors[0]) // batch_size)
        self._epoch, self._perm = None, None

    def __call__(self, step: int, generator=None, rank: int = 0, world: int = 1):
        if self.batch_size < world:
            raise ValueError(f"batch_size {self.batch_size} is smaller than the world size {world}")
        epoch, k = divmod(step, self.steps_per_epoch)
        if epoch != self._epoch:  # the data order of an epoch, drawn once from (seed, epoch)
            order = torch.randperm(len(self.tensors[0]), generator=seeded(self.seed, epoch))
            self._epoch, self._perm = epoch, order.to(self.tensors[0].device)
        idx = self._perm[k * self.batch_size : (k + 1) * self.batch_size][rank::world][: self.batch_size // world]
        rows = tuple(t[idx] for t in self.tensors)
        return rows[0] if len(rows) == 1 else rows


class SampledBatches:
    """A fresh batch every step, ``sample(n, generator)`` with the step's generator."""

    def __init__(self, sample: Callable, batch_size: int):
        self.sample, self.batch_size = sample, positive_int("batch_size", batch_size)

    def __call__(self, step: int, generator=None, rank: int = 0, world: int = 1) -> torch.Tensor:
        return self.sample(self.batch_size // world, generator)


def toy_batches(data, batch_size: int, device: torch.device) -> tuple[SampledBatches, int]:
    """Float32 batches of toy points on ``device`` and their dimension d: fresh samples of a
    :class:`~scoredae.mixtures.GaussianMixture`, or rows drawn with replacement from points ``(N, d)``."""
    if isinstance(data, GaussianMixture):
        mixture = data.to(device, torch.float32)
        return SampledBatches(mixture.sample, batch_size), data.dim
    if isinstance(data, torch.Tensor):
        if data.ndim != 2 or data.shape[0] < 1:
            raise ValueError(f"data: expected points of shape (N, d), got {tuple(data.shape)}")
        points = data.to(device, torch.float32)

        def rows(n: int, generator) -> torch.Tensor:
            return points[torch.randint(len(points), (n,), generator=generator, device=device)]

        return SampledBatches(rows, batch_size), data.shape[1]
    raise TypeError(f"data: expected a GaussianMixture or a tensor of points, got {type(data).__name__}")
