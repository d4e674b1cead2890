r"""Photographs and textures: image folders, the default collection, and random crops for training.

An *image folder* is a folder of PNG or JPEG files, grayscale or colour, of any size. It is read
once into a tensor cache of uint8 images (one file per folder state, refreshed when a file
changes) and split into train and test *by file*, by a rule that depends on each file's name
alone: a file is held out when the first 8 hex digits of the SHA-256 of its name are 0 mod 10
(at least one file when there are two or more), so adding files never moves the others.

The *default collection* (``data="images"``) is the photographs and textures inside
scikit-image's wheel (van der Walt et al. 2014): colour astronaut, chelsea, coffee, rocket,
motorcycle left and right, retina, hubble deep field, ihc; grayscale brick, grass, gravel,
camera, moon, coins, page. :func:`fetch_images` downloads the wheel with pip into a temporary
folder (never installs it) and keeps the 16 files, each checked by SHA-256. Its test split is
fixed: :data:`TEST_FILES`, two colour pictures and one texture.

Pixels are float32 in :math:`[0, 1]` (value / 255). A model of ``C`` channels sees every picture
with ``C`` channels: grayscale repeated to RGB, or RGB to luma
:math:`Y = 0.299 R + 0.587 G + 0.114 B` (ITU-R BT.601).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
from pathlib import Path

import numpy as np
import torch

from .._checks import atomic_write, positive_int
from .mnist import cache_dir
from .wheels import members_from_index

log = logging.getLogger(__name__)

SKIMAGE = "scikit-image==0.26.0"
SUFFIXES = (".png", ".jpg", ".jpeg")
#: file of skimage/data -> SHA-256 of its bytes
COLLECTION = {
    "astronaut.png": "88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5",
    "chelsea.png": "596aa1e7cb875eb79f437e310381d26b338a81c2da23439704a73c4651e8c4bb",
    "coffee.png": "cc02f8ca188b167c775a7101b5d767d1e71792cf762c33d6fa15a4599b5a8de7",
    "rocket.jpg": "c2dd0de7c538df8d111e479619b129464d0269d0ae5fd18ca91d33a7fdfea95c",
    "motorcycle_left.png": "db18e9c4157617403c3537a6ba355dfeafe9a7eabb6b9b94cb33f6525dd49179",
    "motorcycle_right.png": "5fc913ae870e42a4b662314bc904d1786bcad8e2f0b9b67dba5a229406357797",
    "retina.jpg": "38a07f36f27f095e818aea7b96d34202c05176d30253c66733f2e00379e9e0e6",
    "hubble_deep_field.jpg": "3a19c5dd8a927a9334bb1229a6d63711b1c0c767fb27e2286e7c84a3e2c2f5f4",
    "ihc.png": "f8dd1aa387ddd1f49d8ad13b50921b237df8e9b262606d258770687b0ef93cef",
    "brick.png": "7966caf324f6ba843118d98f7a07746d22f6a343430add0233eca5f6eaaa8fcf",
    "grass.png": "b6b6022426b38936c43a4ac09635cd78af074e90f42ffa8227ac8b7452d39f89",
    "gravel.png": "c48615b451bf1e606fbd72c0aa9f8cc0f068ab7111ef7d93bb9b0f2586440c12",
    "camera.png": "b0793d2adda0fa6ae899c03989482bff9a42d3d5690fc7e3648f2795d730c23a",
    "moon.png": "78739619d11f7eb9c165bb5d2efd4772cee557812ec847532dbb1d92ef71f577",
    "coins.png": "f8d773fc9cfa6f4d8e5942dc34d0a0788fcaed2a4fefbbed0aef5398d7ef4cba",
    "page.png": "341a6f0a61557662b02734a9b6e56ec33a915b2c41886b97509dedf2a43b47a3",
}
#: the test split of the default collection, two colour pictures and a texture
TEST_FILES = ("chelsea.png", "coffee.png", "gravel.png")
LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601


class ImagesUnavailableError(RuntimeError):
    """The default collection is not cached and could not be fetched."""


def collection_dir(root: str | os.PathLike | None = None) -> Path:
    """Where the default collection is cached: ``<cache>/images``."""
    return cache_dir(root) / "images"


def images_available(root: str | os.PathLike | None = None) -> bool:
    """True when every file of the default collection is cached with its SHA-256."""
    folder = collection_dir(root)
    return all((folder / name).is_file() and hashlib.sha256((folder / name).read_bytes()).hexdigest() == digest
               for name, digest in COLLECTION.items())


def fetch_images(root: str | os.PathLike | None = None, force: bool = False) -> Path:
    """Cache the default collection from scikit-image's wheel (a wheel placed by hand in the cache
    folder, else ``pip download``); return its folder. Each file is checked by SHA-256."""
    folder = collection_dir(root)
    if not force and images_available(root):
        return folder
    placed = sorted(cache_dir(root).glob("scikit_image-0.26.0-*.whl"))
    members = {f"skimage/data/{name}": digest for name, digest in COLLECTION.items()}
    try:
        files = members_from_index(SKIMAGE, members, placed)
    except Exception as err:
        raise ImagesUnavailableError(
            f"could not fetch the image collection from {SKIMAGE}: {err}\nTo place it by hand, put a "
            f"scikit_image-0.26.0-*.whl file in {cache_dir(root)}, then run `scoredae data fetch images`."
        ) from err
    for member, data in files.items():
        atomic_write(folder / Path(member).name, lambda p, d=data: Path(p).write_bytes(d))
    return folder


def read_image(path: str | os.PathLike) -> torch.Tensor:
    """A PNG or JPEG file as uint8 ``(C, H, W)``: C = 1 for grayscale, 3 for colour.

    Conversions: an alpha channel is dropped; a palette image becomes RGB; 16 bits per channel
    become 8 (value / 257, rounded); a 32-bit integer or float grayscale image is rescaled so its
    maximum is 255.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image.load()
    except UnidentifiedImageError as err:
        raise ValueError(f"{path}: not an image file that can be read (expected PNG or JPEG)") from err
    if image.mode == "I;16" or image.mode.startswith("I;16"):
        array = np.round(np.asarray(image, dtype=np.float64) / 257).astype(np.uint8)
    elif image.mode in ("I", "F"):
        values = np.asarray(image, dtype=np.float64)
        array = np.round(255 * values / max(values.max(), 1e-12)).clip(0, 255).astype(np.uint8)
    else:
        gray = image.mode in ("1", "L", "LA")
        array = np.asarray(image.convert("L" if gray else "RGB"))
    array = array[:, :, None] if array.ndim == 2 else array
    return torch.from_numpy(array.transpose(2, 0, 1).copy())


