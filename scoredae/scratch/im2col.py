r"""Patches to columns and back: the ``unfold`` / ``fold`` pair behind :class:`~scoredae.scratch.layers.Conv2d`.

``unfold`` lays every :math:`k \times k` patch of the zero-padded input out as one row, so that a
convolution becomes one matrix product; ``fold`` is its adjoint (:math:`\langle \operatorname{unfold} x,
c\rangle = \langle x, \operatorname{fold} c\rangle`): it adds every row back onto the pixels of its
patch, which is how the gradient flows back to the input.

They compute ``torch.nn.functional.unfold`` / ``fold`` with the patch entries in channels-last
order: row :math:`(b, i, j)` holds :math:`x_{b, c, s i + u - p, s j + v - p}` at column
:math:`(u, v, c)`, i.e. ``F.unfold(x).transpose(1, 2)`` with its columns permuted from
:math:`(c, u, v)` to :math:`(u, v, c)`. That order makes the copy contiguous along channels, and the
:class:`Workspace` reuses the large buffers between calls instead of allocating (and
page-faulting) tens of megabytes per batch; together they bring the hand-written network to
within about 1.5x of autograd's time on a CPU (``benchmarks/bench_scratch.py``), against about
4.5x with ``F.unfold`` / ``F.fold``.
"""

from __future__ import annotations

import torch


class Workspace:
    """Named scratch buffers, reused while the requested shape, dtype and device do not change."""

    def __init__(self):
        self._buffers: dict[str, torch.Tensor] = {}

    def get(self, name: str, shape: tuple[int, ...], like: torch.Tensor, zero: bool = False) -> torch.Tensor:
        buf = self._buffers.get(name)
        if buf is None or buf.shape != shape or buf.dtype != like.dtype or buf.device != like.device:
            buf = self._buffers[name] = torch.empty(shape, dtype=like.dtype, device=like.device)
            zero = True
        return buf.zero_() if zero else buf


def output_size(size: int, kernel_size: int, stride: int, padding: int) -> int:
    """:math:`\\lfloor (n + 2p - k) / s \\rfloor + 1`."""
    return (size + 2 * padding - kernel_size) // stride + 1


def unfold(x: torch.Tensor, kernel_size: int, stride: int, padding: int, workspace: Workspace) -> torch.Tensor:
    """(B, C, H, W) -> (B * H_out * W_out, k * k * C), rows ordered (b, i, j), columns (u, v, c).

    The result lives in ``workspace`` (buffer ``"cols"``) and is overwritten by the next call."""
    b, c, h, w = x.shape
    k, s, p = kernel_size, stride, padding
    h_out, w_out = output_size(h, k, s, p), output_size(w, k, s, p)
    # zero borders are written once; only the interior changes between calls
    padded = workspace.get("padded", (b, h + 2 * p, w + 2 * p, c), x)  # (B, H+2p, W+2p, C)
    padded[:, p:p + h, p:p + w].copy_(x.permute(0, 2, 3, 1))
    sb, sh, sw, sc = padded.stride()
    patches = padded.as_strided((b, h_out, w_out, k, k, c), (sb, s * sh, s * sw, sh, sw, sc))
    cols = workspace.get("cols", (b, h_out, w_out, k, k, c), x)
    cols.copy_(patches)
    return cols.view(b * h_out * w_out, k * k * c)


def fold(cols: torch.Tensor, input_shape: torch.Size, kernel_size: int, stride: int, padding: int) -> torch.Tensor:
    """The adjoint of :func:`unfold`: (B * H_out * W_out, k * k * C) -> (B, C, H, W), summing the
    overlapping patch entries; a fresh tensor (channels-last in memory)."""
    b, c, h, w = input_shape
    k, s, p = kernel_size, stride, padding
    h_out, w_out = output_size(h, k, s, p), output_size(w, k, s, p)
    cols = cols.view(b, h_out, w_out, k, k, c)
    padded = cols.new_zeros(b, h + 2 * p, w + 2 * p, c)  # (B, H+2p, W+2p, C)
    for u in range(k):
        for v in range(k):
            padded[:, u:u + s * (h_out - 1) + 1:s, v:v + s * (w_out - 1) + 1:s] += cols[:, :, :, u, v]
    return padded[:, p:p + h, p:p + w].permute(0, 3, 1, 2)
