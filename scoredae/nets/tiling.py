r"""Denoising images of any size: reflection padding to the sizes a network takes, and overlapping
tiles for images too large to pass at once.

A large image is cut into ``tile`` x ``tile`` tiles overlapping by ``overlap`` pixels; each tile is
denoised and the outputs are blended with the weight :math:`w(i, j) = r(i)\, r(j)`,
:math:`r(i) = \min\big(1, \frac{i + 1/2}{o}, \frac{t - i - 1/2}{o}\big)` (a ramp over the overlap
:math:`o`, flat inside), :math:`\hat x = \sum_k w_k D(y_k) / \sum_k w_k`. Every pixel is covered by
some tile with positive weight, so a constant-preserving denoiser stays constant-preserving, and the
seams of independent tiles fade into each other.
"""

from __future__ import annotations

import torch
from torch import nn
from tqdm.auto import tqdm

from .._checks import positive_int


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int, int, int]]:
    """Reflection-pad (B, C, H, W) to sides divisible by ``multiple``, split evenly (extra on the right/bottom).

    :returns: the padded tensor and the padding ``(left, right, top, bottom)``.
    """
    h, w = x.shape[-2:]
    ph, pw = -h % multiple, -w % multiple
    pad = (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2)
    mode = "reflect" if ph < h and pw < w else "replicate"  # reflection needs a pad smaller than the side
    return nn.functional.pad(x, pad, mode=mode), pad


def crop_center(x: torch.Tensor, pad: tuple[int, int, int, int]) -> torch.Tensor:
    """Undo :func:`pad_to_multiple`: remove ``pad = (left, right, top, bottom)`` from (B, C, H, W)."""
    left, right, top, bottom = pad
    h, w = x.shape[-2:]
    return x[..., top : h - bottom, left : w - right]


def _starts(size: int, tile: int, overlap: int) -> list[int]:
    """Tile origins along one side: every ``tile - overlap`` pixels, the last flush with the end."""
    if size <= tile:
        return [0]
    return sorted({*range(0, size - tile, tile - overlap), size - tile})


def _ramp(length: int, overlap: int, device) -> torch.Tensor:
    i = torch.arange(length, device=device, dtype=torch.float32) + 0.5
    return torch.clamp(torch.minimum(i, length - i) / max(overlap, 1), max=1.0)


@torch.no_grad()
def denoise_image(denoiser, y: torch.Tensor, sigma, *, tile: int | None = 256, overlap: int | None = None,
                  progress: bool = False) -> torch.Tensor:
    """``denoiser(y, sigma)`` for images ``y`` (B, C, H, W) of any size.

    The image is reflection-padded to the network's ``size_multiple`` and cropped back; when a side
    exceeds ``tile`` it is denoised in overlapping tiles blended as the module docstring says.

    :param tile: the tile side (rounded down to the network's size multiple), or None for one pass.
    :param overlap: pixels shared by neighbouring tiles (default: a quarter of the tile).
    :param progress: a progress bar over the tiles.
    """
    multiple = getattr(denoiser, "size_multiple", 1)
    padded, pad = pad_to_multiple(y, multiple)
    h, w = padded.shape[-2:]
    if tile is None or (h <= tile and w <= tile):
        return crop_center(denoiser(padded, sigma), pad)
    t = positive_int("tile", tile) // multiple * multiple
    overlap = t // 4 if overlap is None else overlap
    if t < multiple or not 0 <= overlap < t:
        raise ValueError(f"tile {tile} and overlap {overlap}: expected a tile of at least {multiple} pixels "
                         f"and 0 <= overlap < tile")
    th, tw = min(t, h), min(t, w)
    origins = [(i, j) for i in _starts(h, th, overlap) for j in _starts(w, tw, overlap)]
    weight = _ramp(th, overlap, y.device)[:, None] * _ramp(tw, overlap, y.device)[None, :]  # (th, tw)
    out = torch.zeros_like(padded)
    total = torch.zeros(h, w, device=y.device)
    for i, j in tqdm(origins, desc="denoise", unit="tile", disable=not progress):
        denoised = denoiser(padded[..., i : i + th, j : j + tw], sigma)
        out[..., i : i + th, j : j + tw] += weight * denoised
        total[i : i + th, j : j + tw] += weight
    return crop_center(out / total, pad)
