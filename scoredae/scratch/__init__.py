r"""An autograd-free neural-network framework: every layer has a hand-written backward pass.

It shows what autograd does, by doing it by hand, and trains a denoising autoencoder with
Noise2Noise. Nothing here records an autograd graph: every forward and backward pass runs under
``torch.no_grad()``, and each layer's results match a ``torch.nn`` twin (``module.to_torch()``),
which :func:`~scoredae.scratch.train.fit_torch` trains with autograd on the same batches for comparison.
"""

from .activations import ReLU, Sigmoid
from .denoiser import ScratchDenoiser
from .init import he_normal, pytorch_default, xavier_uniform
from .layers import Conv2d, Linear, NearestUpsampling, Upsampling
from .loss import MSE
from .model import conv_autoencoder, mlp
from .module import Module, Sequential
from .optim import SGD, Adam, Optimizer
from .train import (
    fit,
    fit_torch,
    moving_average,
    noise2clean_batches,
    noise2noise_batches,
    train_step,
)

__all__ = [
    "MSE", "SGD", "Adam", "Conv2d", "Linear", "Module", "NearestUpsampling", "Optimizer", "ReLU",
    "ScratchDenoiser", "Sequential", "Sigmoid", "Upsampling", "conv_autoencoder", "fit", "fit_torch",
    "he_normal", "mlp", "moving_average", "noise2clean_batches", "noise2noise_batches",
    "pytorch_default", "train_step", "xavier_uniform",
]