def write_image(path: str | os.PathLike, image: torch.Tensor) -> None:
    """Write ``image`` (C, H, W), float in [0, 1] or uint8, C = 1 or 3, as a PNG file (atomically)."""
    from PIL import Image

    if image.ndim != 3 or image.shape[0] not in (1, 3):
        raise ValueError(f"image: expected shape (1 or 3, H, W), got {tuple(image.shape)}")
    if image.is_floating_point():
        image = (image.clamp(0, 1) * 255).round().to(torch.uint8)
    array = image.permute(1, 2, 0).cpu().numpy()
    picture = Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array)
    atomic_write(Path(path), lambda p: picture.save(p, format="PNG"))


def to_channels(image: torch.Tensor, channels: int) -> torch.Tensor:
    """``image`` (C, H, W) with ``channels`` channels: gray repeated to RGB, or RGB to BT.601 luma."""
    c = image.shape[0]
    if c == channels:
        return image
    if c == 1 and channels == 3:
        return image.expand(3, -1, -1).contiguous()
    if c == 3 and channels == 1:
        weights = torch.tensor(LUMA, dtype=torch.float32).view(3, 1, 1)
        luma = (image.float() * weights).sum(0, keepdim=True)
        return luma.round().clamp(0, 255).to(image.dtype) if not image.is_floating_point() else luma
    raise ValueError(f"cannot convert an image of {c} channels to {channels}; expected 1 or 3 channels")


def image_files(folder: str | os.PathLike) -> list[Path]:
    """The PNG and JPEG files of ``folder`` (not its subfolders), sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"data: {folder} is not a folder of images")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in SUFFIXES)
    if not files:
        raise ValueError(f"data: no {'/'.join(SUFFIXES)} files in {folder}")
    return files


def held_out(names: list[str]) -> list[str]:
    """The test files of a user's folder: SHA-256(name)[:8] = 0 mod 10, at least one of two or more."""
    def key(name: str) -> int:
        return int(hashlib.sha256(name.encode()).hexdigest()[:8], 16)

    test = [n for n in names if key(n) % 10 == 0]
    if not test and len(names) >= 2:
        test = [min(names, key=lambda n: key(n) % 10)]
    return sorted(test)


def split_files(data: str | os.PathLike, root: str | os.PathLike | None = None) -> dict[str, list[Path]]:
    """``{"train": [...], "test": [...]}``: the files of the folder ``data``, or of the default
    collection (``data="images"``, fetched when missing), split by file as the module docstring says."""
    if str(data) == "images":
        folder = fetch_images(root)
        names = [n for n in COLLECTION if n not in TEST_FILES], list(TEST_FILES)
        return {"train": [folder / n for n in names[0]], "test": [folder / n for n in names[1]]}
    files = image_files(data)
    test = set(held_out([p.name for p in files]))
    return {"train": [p for p in files if p.name not in test], "test": [p for p in files if p.name in test]}


