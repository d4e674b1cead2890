r"""The module protocol of the autograd-free framework: an explicit forward and backward pass.

A module maps an input :math:`x` to :math:`y = f(x; \theta)`. Its backward pass receives
:math:`\partial L / \partial y` (``grad_output``, the shape of :math:`y`) and

* returns :math:`\partial L / \partial x = (\partial y / \partial x)^\top \, \partial L / \partial y`
  (``grad_input``, the shape of :math:`x`), and
* *adds* :math:`(\partial y / \partial \theta)^\top \, \partial L / \partial y` to the ``.grad`` of
  each parameter :math:`\theta`, so the gradients of several backward passes accumulate until
  :meth:`~scoredae.scratch.module.Module.zero_grad`, as in PyTorch.

This is reverse-mode differentiation written by hand, one layer at a time (Rumelhart, Hinton &
Williams 1986). Every pass runs with autograd switched off, so no graph is ever recorded.
Parameters are plain tensors (``requires_grad=False``) with a ``.grad`` tensor of their own shape.
"""

from __future__ import annotations

import torch


class Module:
    """Base class: subclasses implement ``_forward(x)`` and ``_backward(grad_output)``.

    :meth:`~scoredae.scratch.module.Module.forward` (also ``module(x)``) and :meth:`~scoredae.scratch.module.Module.backward` wrap them: they switch autograd
    off, remember the input and output shapes, and refuse a backward pass before any forward
    pass or a ``grad_output`` whose shape is not the output's.
    """

    def __init__(self):
        self._shapes: tuple[torch.Size, torch.Size] | None = None  # (input, output) of the last forward

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The output of the layer on ``x``, computed without autograd; remembers the shapes for backward."""
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{self}: expected a torch.Tensor input, got {type(x).__name__}")
        with torch.no_grad():
            y = self._forward(x)
        self._shapes = (x.shape, y.shape)
        return y

    __call__ = forward

    def backward(self, grad_output: torch.Tensor) -> torch.Tensor:
        """Accumulate parameter gradients and return the gradient with respect to the input."""
        if self._shapes is None:
            raise RuntimeError(f"{self}: backward called before forward")
        in_shape, out_shape = self._shapes
        if not isinstance(grad_output, torch.Tensor) or grad_output.shape != out_shape:
            given = tuple(grad_output.shape) if isinstance(grad_output, torch.Tensor) else type(grad_output).__name__
            raise ValueError(
                f"{self}: grad_output must have the output's shape {tuple(out_shape)}, got {given}"
            )
        with torch.no_grad():
            grad_input = self._backward(grad_output)
        assert grad_input.shape == in_shape  # a broken layer, never bad user input
        return grad_input

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _backward(self, grad_output: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def params(self) -> list[torch.Tensor]:
        """The trainable tensors, each with a ``.grad`` of its shape; none by default."""
        return []

    def zero_grad(self) -> None:
        """Set the ``.grad`` of every parameter to zero."""
        for p in self.params():
            p.grad.zero_()

    def to_torch(self) -> torch.nn.Module:
        """The same function as a ``torch.nn.Module`` with copies of the same parameters,
        for checking this module against autograd."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return type(self).__name__ + "()"


def parameter(shape, dtype: torch.dtype | None, device) -> torch.Tensor:
    """A zero tensor of ``shape`` with a zero ``.grad`` of the same shape."""
    p = torch.zeros(shape, dtype=dtype, device=device)
    p.grad = torch.zeros_like(p)
    return p


class Sequential(Module):
    r"""The composition :math:`f_n \circ \dots \circ f_1`; backward runs the chain rule in reverse:
    :math:`g_{i-1} = f_i\text{.backward}(g_i)`."""

    def __init__(self, *layers: Module):
        super().__init__()
        for i, layer in enumerate(layers):
            if not isinstance(layer, Module):
                raise TypeError(f"layers[{i}]: expected a scratch Module, got {type(layer).__name__}")
        self.layers = list(layers)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            try:
                x = layer(x)
            except ValueError as err:
                raise ValueError(f"Sequential layer {i}: {err}") from err
        return x

    def _backward(self, grad_output: torch.Tensor) -> torch.Tensor:
        for layer in reversed(self.layers):
            grad_output = layer.backward(grad_output)
        return grad_output

    def params(self) -> list[torch.Tensor]:
        return [p for layer in self.layers for p in layer.params()]

    def to_torch(self) -> torch.nn.Module:
        return torch.nn.Sequential(*(layer.to_torch() for layer in self.layers))

    def __len__(self) -> int:
        return len(self.layers)

    def __getitem__(self, i: int) -> Module:
        return self.layers[i]

    def __repr__(self) -> str:
        inner = ",\n  ".join(repr(layer) for layer in self.layers)
        return f"Sequential(\n  {inner}\n)"
