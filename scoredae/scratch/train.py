r"""Training a scratch network on noisy pairs: Noise2Noise and Noise2Clean.

With :math:`y_1 = x + \sigma n_1` and a target :math:`t`, the squared error
:math:`\mathbb E\lVert f(y_1) - t\rVert^2` is minimised by :math:`f(y_1) = \mathbb E[t \mid y_1]`.
For Noise2Clean :math:`t = x`; for Noise2Noise (Lehtinen et al. 2018) :math:`t = y_2 = x + \sigma n_2`
with :math:`n_2` independent of :math:`(x, n_1)`, so
:math:`\mathbb E[y_2 \mid y_1] = \mathbb E[x \mid y_1] + \sigma\, \mathbb E[n_2] = \mathbb E[x \mid y_1]`:
both learn the same MMSE denoiser; the noisy target only adds the constant :math:`\sigma^2` per
entry to the loss and variance to its gradient.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator

import torch
from tqdm.auto import tqdm

from .loss import MSE
from .module import Module
from .optim import Optimizer


def _random_batches(data: torch.Tensor, batch_size: int, steps: int,
                    generator: torch.Generator | None) -> Iterator[torch.Tensor]:
    if not 1 <= batch_size <= data.shape[0]:
        raise ValueError(f"batch_size: expected 1 <= batch_size <= {data.shape[0]}, got {batch_size}")
    for _ in range(steps):
        idx = torch.randint(data.shape[0], (batch_size,), generator=generator, device=data.device)
        yield data[idx]


def _noise(x: torch.Tensor, sigma: float, generator: torch.Generator | None) -> torch.Tensor:
    return sigma * torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)


def noise2noise_batches(data: torch.Tensor, sigma: float, batch_size: int, steps: int,
                        generator: torch.Generator | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """``steps`` pairs :math:`(x + \\sigma n_1, x + \\sigma n_2)` of random batches of ``data``;
    no clean image is ever a target."""
    for x in _random_batches(data, batch_size, steps, generator):
        yield x + _noise(x, sigma, generator), x + _noise(x, sigma, generator)


def noise2clean_batches(data: torch.Tensor, sigma: float, batch_size: int, steps: int,
                        generator: torch.Generator | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """``steps`` pairs :math:`(x + \\sigma n, x)` of random batches of ``data``."""
    for x in _random_batches(data, batch_size, steps, generator):
        yield x + _noise(x, sigma, generator), x


def train_step(net: Module, optimizer: Optimizer, inputs: torch.Tensor, targets: torch.Tensor,
               loss: MSE | None = None) -> float:
    """One step: forward, MSE, backward through the network, optimiser update. Returns the loss;
    a loss that is NaN or inf stops with an error (the step would poison every weight)."""
    loss = loss or MSE()
    optimizer.zero_grad()
    value = float(loss(net(inputs), targets))
    if not math.isfinite(value):
        raise RuntimeError(f"training diverged (loss {value}); try a smaller learning rate")
    net.backward(loss.backward())
    optimizer.step()
    return value


def fit(net: Module, optimizer: Optimizer, pairs: Iterable[tuple[torch.Tensor, torch.Tensor]],
        progress: bool = False) -> torch.Tensor:
    """Train on an iterable of ``(inputs, targets)`` batches; returns the loss of each step (steps,)."""
    loss = MSE()
    history = [train_step(net, optimizer, y, t, loss) for y, t in tqdm(pairs, disable=not progress)]
    return torch.tensor(history, dtype=torch.float64)


def moving_average(values: torch.Tensor, window: int = 10) -> torch.Tensor:
    """Mean of each run of ``window`` consecutive values, shape (len(values) - window + 1,)."""
    if not 1 <= window <= len(values):
        raise ValueError(f"window: expected 1 <= window <= {len(values)}, got {window}")
    return values.unfold(0, window, 1).mean(-1)


def fit_torch(model: torch.nn.Module, optimizer: torch.optim.Optimizer,
              pairs: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
    """The reference: the same loop for a ``torch.nn`` model (e.g. ``net.to_torch()``) with a
    ``torch.optim`` optimiser, differentiated by autograd. Returns the loss of each step (steps,)."""
    history = []
    for inputs, targets in pairs:
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(model(inputs), targets)
        loss.backward()
        optimizer.step()
        history.append(loss.item())
    return torch.tensor(history, dtype=torch.float64)