def _read_cached(files: list[Path], root: str | os.PathLike | None) -> list[torch.Tensor]:
    """The uint8 images of ``files`` through the tensor cache, keyed by their paths, sizes and times."""
    stamp = [(str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns) for p in files]
    key = hashlib.sha256(json.dumps(stamp).encode()).hexdigest()[:20]
    path = cache_dir(root) / "image_tensors" / f"{key}.pt"
    if path.is_file():
        try:
            return torch.load(path, weights_only=True)
        except (RuntimeError, OSError, EOFError) as err:
            log.warning("image cache %s is unreadable (%s); it is rebuilt", path, err)
    images = [read_image(p) for p in files]

    def save(p: str) -> None:
        buffer = io.BytesIO()
        torch.save(images, buffer)
        Path(p).write_bytes(buffer.getvalue())

    atomic_write(path, save)
    return images


def load_images(data: str | os.PathLike = "images", split: str = "train", channels: int = 3,
                root: str | os.PathLike | None = None) -> tuple[list[torch.Tensor], list[str]]:
    """The ``split`` ("train" or "test") of an image folder or of the default collection.

    :returns: the images as uint8 ``(channels, H, W)`` tensors (sizes differ), and their file names.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split: expected 'train' or 'test', got {split!r}")
    positive_int("channels", channels)
    files = split_files(data, root)[split]
    if not files:
        raise ValueError(f"data: {data} has no {split} files (a folder needs two or more images to split)")
    return [to_channels(x, channels) for x in _read_cached(files, root)], [p.name for p in files]


def evaluation_side(images: list[torch.Tensor], multiple: int = 1, limit: int = 256) -> int:
    """The side of central crops: ``limit`` (256, that of the evaluation crops), or the smallest
    image side when less, rounded down to a ``multiple`` of what the network takes."""
    return min(limit, *(min(x.shape[-2:]) for x in images)) // multiple * multiple


def center_crops(images: list[torch.Tensor], size: int) -> torch.Tensor:
    """The central ``size`` x ``size`` crop of each image, float32 ``(N, C, size, size)`` in [0, 1]."""
    crops = []
    for x in images:
        h, w = x.shape[-2:]
        if min(h, w) < size:
            raise ValueError(f"size: {size} exceeds an image of {h} x {w} pixels")
        top, left = (h - size) // 2, (w - size) // 2
        crops.append(x[:, top : top + size, left : left + size])
    return torch.stack(crops).float().div_(255)


class RandomCrops:
    r"""Training batches of random ``size`` x ``size`` crops of ``images``, flipped at random, on ``device``.

    Each crop comes from an image drawn uniformly (so a large picture does not crowd out the
    others), at a position drawn uniformly among its :math:`(H - s + 1)(W - s + 1)`, then is flipped
    left-right and up-down, each with probability 1/2. The images are held once on the device, padded into one
    uint8 tensor, and each batch is one gather: no per-sample Python work. A batch source for
    :func:`scoredae.train.loop.train`; returns float32 ``(B, C, size, size)`` in [0, 1].
    """

    def __init__(self, images: list[torch.Tensor], size: int, batch_size: int, device="cpu"):
        self.size, self.batch_size = positive_int("size", size), positive_int("batch_size", batch_size)
        if not images:
            raise ValueError("images: expected at least one image")
        if len({x.shape[0] for x in images}) != 1:
            raise ValueError("images: expected the same number of channels in every image")
        small = [tuple(x.shape[-2:]) for x in images if min(x.shape[-2:]) < size]
        if small:
            raise ValueError(f"size: crops of {size} x {size} do not fit images of {small}")
        h = max(x.shape[-2] for x in images)
        w = max(x.shape[-1] for x in images)
        self.stack = torch.zeros(len(images), images[0].shape[0], h, w, dtype=torch.uint8, device=device)
        for i, x in enumerate(images):
            self.stack[i, :, : x.shape[-2], : x.shape[-1]] = x
        sizes = torch.tensor([x.shape[-2:] for x in images], dtype=torch.float64)
        self.positions = (sizes - size + 1).to(device)  # (N, 2) crop positions along H and W

    def __call__(self, step: int, generator=None, rank: int = 0, world: int = 1) -> torch.Tensor:
        n, device, s = self.batch_size // world, self.stack.device, self.size
        if n < 1:
            raise ValueError(f"batch_size {self.batch_size} is smaller than the world size {world}")
        u = torch.rand(n, 5, generator=generator, dtype=torch.float64, device=device)
        idx = (u[:, 4] * len(self.stack)).long()  # (n,) the image of each crop
        top, left = (u[:, :2] * self.positions[idx]).long().unbind(1)  # uniform over positions
        offsets = torch.arange(s, device=device)
        rows = top[:, None] + offsets  # (n, s)
        cols = left[:, None] + offsets
        rows = torch.where(u[:, 2:3] < 0.5, rows, rows.flip(1))  # up-down flips
        cols = torch.where(u[:, 3:4] < 0.5, cols, cols.flip(1))  # left-right flips
        crops = self.stack[idx[:, None, None], :, rows[:, :, None], cols[:, None, :]]  # (n, s, s, C)
        return crops.permute(0, 3, 1, 2).float().div_(255)
