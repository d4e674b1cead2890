r"""Element-wise nonlinearities: the backward pass multiplies :math:`g` by the derivative."""

from __future__ import annotations

import torch

from .module import Module


class ReLU(Module):
    r""":math:`y = \max(x, 0)`, :math:`\partial L / \partial x = g \cdot \mathbb 1[x > 0]`
    (derivative 0 at 0, as in PyTorch)."""

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        self._positive = x > 0
        return x.clamp_min(0.0)

    def _backward(self, grad_output: torch.Tensor) -> torch.Tensor:
        return grad_output * self._positive

    def to_torch(self) -> torch.nn.Module:
        return torch.nn.ReLU()


class Sigmoid(Module):
    r""":math:`y = 1 / (1 + e^{-\tilde x})` with :math:`\tilde x = \operatorname{clip}(x, -100, 100)`
    (so :math:`e^{-\tilde x}` never overflows), :math:`\partial L / \partial x = g\, y (1 - y)`.

    The clip changes nothing representable in float32 or float64 beyond :math:`|x| = 100`,
    where :math:`y(1-y) < 10^{-43}`."""

    CLIP = 100.0

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        self._output = 1.0 / (1.0 + torch.exp(-x.clamp(-self.CLIP, self.CLIP)))
        return self._output

    def _backward(self, grad_output: torch.Tensor) -> torch.Tensor:
        y = self._output
        return grad_output * y * (1.0 - y)

    def to_torch(self) -> torch.nn.Module:
        return torch.nn.Sigmoid()
