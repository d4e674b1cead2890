"""Image folders, the default collection's split, channel conversion and random training crops."""

import hashlib
import math
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from scoredae.data.images import (
    COLLECTION,
    TEST_FILES,
    RandomCrops,
    center_crops,
    held_out,
    load_images,
    read_image,
    split_files,
    to_channels,
)
from scoredae.data.wheels import read_members


def write_folder(folder, sizes, mode="RGB", seed=0):
    rng = np.random.default_rng(seed)
    folder.mkdir(exist_ok=True)
    for i, (h, w) in enumerate(sizes):
        shape = (h, w, 3) if mode == "RGB" else (h, w)
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(folder / f"img{i:02d}.png")
    return folder


def test_read_image_modes(tmp_path):
    rgb = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    Image.fromarray(rgb, "RGB").save(tmp_path / "rgb.png")
    Image.fromarray(np.dstack([rgb, np.full((2, 3), 7, np.uint8)]), "RGBA").save(tmp_path / "rgba.png")
    Image.fromarray(rgb[:, :, 0], "L").save(tmp_path / "gray.jpg", quality=100)
    x = read_image(tmp_path / "rgb.png")
    assert x.dtype == torch.uint8 and x.shape == (3, 2, 3)
    assert torch.equal(x, torch.from_numpy(rgb).permute(2, 0, 1))
    assert torch.equal(read_image(tmp_path / "rgba.png"), x)  # alpha dropped
    assert read_image(tmp_path / "gray.jpg").shape == (1, 2, 3)


def test_to_channels_luma_and_repeat():
    rgb = torch.tensor([[[255]], [[0]], [[0]]], dtype=torch.uint8)  # pure red
    assert to_channels(rgb, 1).item() == round(0.299 * 255)
    gray = torch.tensor([[[10, 20]]], dtype=torch.uint8)
    assert torch.equal(to_channels(gray, 3), gray.expand(3, -1, -1))
    with pytest.raises(ValueError, match="2 channels"):
        to_channels(torch.zeros(2, 1, 1, dtype=torch.uint8), 3)


def test_held_out_is_by_name_and_stable():
    names = [f"photo_{i}.jpg" for i in range(40)]
    test = held_out(names)
    assert 0 < len(test) < len(names)
    digits = [int(hashlib.sha256(n.encode()).hexdigest()[:8], 16) % 10 for n in test]
    assert all(d == 0 for d in digits)
    assert set(test) <= set(held_out(names + ["new.png"]))  # adding a file moves no other file
    assert len(held_out(["a.png", "b.png"])) == 1  # two files: one held out


def test_folder_split_cache_and_refresh(tmp_path):
    folder = write_folder(tmp_path / "photos", [(20, 30)] * 6 + [(40, 25)] * 6)
    split = split_files(folder)
    assert sorted(p.name for p in split["train"] + split["test"]) == sorted(p.name for p in folder.iterdir())
    assert split["test"] and not set(split["train"]) & set(split["test"])
    images, names = load_images(folder, "train", channels=3, root=tmp_path / "cache")
    assert names == [p.name for p in split["train"]]
    assert all(x.dtype == torch.uint8 and x.shape[0] == 3 for x in images)
    assert torch.equal(images[0], read_image(folder / names[0]))
    gray, _ = load_images(folder, "train", channels=1, root=tmp_path / "cache")
    assert gray[0].shape == (1, *images[0].shape[1:])
    # a changed file is read again, not served from the tensor cache
    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(folder / names[0])
    again, _ = load_images(folder, "train", channels=3, root=tmp_path / "cache")
    assert again[0].sum() == 0


