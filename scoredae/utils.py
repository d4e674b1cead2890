"""Small shared helpers: broadcasting a noise level against a tensor, and picking a device."""

from __future__ import annotations

import torch

SigmaLike = float | torch.Tensor


def expand_sigma(sigma: SigmaLike, x: torch.Tensor, *, name: str = "sigma") -> torch.Tensor:
    r"""Return ``sigma`` as a tensor that broadcasts against ``x`` of shape ``(B, *S)``.

    A float or 0-d tensor becomes a 0-d tensor; a tensor of shape ``(B,)`` becomes
    ``(B, 1, ..., 1)`` with ``x.ndim`` dimensions. The result has the dtype and device of ``x``.
    Every noise level must be finite and positive.
    """
    s = torch.as_tensor(sigma, dtype=x.dtype, device=x.device)
    if s.ndim == 1 and s.shape[0] == 1:
        s = s.reshape(())
    if s.ndim == 1:
        if s.shape[0] != x.shape[0]:
            raise ValueError(
                f"{name}: expected a float or a tensor of shape ({x.shape[0]},) for a batch of "
                f"{x.shape[0]}, got shape {tuple(s.shape)}"
            )
        s = s.reshape(-1, *([1] * (x.ndim - 1)))
    elif s.ndim != 0:
        raise ValueError(f"{name}: expected a float or a 1-d tensor, got shape {tuple(s.shape)}")
    if not bool(torch.all(torch.isfinite(s) & (s > 0))):
        raise ValueError(f"{name} must be finite and > 0, got {sigma}")
    return s


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """``"auto"`` (or None) picks CUDA when available, else the CPU; anything else is passed on."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)
