"""Data: MNIST with a verified cache, and the batch sources of the training loop."""

from .batches import SampledBatches, TensorBatches, toy_batches
from .mnist import MNISTUnavailableError, fetch_mnist, load_mnist, mnist_available

__all__ = ["MNISTUnavailableError", "SampledBatches", "TensorBatches", "fetch_mnist", "load_mnist",
           "mnist_available", "toy_batches"]
