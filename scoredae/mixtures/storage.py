"""A fitted mixture of factor analysers on disk, as the networks are: ``<stem>.safetensors`` (the
weights, means, factors and diagonals) and ``<stem>.json`` (what it is and the command that wrote it)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from .._checks import atomic_write
from .covariance import LowRank
from .gaussian_mixture import GaussianMixture

KIND = "GaussianMixture/LowRank"


def _paths(stem: str | os.PathLike) -> tuple[Path, Path]:
    stem = Path(stem)
    return stem.with_name(stem.name + ".safetensors"), stem.with_name(stem.name + ".json")


def save_mixture(stem: str | os.PathLike, mixture: GaussianMixture, metadata: dict,
                 dtype: torch.dtype = torch.float32) -> Path:
    """Write a mixture of factor analysers (its tensors in ``dtype``) and ``metadata``; the JSON last."""
    cov = mixture.covariance
    if not isinstance(cov, LowRank):
        raise TypeError(f"mixture: expected LowRank covariances (factor analysers), got {type(cov).__name__}")
    tensors = {"weights": mixture.weights, "means": mixture.means, "factors": cov.factors, "diagonal": cov.delta}
    tensors = {k: v.detach().to("cpu", dtype).contiguous() for k, v in tensors.items()}
    weights_path, meta_path = _paths(stem)
    atomic_write(weights_path, lambda p: save_file(tensors, p))
    text = json.dumps({"kind": KIND, **metadata}, indent=2, sort_keys=True)
    atomic_write(meta_path, lambda p: Path(p).write_text(text))
    return weights_path


def load_mixture(stem: str | os.PathLike, dtype: torch.dtype = torch.float64,
                 device=None) -> tuple[GaussianMixture, dict]:
    """The mixture written by :func:`save_mixture`, in ``dtype`` on ``device``, and its metadata."""
    weights_path, meta_path = _paths(stem)
    for path in (weights_path, meta_path):
        if not path.exists():
            raise FileNotFoundError(f"mixture {stem}: {path} does not exist")
    metadata = json.loads(meta_path.read_text())
    if metadata.get("kind") != KIND:
        raise ValueError(f"mixture {stem}: expected kind {KIND!r}, got {metadata.get('kind')!r}")
    t = {k: v.to(device, dtype) for k, v in load_file(weights_path).items()}
    weights = t["weights"] / t["weights"].sum()  # exact sum in the loaded precision
    return GaussianMixture(weights, t["means"], LowRank(t["factors"], t["diagonal"])), metadata
