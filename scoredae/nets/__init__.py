"""Denoisers: the image-denoiser base, its architectures, the toy denoiser, checkpoints and the registry."""

from .base import DenoiserConfig, ImageDenoiser
from .classifier import MNISTClassifier
from .conv import ConvDAE
from .drunet import DRUNetDenoiser
from .hybrid import HybridTransformerUNet
from .mlp import MLPDAE
from .registry import (
    MODELS,
    list_pretrained,
    list_pretrained_mixtures,
    load_classifier,
    load_pretrained,
    model_class,
)
from .resunet import ResUNet
from .toy import ToyDenoiser
from .transformer import PatchTransformer
from .unet import UNet

__all__ = [
    "MLPDAE",
    "MODELS",
    "ConvDAE",
    "DRUNetDenoiser",
    "DenoiserConfig",
    "HybridTransformerUNet",
    "ImageDenoiser",
    "MNISTClassifier",
    "PatchTransformer",
    "ResUNet",
    "ToyDenoiser",
    "UNet",
    "list_pretrained",
    "list_pretrained_mixtures",
    "load_classifier",
    "load_pretrained",
    "model_class",
]
