"""The registry of image denoisers by command-line name, and the shipped pretrained weights.

``MODELS`` is the one table mapping a command-line name (``scoredae train --model NAME``) to a
model class; every class subclasses :class:`~scoredae.nets.base.ImageDenoiser`.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..mixtures.denoiser import MixtureDenoiser
from ..mixtures.storage import load_mixture
from .base import ImageDenoiser
from .checkpoints import load_checkpoint
from .classifier import MNISTClassifier
from .conv import ConvDAE
from .drunet import DRUNetDenoiser
from .hybrid import HybridTransformerUNet
from .mlp import MLPDAE
from .resunet import ResUNet
from .transformer import PatchTransformer
from .unet import UNet

WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "weights"
CLASSIFIER = WEIGHTS_DIR / "classifier" / "mnist_cnn"
MIXTURES_DIR = WEIGHTS_DIR / "mixtures"

#: command-line name -> model class
MODELS: dict[str, type[ImageDenoiser]] = {
    "mlp": MLPDAE,
    "unet": UNet,
    "conv": ConvDAE,
    "drunet": DRUNetDenoiser,
    "transformer": PatchTransformer,
    "hybrid": HybridTransformerUNet,
    "resunet": ResUNet,
}


def model_class(name: str) -> type[ImageDenoiser]:
    """The class registered under ``name``; an unknown name raises a ValueError listing the known ones."""
    if name not in MODELS:
        raise ValueError(f"model: expected one of {sorted(MODELS)}, got {name!r}")
    return MODELS[name]


def constructors() -> dict[str, type[ImageDenoiser]]:
    """Class name -> class, for rebuilding a model from a checkpoint's metadata."""
    return {cls.__name__: cls for cls in MODELS.values()}


def list_pretrained() -> dict[str, dict]:
    """Shipped weights: name -> metadata (``model``, ``config``, ``psnr`` per evaluated sigma,
    ``command``, ...)."""
    return {p.stem: json.loads(p.read_text()) for p in sorted(WEIGHTS_DIR.glob("*.json"))}


def list_pretrained_mixtures() -> dict[str, dict]:
    """Shipped exact priors (mixtures fitted by ``scoredae fit-mixture``): name -> metadata."""
    return {p.stem: json.loads(p.read_text()) for p in sorted(MIXTURES_DIR.glob("*.json"))}


def load_pretrained(name: str, device=None) -> ImageDenoiser | MixtureDenoiser:
    """The shipped model ``name`` (see :func:`list_pretrained`) in eval mode, on ``device``; for a
    shipped mixture (:func:`list_pretrained_mixtures`), its exact denoiser, a
    :class:`~scoredae.mixtures.MixtureDenoiser` in float64 whose ``mixture`` is the prior."""
    if name in list_pretrained_mixtures():
        return MixtureDenoiser(load_mixture(MIXTURES_DIR / name, device=device)[0])
    available = list_pretrained()
    if name not in available:
        raise ValueError(f"name: expected one of the shipped models {sorted(available)} or mixtures "
                         f"{sorted(list_pretrained_mixtures())}, got {name!r}")
    model, _ = load_checkpoint(WEIGHTS_DIR / name, constructors(), device=device)
    return model


def load_classifier(path: str | Path = CLASSIFIER, device=None) -> MNISTClassifier:
    """The shipped classifier (trained by ``scoredae train-classifier``), or the checkpoint at ``path``."""
    model, _ = load_checkpoint(path, {"MNISTClassifier": MNISTClassifier}, "MNISTClassifier", device)
    return model
