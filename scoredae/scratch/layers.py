r"""Layers with a hand-written backward pass: convolution, linear map, nearest upsampling.

Notation: a batch of :math:`B` inputs, :math:`g = \partial L / \partial y` the gradient arriving
from above (the output's shape); each backward returns :math:`\partial L / \partial x` and adds
the parameter gradients to ``.grad``.
"""

from __future__ import annotations

import torch

from .im2col import Workspace, fold, output_size, unfold
from .init import pytorch_default
from .module import Module, Sequential, parameter


def _check_input(layer: Module, x: torch.Tensor, ndim: int, dim: int, size: int, like: torch.Tensor):
    """Refuse an input of the wrong rank, size along ``dim``, dtype or device, naming the layer."""
    if x.ndim != ndim:
        raise ValueError(f"{layer}: expected an input with {ndim} dimensions, got shape {tuple(x.shape)}")
    if x.shape[dim] != size:
        raise ValueError(
            f"{layer}: expected input size {size} along dimension {dim}, got shape {tuple(x.shape)}"
        )
    if x.dtype != like.dtype or x.device != like.device:
        raise ValueError(
            f"{layer}: expected an input of dtype {like.dtype} on {like.device} like the weights, "
            f"got {x.dtype} on {x.device}"
        )


def _with_weights(twin: torch.nn.Module, layer: Module) -> torch.nn.Module:
    """``twin`` (a torch layer) with ``layer``'s weight and bias copied in."""
    with torch.no_grad():
        twin.weight.copy_(layer.weight)
        twin.bias.copy_(layer.bias)
    return twin


class Conv2d(Module):
    r"""2-d cross-correlation as a matrix product on unfolded patches.

    With :math:`X = \operatorname{unfold}(x)` of shape :math:`(B L, k^2 C_\text{in})` (one row per
    output pixel, :math:`L = H_\text{out} W_\text{out}`; see :mod:`scoredae.scratch.im2col`),
    :math:`W` reshaped to :math:`(C_\text{out}, k^2 C_\text{in})` in the same column order, and
    :math:`G` the upstream gradient :math:`g` reshaped to :math:`(B L, C_\text{out})`:

    .. math::
        Y = X W^\top + b, \qquad
        \frac{\partial L}{\partial W} = G^\top X, \qquad
        \frac{\partial L}{\partial b} = \textstyle\sum_\text{rows} G, \qquad
        \frac{\partial L}{\partial x} = \operatorname{fold}(G W),

    where ``fold``, the adjoint of ``unfold``, sums each row back onto the pixels of its patch.
    The bias gradient is thus summed over the batch and the output pixels.

    :param init: an initialiser of :mod:`scoredae.scratch.init` (PyTorch's default by default).
    """

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, stride: int = 1, padding: int = 0, *,
                 init=pytorch_default, generator: torch.Generator | None = None,
                 dtype: torch.dtype | None = None, device=None):
        super().__init__()
        for name, value, low in [("in_ch", in_ch, 1), ("out_ch", out_ch, 1),
                                 ("kernel_size", kernel_size, 1), ("stride", stride, 1), ("padding", padding, 0)]:
            if not isinstance(value, int) or value < low:
                raise ValueError(f"{name}: expected an int >= {low}, got {value!r}")
        self.in_ch, self.out_ch, self.kernel_size = in_ch, out_ch, kernel_size
        self.stride, self.padding = stride, padding
        self.weight = parameter((out_ch, in_ch, kernel_size, kernel_size), dtype, device)
        self.bias = parameter((out_ch,), dtype, device)
        init(self.weight, self.bias, in_ch * kernel_size**2, out_ch * kernel_size**2, generator)
        self._workspace = Workspace()

    def _weight_matrix(self) -> torch.Tensor:
        return self.weight.permute(0, 2, 3, 1).reshape(self.out_ch, -1)  # (C_out, k k C_in), columns (u, v, c)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_input(self, x, 4, 1, self.in_ch, self.weight)
        b, _, h, w = x.shape
        k, s, p = self.kernel_size, self.stride, self.padding
        if h + 2 * p < k or w + 2 * p < k:
            raise ValueError(f"{self}: input {h}x{w} (padded by {p}) is smaller than the kernel {k}x{k}")
        self._cols = unfold(x, k, s, p, self._workspace)  # (B L, k k C_in)
        y = torch.addmm(self.bias, self._cols, self._weight_matrix().T)  # (B L, C_out)
        return y.view(b, output_size(h, k, s, p), output_size(w, k, s, p), self.out_ch).permute(0, 3, 1, 2)

    def _backward(self, grad_output: torch.Tensor) -> torch.Tensor:
        g = grad_output.permute(0, 2, 3, 1).reshape(-1, self.out_ch)  # (B L, C_out)
        k = self.kernel_size
        grad_w = (g.T @ self._cols).view(self.out_ch, k, k, self.in_ch)  # (C_out, u, v, C_in)
        self.weight.grad += grad_w.permute(0, 3, 1, 2)
        self.bias.grad += g.sum(0)
        grad_cols = self._workspace.get("grad_cols", self._cols.shape, g)
        torch.matmul(g, self._weight_matrix(), out=grad_cols)  # (B L, k k C_in)
        return fold(grad_cols, self._shapes[0], k, self.stride, self.padding)

    def params(self) -> list[torch.Tensor]:
        return [self.weight, self.bias]

    def to_torch(self) -> torch.nn.Module:
        return _with_weights(torch.nn.Conv2d(self.in_ch, self.out_ch, self.kernel_size, self.stride,
                                             self.padding, dtype=self.weight.dtype, device=self.weight.device),
                             self)

    def __repr__(self) -> str:
        return (f"Conv2d({self.in_ch}, {self.out_ch}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding})")


