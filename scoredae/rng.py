"""Seeded generators, and draws in which row ``i`` depends only on ``(seed, i)``.

Every random function of scoredae takes ``generator``: a :class:`torch.Generator` on the device of
the data, None (torch's global generator), or :class:`RowGenerators`, one generator per row of the
batch, so that sample ``i`` of a run is the same whatever the batch size (the idea of NVlabs/edm's
``StackedRandomGenerator``).
"""

from __future__ import annotations

import torch

_MIX = 1_000_003  # odd multiplier of the seed mix


def seeded(seed: int, *key: int, device: str | torch.device = "cpu") -> torch.Generator:
    """A generator on ``device`` seeded from ``seed`` and the integers ``key`` (e.g. step and rank)."""
    value = int(seed)
    for k in key:
        value = (value * _MIX + int(k)) % (2**62)
    return torch.Generator(device).manual_seed(value)


class RowGenerators:
    """One generator per row, seeded from ``(seed, i)``: row ``i`` of each draw depends on them alone.

    :param seed: the run's seed.
    :param n: the number of rows (samples).
    :param device: where the draws are made (the device of the data).
    """

    def __init__(self, seed: int, n: int, device: str | torch.device = "cpu"):
        self.device = torch.device(device)
        self.generators = [seeded(seed, i, device=self.device) for i in range(n)]

    def __len__(self) -> int:
        return len(self.generators)


Generator = torch.Generator | RowGenerators | None


def _draw(fn, shape, generator: Generator, dtype, device) -> torch.Tensor:
    if not isinstance(generator, RowGenerators):
        return fn(shape, generator=generator, dtype=dtype, device=device)
    if len(shape) == 0 or shape[0] != len(generator):
        raise ValueError(f"generator: {len(generator)} row generators cannot draw a batch of shape {tuple(shape)}")
    return torch.stack([fn(shape[1:], generator=g, dtype=dtype, device=device) for g in generator.generators])


def randn(shape, generator: Generator = None, *, dtype=None, device=None) -> torch.Tensor:
    """Standard normal draws of ``shape``; with :class:`RowGenerators`, row by row."""
    return _draw(torch.randn, tuple(shape), generator, dtype, device)


def rand(shape, generator: Generator = None, *, dtype=None, device=None) -> torch.Tensor:
    """Uniform draws on [0, 1) of ``shape``; with :class:`RowGenerators`, row by row."""
    return _draw(torch.rand, tuple(shape), generator, dtype, device)


def rademacher(n: int, like: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    r"""``n`` Rademacher probes per sample, :math:`\pm 1` with probability 1/2 each: shape
    ``(n, *like.shape)``, the dtype and device of ``like``; :math:`\mathbb E[v v^\top] = I`."""
    bits = torch.randint(0, 2, (n, *like.shape), generator=generator, device=like.device)
    return (2 * bits - 1).to(like.dtype)
