"""The argument checks every stage shares, the one noise-level broadcast, and atomic file writes.

Checks of Python numbers run on the host. Nothing here inspects the *values* of a tensor, so no
check forces a device-to-host synchronisation in a hot path, except :func:`decreasing_levels`,
which reads a sampler's ladder of levels once, before its loop.
"""

from __future__ import annotations

import itertools
import math
import os
import tempfile
from pathlib import Path

import torch

SigmaLike = float | torch.Tensor


def finite_number(name: str, value, *, allow_zero: bool = False) -> float:
    """One number (a noise level, a weight) as a float: a Python number or a one-element tensor
    (read on the host), finite and > 0 (>= 0 with ``allow_zero``)."""
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ValueError(f"{name}: expected one number (a float), got a tensor of shape {tuple(value.shape)}")
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
            or not (value >= 0 if allow_zero else value > 0):
        raise ValueError(f"{name}: expected a finite number {'>= 0' if allow_zero else '> 0'}, got {value!r}")
    return float(value)


def positive(name: str, value) -> float:
    """``value`` as a float, refused unless it is a finite number > 0 (see :func:`finite_number`)."""
    return finite_number(name, value)


def unit_interval(name: str, value) -> float:
    """``value`` as a float, refused unless it is a number in [0, 1] (a weight, a share, an eta)."""
    if not 0 <= finite_number(name, value, allow_zero=True) <= 1:
        raise ValueError(f"{name}: expected a number in [0, 1], got {value!r}")
    return float(value)


def per_row(values: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``values`` of shape ``(B,)``, one per row of ``x`` ``(B, *S)``, as ``(B, 1, ..., 1)`` to broadcast."""
    return values.reshape(-1, *[1] * (x.ndim - 1))


def finite(name: str, tensor: torch.Tensor) -> None:
    """Refuse a tensor holding NaN or inf (reads it back: for arguments, never in a hot path)."""
    if not bool(torch.isfinite(tensor).all()):
        raise ValueError(f"{name}: expected finite values, got NaN or inf")


def positive_int(name: str, value) -> int:
    """``value``, refused unless it is an int >= 1."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name}: expected a positive integer, got {value!r}")
    return value


def positive_ints(**values) -> None:
    """Refuse the first keyword whose value is not an int >= 1, naming it."""
    for name, value in values.items():
        positive_int(name, value)


def positive_int_tuple(name: str, values, length: int | None = None) -> tuple[int, ...]:
    """``values`` as a tuple of ints >= 1 (of ``length`` entries, when given; at least one otherwise)."""
    values = tuple(values)
    if (len(values) != length) if length is not None else not values:
        expected = f"{length} positive integers" if length is not None else "one or more positive integers"
        raise ValueError(f"{name}: expected {expected}, got {values}")
    for i, v in enumerate(values):
        positive_int(f"{name}[{i}]", v)
    return values


def decreasing_levels(name: str, sigmas, *, final_zero: bool = False) -> list[float]:
    """``sigmas`` as a list of floats: one or more finite levels > 0, strictly decreasing; with
    ``final_zero`` two or more, the last one allowed to be 0 (the end of an ODE path)."""
    levels = [float(s) for s in torch.as_tensor(sigmas, dtype=torch.float64).reshape(-1)]
    positive_part = levels[:-1] if final_zero else levels
    ok = (len(levels) >= (2 if final_zero else 1) and all(math.isfinite(s) for s in levels)
          and all(s > 0 for s in positive_part) and (not levels or levels[-1] >= 0)
          and all(a > b for a, b in itertools.pairwise(levels)))
    if not ok:
        what = "two or more levels, positive but for a final 0" if final_zero else "positive levels"
        raise ValueError(f"{name}: expected a strictly decreasing sequence of {what}, got {levels}")
    return levels


def expand_sigma(sigma: SigmaLike, x: torch.Tensor, *, name: str = "sigma") -> torch.Tensor:
    r"""``sigma`` as a tensor that broadcasts against ``x`` of shape ``(B, *S)``.

    A float or 0-d tensor becomes a 0-d tensor; a tensor of shape ``(B,)`` (or ``(1,)``) becomes
    ``(B, 1, ..., 1)`` with ``x.ndim`` dimensions. The result has the dtype and device of ``x``.
    A Python number must be finite and > 0 (checked on the host); a tensor's shape is checked,
    its values are not (that would synchronise the device on every call).
    """
    if not isinstance(sigma, torch.Tensor):
        positive(name, sigma)
    s = torch.as_tensor(sigma, dtype=x.dtype, device=x.device)
    if s.ndim == 1 and s.shape[0] == 1:
        s = s.reshape(())
    if s.ndim == 1:
        if s.shape[0] != x.shape[0]:
            raise ValueError(
                f"{name}: expected a float or a tensor of shape ({x.shape[0]},) for a batch of "
                f"{x.shape[0]}, got shape {tuple(s.shape)}"
            )
        s = per_row(s, x)  # (B, 1, ..., 1)
    elif s.ndim != 0:
        raise ValueError(f"{name}: expected a float or a 1-d tensor, got shape {tuple(s.shape)}")
    return s


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """``"auto"`` (or None) picks CUDA when available, else the CPU; any other device must exist."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"device: expected 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}") from err
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device: {device!r} was asked for, but torch sees no CUDA device here; use 'cpu' or 'auto'")
    return resolved


def atomic_write(path: str | os.PathLike, write) -> None:
    """``write(tmp_path)`` then rename over ``path``, so a reader never sees a partial file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
