r"""The mean squared error loss and its gradient."""

from __future__ import annotations

import torch


class MSE:
    r""":math:`L = \frac1N \sum_i (p_i - t_i)^2` over all :math:`N` entries, and
    :math:`\partial L / \partial p = \frac2N (p - t)`, returned by ``backward()``."""

    def __init__(self):
        self._residual: torch.Tensor | None = None

    def __call__(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.forward(prediction, target)

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The loss, a 0-d tensor."""
        if prediction.shape != target.shape:
            raise ValueError(
                f"MSE: prediction and target must have the same shape, got {tuple(prediction.shape)} "
                f"and {tuple(target.shape)}"
            )
        with torch.no_grad():
            self._residual = prediction - target
            return self._residual.pow(2).mean()

    def backward(self) -> torch.Tensor:
        """:math:`\\partial L / \\partial p`, the shape of the prediction."""
        if self._residual is None:
            raise RuntimeError("MSE: backward called before forward")
        with torch.no_grad():
            return self._residual * (2.0 / self._residual.numel())
