"""MNIST denoisers, the registry of their command-line names, and the shipped pretrained weights.

``MODELS`` is the one table mapping a command-line name (``scoredae train --model NAME``) to a
model class; every class subclasses :class:`MNISTDenoiser`.
"""

from __future__ import annotations

import json
from pathlib import Path

from .base import MNISTDenoiser
from .conv import ConvDAE
from .drunet import DRUNetDenoiser
from .hybrid import HybridTransformerUNet
from .mlp import MLPDAE
from .toy import ToyScoreNet
from .transformer import PatchTransformer
from .unet import UNet

WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "weights"

# command-line name -> model class
MODELS: dict[str, type[MNISTDenoiser]] = {
    "mlp": MLPDAE,
    "unet": UNet,
    "conv": ConvDAE,
    "drunet": DRUNetDenoiser,
    "transformer": PatchTransformer,
    "hybrid": HybridTransformerUNet,
}


def model_class(name: str) -> type[MNISTDenoiser]:
    """The class registered under ``name``; an unknown name raises a ValueError listing the known ones."""
    if name not in MODELS:
        raise ValueError(f"model: expected one of {sorted(MODELS)}, got {name!r}")
    return MODELS[name]


def constructors() -> dict[str, type[MNISTDenoiser]]:
    """Class name -> class, for rebuilding a model from a checkpoint's metadata."""
    return {cls.__name__: cls for cls in MODELS.values()}


def list_pretrained() -> dict[str, dict]:
    """Shipped weights: name -> metadata (``model``, ``config``, ``sigma`` or ``sigma_range``,
    ``psnr`` per evaluated sigma, ``command``, ...)."""
    return {p.stem: json.loads(p.read_text()) for p in sorted(WEIGHTS_DIR.glob("*.json"))}


def load_pretrained(name: str, device=None) -> MNISTDenoiser:
    """The shipped model ``name`` (see :func:`list_pretrained`) in eval mode, on ``device``."""
    from ..checkpoints import load_checkpoint

    available = list_pretrained()
    if name not in available:
        raise ValueError(f"name: expected one of the shipped models {sorted(available)}, got {name!r}")
    model, _ = load_checkpoint(WEIGHTS_DIR / name, constructors(), device=device)
    return model


__all__ = [
    "MLPDAE",
    "MODELS",
    "ConvDAE",
    "DRUNetDenoiser",
    "HybridTransformerUNet",
    "MNISTDenoiser",
    "PatchTransformer",
    "ToyScoreNet",
    "UNet",
    "list_pretrained",
    "load_pretrained",
    "model_class",
]
