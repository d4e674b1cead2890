"""Data: MNIST and photographs with verified caches, and the batch sources of the training loop."""

from .batches import SampledBatches, TensorBatches, toy_batches
from .images import ImagesUnavailableError, RandomCrops, fetch_images, load_images, read_image
from .mnist import MNISTUnavailableError, fetch_mnist, load_mnist, mnist_available

__all__ = ["ImagesUnavailableError", "MNISTUnavailableError", "RandomCrops", "SampledBatches", "TensorBatches",
           "fetch_images", "fetch_mnist", "load_images", "load_mnist", "mnist_available", "read_image",
           "toy_batches"]