class Linear(Module):
    r"""The affine map :math:`y = x W^\top + b` on points :math:`x` of shape :math:`(N, \text{in})`:

    .. math::
        \frac{\partial L}{\partial W} = g^\top x, \qquad
        \frac{\partial L}{\partial b} = \textstyle\sum_n g_n, \qquad
        \frac{\partial L}{\partial x} = g W.
    """

    def __init__(self, in_features: int, out_features: int, *, init=pytorch_default,
                 generator: torch.Generator | None = None, dtype: torch.dtype | None = None, device=None):
        super().__init__()
        for name, value in [("in_features", in_features), ("out_features", out_features)]:
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: expected an int >= 1, got {value!r}")
        self.in_features, self.out_features = in_features, out_features
        self.weight = parameter((out_features, in_features), dtype, device)
        self.bias = parameter((out_features,), dtype, device)
        init(self.weight, self.bias, in_features, out_features, generator)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_input(self, x, 2, 1, self.in_features, self.weight)
        self._input = x
        return x @ self.weight.T + self.bias

    def _backward(self, grad_output: torch.Tensor) -> torch.Tensor:
        self.weight.grad += grad_output.T @ self._input
        self.bias.grad += grad_output.sum(0)
        return grad_output @ self.weight

    def params(self) -> list[torch.Tensor]:
        return [self.weight, self.bias]

    def to_torch(self) -> torch.nn.Module:
        return _with_weights(torch.nn.Linear(self.in_features, self.out_features,
                                             dtype=self.weight.dtype, device=self.weight.device), self)

    def __repr__(self) -> str:
        return f"Linear({self.in_features}, {self.out_features})"


class NearestUpsampling(Module):
    r"""Nearest-neighbour upsampling by an integer factor :math:`s`:
    :math:`y_{b,c,i,j} = x_{b,c,\lfloor i/s \rfloor,\lfloor j/s \rfloor}`. Each input pixel is
    copied to an :math:`s \times s` block, so its gradient is the sum of :math:`g` over that block."""

    def __init__(self, scale_factor: int):
        super().__init__()
        if not isinstance(scale_factor, int) or scale_factor < 1:
            raise ValueError(f"scale_factor: expected an int >= 1, got {scale_factor!r}")
        self.scale_factor = scale_factor

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4:
            raise ValueError(f"{self}: expected an input (B, C, H, W), got shape {tuple(x.shape)}")
        s = self.scale_factor
        return x.repeat_interleave(s, dim=2).repeat_interleave(s, dim=3)

    def _backward(self, grad_output: torch.Tensor) -> torch.Tensor:
        s = self.scale_factor
        # add up the s * s strided sub-grids: entry (i, j) of each sums the block of input pixel (i, j)
        return sum(grad_output[:, :, u::s, v::s] for u in range(s) for v in range(s))

    def to_torch(self) -> torch.nn.Module:
        return torch.nn.Upsample(scale_factor=self.scale_factor, mode="nearest")

    def __repr__(self) -> str:
        return f"NearestUpsampling({self.scale_factor})"


class Upsampling(Sequential):
    """Nearest upsampling by ``scale_factor`` followed by a ``kernel_size`` convolution with
    'same' padding (odd ``kernel_size``): the decoder block that avoids the checkerboard artefacts
    of transposed convolutions (Odena, Dumoulin & Olah 2016, "Deconvolution and checkerboard
    artifacts")."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int = 3, scale_factor: int = 2, **conv_kwargs):
        if not isinstance(kernel_size, int) or kernel_size % 2 != 1:
            raise ValueError(f"kernel_size: expected an odd int for 'same' padding, got {kernel_size!r}")
        self.upsample = NearestUpsampling(scale_factor)
        self.conv = Conv2d(in_ch, out_ch, kernel_size, padding=kernel_size // 2, **conv_kwargs)
        super().__init__(self.upsample, self.conv)

    def __repr__(self) -> str:
        return f"Upsampling({self.upsample!r}, {self.conv!r})"