def test_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a folder"):
        split_files(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no .png"):
        split_files(tmp_path / "empty")
    write_folder(tmp_path / "one", [(8, 8)])
    with pytest.raises(ValueError, match="no test files"):
        load_images(tmp_path / "one", "test", root=tmp_path / "cache")


def test_collection_split_is_fixed():
    assert set(TEST_FILES) <= set(COLLECTION) and len(TEST_FILES) == 3
    assert len(COLLECTION) == 16


def test_read_members_checks_sha256(tmp_path):
    wheel = tmp_path / "data.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr("pkg/data/a.png", b"abc")
    good = hashlib.sha256(b"abc").hexdigest()
    assert read_members(wheel, {"pkg/data/a.png": good}) == {"pkg/data/a.png": b"abc"}
    with pytest.raises(ValueError, match="SHA-256"):
        read_members(wheel, {"pkg/data/a.png": "0" * 64})


def _source_of(crop, images):
    """The image (index) and flips that ``crop`` (C, s, s) was cut from, or None."""
    s = crop.shape[-1]
    for i, x in enumerate(images):
        windows = x.unfold(1, s, 1).unfold(2, s, 1)  # (C, H-s+1, W-s+1, s, s)
        for flips in ([], [-1], [-2], [-2, -1]):
            target = crop.flip(flips) if flips else crop
            if (windows == target[:, None, None]).flatten(3).all(-1).all(0).any():
                return i, tuple(flips)
    return None


def test_random_crops_are_crops_uniform_over_images_and_flipped():
    g = torch.Generator().manual_seed(0)
    images = [torch.randint(0, 256, (3, h, w), generator=g, dtype=torch.uint8) for h, w in [(9, 9), (24, 17), (12, 30)]]
    crops = RandomCrops(images, size=5, batch_size=400)
    batch = crops(0, torch.Generator().manual_seed(1))
    assert batch.shape == (400, 3, 5, 5) and batch.dtype == torch.float32
    sources = [_source_of((c * 255).round().to(torch.uint8), images) for c in batch[:60]]
    assert all(s is not None for s in sources)
    assert {flips for _, flips in sources} == {(), (-1,), (-2,), (-2, -1)}  # both flips, each at random
    # every image drawn with probability 1/3: counts within 3 binomial standard errors
    counts = np.bincount([_source_of((c * 255).round().to(torch.uint8), images)[0] for c in batch], minlength=3)
    assert np.all(np.abs(counts - 400 / 3) < 3 * math.sqrt(400 * (1 / 3) * (2 / 3)))
    assert torch.equal(crops(0, torch.Generator().manual_seed(1)), batch)  # a function of the generator


def test_random_crops_refuse_small_images_and_center_crops():
    with pytest.raises(ValueError, match="do not fit"):
        RandomCrops([torch.zeros(1, 4, 10, dtype=torch.uint8)], size=5, batch_size=2)
    x = torch.arange(36, dtype=torch.uint8).reshape(1, 6, 6)
    assert torch.equal(center_crops([x], 2)[0, 0] * 255, torch.tensor([[14.0, 15.0], [20.0, 21.0]]))


def test_train_command_on_a_folder_of_photographs(tmp_path, monkeypatch):
    from scoredae.cli import main
    from scoredae.nets.checkpoints import read_checkpoint

    monkeypatch.setenv("SCOREDAE_DATA", str(tmp_path / "cache"))
    folder = write_folder(tmp_path / "photos", [(40, 36)] * 5 + [(33, 50)] * 5)
    args = ["train", "--model", "unet", "--option", "width=4", "--data", str(folder), "--crop-size", "16",
            "--sigma-range", "0.01", "0.2", "--steps", "2", "--batch-size", "4", "--no-progress", "--out",
            str(tmp_path / "run")]
    assert main(args) == 0
    _, _, meta = read_checkpoint(tmp_path / "run" / "last")
    assert meta["config"]["channels"] == 3 and meta["data"]["crop_size"] == 16
    assert sorted(meta["data"]["train_files"] + meta["data"]["test_files"]) == sorted(p.name for p in folder.iterdir())
    assert set(meta["metrics"]["psnr"]) == {"0.05", "0.1", "0.2"}
    with pytest.raises(SystemExit, match="--channels"):
        main([*args, "--option", "channels=1"])
